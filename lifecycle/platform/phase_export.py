"""exporter, creator, rebaser, launcher: the phase commands from export on (EXP-*, REB-*, LCH-*).

The exporter runs the same ``Exporter`` as ``pybuild build`` with inputs from analyzed.toml,
group.toml, run.toml and ``<layers>/config/metadata.toml``, writes the image to every tag
and report.toml (EXP-13), then the cache (EXP-14: failures only warn). The creator is the
five phases in one process. The launcher runs the in-image sh launcher unchanged.
With ``-daemon`` and ``-launch-cache``, layers of the previous image are read from the launch
cache where it has them, and the layers this export wrote go into it (``phase_launch_cache``).
"""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lifecycle.backends.store import pybuild_home
from lifecycle.cnb import write_toml
from lifecycle.cnb.images import ImageReport, ReportToml, load_run_toml
from lifecycle.cnb.layers import load_config_metadata
from lifecycle.errors import ConfigError, ExitCode
from lifecycle.launcher import LaunchPlan, launcher_script
from lifecycle.oci.image import Image
from lifecycle.phases.cache_writer import Cacher
from lifecycle.phases.export import CONSTANT_CREATED, Exporter, ExportInputs
from lifecycle.phases.launch import launch_files, previous_launch_plan
from lifecycle.platform.cache import find_known_layers
from lifecycle.platform.phase_build import (
    debug,
    info,
    phase_cache,
    previous_from_analyzed,
    read_analyzed,
    read_group,
    run_analyzer,
    run_builder,
    run_detector,
    run_restorer,
    warn,
)
from lifecycle.platform.phase_images import layout_path, output_target, read_image
from lifecycle.platform.phase_inputs import PhaseInputs
from lifecycle.platform.phase_launch_cache import LaunchCache
from lifecycle.platform.rebase import RebaseOptions, rebase
from lifecycle.platform.targets import Target

__all__ = ["launcher_argv", "run_creator", "run_exporter", "run_rebaser"]


