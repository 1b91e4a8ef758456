"""The exporter's inputs in ``pybuild build``: what the image is written on and from.

The run image (extended or not, EXP-12), its name, mirrors (ANA-3, for rebase to find it, REB-1)
and digest reference; the group, metadata and layers; the previous image for reuse (EXP-3,
EXP-7) and its launch plan, read only when a launch file needs it; the known blobs of this
machine; the creation time (``SOURCE_DATE_EPOCH`` semantics); and the secrets no layer may hold.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from lifecycle.backends.base import repository_of
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.execution.secrets import Secrets
from lifecycle.launcher import LaunchPlan
from lifecycle.oci.image import Image
from lifecycle.phases.analyze import Analysis
from lifecycle.phases.export import ExportInputs
from lifecycle.phases.launch import launch_files, previous_launch_plan
from lifecycle.platform.build_extensions import ExtendedImage
from lifecycle.platform.builders import Builder
from lifecycle.platform.cache import find_known_layers
from lifecycle.platform.targets import Target

__all__ = ["export_inputs"]


def export_inputs(
    work: Path,
    *,
    builder: Builder,
    run_name: str,
    run_image: Image,
    extended_run: ExtendedImage | None,
    group: Sequence[BuildpackDescriptor],
    metadata: ConfigMetadata,
    analysis: Analysis,
    user: tuple[int, int],
    process_type: str | None,
    creation_time: int | None,
    home: Path,
    target: Target,
    secrets: Secrets,
    log: Callable[[str], None],
) -> ExportInputs:
    layers = work / "layers"
    uid, gid = user
    created = _created(creation_time)

    @functools.cache
    def previous_plan() -> LaunchPlan | None:
        if analysis.image is None or analysis.metadata is None:
            return None
        return previous_launch_plan(analysis.image, analysis.metadata)

    return ExportInputs(
        run_image=extended_run.image if extended_run else run_image,
        extended_from=extended_run.base if extended_run else None,
        run_image_name=run_name,
        run_image_mirrors=_mirrors(builder, run_name),
        run_image_reference=f"{repository_of(run_name)}@{run_image.digest}",
        group=tuple(group),
        metadata=metadata,
        layers_dir=layers,
        app_dir=work / "app",
        scratch=work / "blobs",
        launch_files=lambda meta: launch_files(meta, layers, group, previous_plan),
        uid=uid,
        gid=gid,
        process_type=process_type,
        previous_image=analysis.image,
        previous_metadata=analysis.metadata,
        find_layers=(find_known_layers(home, target),),
        log=log,
        secrets=secrets,
        **({"created": created} if created else {}),  # type: ignore[arg-type]
    )


def _mirrors(builder: Builder, run_name: str) -> tuple[str, ...]:
    """The builder's mirrors of the chosen run image (ANA-3), for rebase to find it (REB-1)."""
    return next((r.mirrors for r in builder.run_images if r.image == run_name), ())


def _created(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
