"""From the build's ``metadata.toml`` to what the launcher needs in the image.

The exporter calls this once per export: it turns the processes (BLD-11) and the launch
layers on disk into the launcher's plan file (LCH-1..8). A launch layer reused from the
previous image (EXP-3) has no files here; its part of the plan comes from the previous
image's own plan, read from its config layer only when such a layer exists.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from lifecycle.appimage import AppImage
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.labels import LifecycleMetadata
from lifecycle.cnb.layers import ConfigMetadata, load_layer_toml
from lifecycle.errors import PybuildError
from lifecycle.launcher import (
    PLAN_PATH,
    LaunchPlan,
    LaunchPlanError,
    Process,
    launcher_script,
    parse_plan,
    render_plan,
    scan_layers,
)
from lifecycle.oci.image import Image
from lifecycle.phases.export import LaunchFiles

__all__ = ["launch_files", "previous_launch_plan"]

PreviousPlan = Callable[[], LaunchPlan | None]


def launch_files(
    metadata: ConfigMetadata,
    layers_dir: Path,
    group: Sequence[BuildpackDescriptor],
    previous: PreviousPlan | None = None,
) -> LaunchFiles:
    apis = {bp.buildpack.id: str(bp.api) for bp in group}
    processes = tuple(
        Process(
            type=p.type,
            command=p.command,
            buildpack_id=p.buildpack_id,
            buildpack_api=apis.get(p.buildpack_id, "0.12"),
            args=p.args,
            direct=p.direct,
            default=p.type == metadata.buildpack_default_process_type,
            working_dir=p.working_dir,
            exec_env=p.exec_env or None,
        )
        for p in metadata.processes
    )
    ids = [bp.buildpack.id for bp in group]
    plan = previous() if previous is not None and _reuses_layers(layers_dir, ids) else None
    layers = scan_layers(layers_dir, ids, previous=plan)
    plan = LaunchPlan(processes=processes, layers=tuple(layers))
    return LaunchFiles(launcher=launcher_script(), plan_path=f"/layers/{PLAN_PATH}", plan=render_plan(plan))


def _reuses_layers(layers_dir: Path, buildpack_ids: Sequence[str]) -> bool:
    """Whether some launch layer has a ``<layer>.toml`` but no dir (EXP-3)."""
    for buildpack_id in buildpack_ids:
        bp_dir = layers_dir / escape_id(buildpack_id)
        for toml in bp_dir.glob("*.toml") if bp_dir.is_dir() else ():
            if toml.stem in ("launch", "build", "store") or (bp_dir / toml.stem).is_dir():
                continue
            try:
                if load_layer_toml(toml).types.launch:
                    return True
            except PybuildError:
                continue  # scan_layers reports it
    return False


def previous_launch_plan(image: Image, metadata: LifecycleMetadata) -> LaunchPlan:
    """The launch plan in ``image``'s config layer (``/layers/config/launch-plan.sh``)."""
    wanted = PurePosixPath("layers", PLAN_PATH).as_posix()
    try:
        layer = AppImage(image).layer(metadata.config.sha)
        with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.name.lstrip("/") == wanted and member.isreg():
                    data = tar.extractfile(member)
                    return parse_plan(data.read() if data else b"")
    except (PybuildError, tarfile.TarError, OSError, ValueError) as exc:
        raise LaunchPlanError("read the previous image's launch plan", exc) from None
    raise LaunchPlanError("read the previous image's launch plan", f"{wanted} is not in its config layer")