def _created(environ: Mapping[str, str]) -> str:
    """EXP-6: SOURCE_DATE_EPOCH if set, else the constant."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "")
    if not epoch.isdigit():
        return CONSTANT_CREATED
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mirrors(inputs: PhaseInputs, run_name: str) -> tuple[str, ...]:
    if not inputs.run_path.is_file():
        return ()
    images = load_run_toml(inputs.run_path).images
    return next((r.mirrors for r in images if r.image == run_name), ())


def _write_report(inputs: PhaseInputs, report: ReportToml) -> None:
    if inputs.report_given or inputs.report_path.parent.is_dir():
        inputs.report_path.parent.mkdir(parents=True, exist_ok=True)
        write_toml(inputs.report_path, report)


def run_exporter(inputs: PhaseInputs) -> str:
    """EXP-*: the image over the run image, to every tag; returns its digest."""
    if not inputs.images:
        raise ConfigError("export", "an output image name is required", exit_code=ExitCode.BAD_ARGS)
    analyzed = read_analyzed(inputs)
    if analyzed.run_image is None:
        raise ConfigError("export", f"{inputs.analyzed_path} names no run image", exit_code=ExitCode.EXPORT)
    run_name = analyzed.run_image.image or analyzed.run_image.reference
    run_image = read_image(inputs, run_name)
    group = read_group(inputs)
    previous, metadata = previous_from_analyzed(inputs, analyzed)
    launch_cache = LaunchCache(inputs.launch_cache) if inputs.launch_cache and inputs.daemon else None
    if launch_cache is not None and previous is not None:
        previous, served = launch_cache.serving(previous)
        debug(f"Launch cache: {served} layers of the previous image read from {launch_cache.root}")
    targets = [output_target(inputs, name) for name in inputs.images]
    layers = inputs.layers_dir

    @functools.cache
    def previous_plan() -> LaunchPlan | None:
        return previous_launch_plan(previous, metadata) if previous and metadata else None

    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        exporter = Exporter(
            ExportInputs(
                run_image=run_image,
                run_image_name=run_name,
                run_image_mirrors=_mirrors(inputs, run_name),
                run_image_reference=analyzed.run_image.reference,
                group=group,
                metadata=load_config_metadata(layers / "config" / "metadata.toml"),
                layers_dir=layers,
                app_dir=inputs.app_dir,
                scratch=Path(scratch),
                launch_files=lambda meta: launch_files(meta, layers, group, previous_plan),
                uid=inputs.uid,
                gid=inputs.gid,
                created=_created(os.environ),
                platform_api=inputs.platform_api,
                process_type=inputs.process_type,
                exec_env=inputs.exec_env,
                previous_image=previous,
                previous_metadata=metadata,
                find_layers=(find_known_layers(pybuild_home(), targets[0]),),
                log=info,
            )
        )
        image = exporter.export()
        digest = _write_tags(targets, image)
        if launch_cache is not None:
            added = launch_cache.commit(exporter.writer.tars(), image, warn)
            debug(f"Launch cache: {added} layers added to {launch_cache.root}")
        _write_report(inputs, _report(targets, image, digest))
        cache = phase_cache(inputs, run_image)
        try:
            Cacher(group, layers, exporter.writer, inputs.uid, inputs.gid, info, warn).cache(cache)
        except OSError as exc:
            warn(f"failed to save {cache.name}: {exc}")
    return digest


def _write_tags(targets: list[Target], image: Image) -> str:
    """EXP-13: the same image to every tag, one write per store."""
    digest = ""
    for target in targets:
        digest = target.store.write(image, [target.name])
        info(f"Saved {target.display}")
    return digest


def _report(targets: list[Target], image: Image, digest: str) -> ReportToml:
    return ReportToml(
        image=ImageReport(
            tags=tuple(t.display for t in targets),
            digest=digest,
            image_id=image.config_descriptor.digest,
            manifest_size=len(image.raw_manifest),
        )
    )


def run_creator(inputs: PhaseInputs) -> str:
    """The five phases in one process, as the reference creator runs them."""
    run_analyzer(inputs)
    run_detector(inputs)
    run_restorer(inputs)
    run_builder(inputs)
    return run_exporter(inputs)


def run_rebaser(inputs: PhaseInputs) -> str:
    """REB-*: the first name is rebased; the result goes to the other names too."""
    if not inputs.images:
        raise ConfigError("rebase", "an app image name is required", exit_code=ExitCode.BAD_ARGS)
    report = inputs.report_path if inputs.report_given or inputs.report_path.parent.is_dir() else None
    first = output_target(inputs, inputs.images[0])
    image = {"store": inputs.images[0], "layout": f"oci:{first.display}:{first.name}"}
    run_image = inputs.run_image
    if inputs.layout and inputs.layout_dir and run_image:
        run_image = f"oci:{layout_path(inputs.layout_dir, run_image)}:{first.name}"
    options = RebaseOptions(
        image=image.get(first.kind, first.display),
        run_image=run_image,
        previous_image=inputs.previous_image,
        force=inputs.force,
        report=report,
        publish=first.kind == "registry",
    )
    done = rebase(options)
    for name in inputs.images[1:]:
        extra = output_target(inputs, name)
        extra.store.write(first.store.image(first.name), [extra.name])
    info(f"Rebased {done.image}: {done.digest}")
    return done.digest


def launcher_argv(argv0: str, args: list[str]) -> list[str]:
    """``sh <launcher named argv0> args``: the sh launcher picks a process by its $0 (LCH-2)."""
    name = os.path.basename(argv0) or "launcher"
    root = Path(tempfile.gettempdir()) / f"pybuild-launcher-{os.getuid()}" / name
    script = root / name
    body = launcher_script()
    if not script.is_file() or script.read_bytes() != body:
        root.mkdir(parents=True, exist_ok=True)
        partial = root / f".{name}.{os.getpid()}"
        partial.write_bytes(body)
        partial.chmod(0o755)
        partial.replace(script)
    return [shutil.which("sh") or "/bin/sh", str(script), *args]
