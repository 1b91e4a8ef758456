"""analyzer, detector, restorer, builder: the phase commands up to export (ANA-*, DET-*, RES-*, BLD-*).

Each runs the same phase class ``pybuild build`` runs, with inputs read from the standard
files (analyzed.toml, order.toml, system.toml, group.toml, plan.toml, run.toml) instead of
a builder record, and buildpacks run straight on this machine (``HostRunner``): the
phases themselves run inside the build container, one container or step per phase.
``run_command`` wraps every phase: the log level (``phase_log``), registry settings and the
experimental-layout check (``phase_images``), and at debug level the inputs, the time taken
and the bytes each image store moved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from lifecycle.backends.base import repository_of
from lifecycle.backends.store import pybuild_home
from lifecycle.cnb.buildpack import BuildpackDescriptor, load_buildpack_toml
from lifecycle.cnb.images import AnalyzedToml, RunImageRef, load_analyzed_toml, load_run_toml
from lifecycle.cnb.labels import LifecycleMetadata
from lifecycle.cnb.order import load_group_toml, load_order_toml, load_system_toml
from lifecycle.cnb.plan import load_plan_toml
from lifecycle.env import EnvOp, filter_platform_env, read_env_dir, read_user_env
from lifecycle.errors import ConfigError, ExitCode, ImageNotFound, PybuildError
from lifecycle.execution.executor import BuildpackExecutor, TargetInfo
from lifecycle.execution.host import HostRunner
from lifecycle.execution.runner import Workspace
from lifecycle.oci.image import Image
from lifecycle.phases.analyze import analyze, write_analyzed_toml
from lifecycle.phases.build import Builder, BuildInputs
from lifecycle.phases.cache import LayerCache, NoCache
from lifecycle.phases.detect import Detector
from lifecycle.phases.restore import RestoreInputs, Restorer
from lifecycle.platform.cache import PreviousImage, open_cache, previous_image
from lifecycle.platform.cache_dir import DirectoryCache
from lifecycle.platform.phase_images import (
    check_registry_access,
    output_target,
    prepare_images,
    read_image,
    read_target,
)
from lifecycle.platform.phase_inputs import PhaseInputs
from lifecycle.platform.phase_log import PhaseLog
from lifecycle.platform.targets import Target, daemon_store

__all__ = [
    "LOG",
    "BuildpackDescriptors",
    "BuildpackDirs",
    "debug",
    "info",
    "open_run_image",
    "output_target",
    "phase_cache",
    "previous_from_analyzed",
    "read_analyzed",
    "read_group",
    "run_analyzer",
    "run_builder",
    "run_command",
    "run_detector",
    "run_restorer",
    "warn",
]


LOG = PhaseLog()
"""The log of the phase command this process runs (one per process); ``run_command`` sets its level."""


def debug(message: str) -> None:
    LOG.debug(message)


def info(message: str) -> None:
    LOG.info(message)


def warn(message: str) -> None:
    LOG.warn(message)


def run_command(inputs: PhaseInputs, runner: Callable[[PhaseInputs], object]) -> None:
    """Run one phase command with its log level; at debug level say what it was given and did."""
    LOG.level = inputs.log_level
    prepare_images(inputs, warn)
    for field in dataclasses.fields(inputs):
        debug(f"Input {field.name}: {getattr(inputs, field.name)}")
    started = time.monotonic()
    try:
        runner(inputs)
    except OSError:
        if LOG.enabled("debug"):
            traceback.print_exc()
        raise
    debug(f"Timer: {inputs.phase} ran in {time.monotonic() - started:.3f}s")
    _debug_store_stats(inputs)


def _debug_store_stats(inputs: PhaseInputs) -> None:
    """What crossed each store the phase wrote to: bytes read and written, saves and loads."""
    if not LOG.enabled("debug") or inputs.layout:
        return
    stores = [output_target(inputs, name) for name in inputs.images[:1]]
    if inputs.daemon:
        stores.append(Target(daemon_store(), "", "docker daemon", "daemon"))
    for target in {id(t.store): t for t in stores}.values():
        stats = getattr(target.store, "stats", None)
        if stats is not None:
            counts = [f"{f.name}={getattr(stats, f.name)}" for f in dataclasses.fields(stats)]
            debug(f"Stats {target.kind}: " + " ".join(c for c in counts if c.split("=")[1].isdigit()))


def phase_cache(inputs: PhaseInputs, run_image: Image | None = None) -> LayerCache:
    """-cache-image or -cache-dir (RES-6); neither means no cache."""
    if inputs.cache_image:
        return open_cache(
            pybuild_home(), inputs.cache_image, cache_image=inputs.cache_image, run_image=run_image
        )
    if inputs.cache_dir:
        return DirectoryCache(inputs.cache_dir.parent, inputs.cache_dir.name)
    return NoCache()


class BuildpackDirs(Mapping[str, Path]):
    """``id@version`` -> ``<buildpacks>/<id>/<version>`` (GEN-3; ``/`` in an id may be ``_`` on disk).

    Nothing is read until asked: an unsupported buildpack the order never names does not
    fail detection (GEN-1 is about buildpacks that would run).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __getitem__(self, ref: str) -> Path:
        bp_id, _, version = ref.rpartition("@")
        for name in (bp_id, bp_id.replace("/", "_")):
            if (self.root / name / version / "buildpack.toml").is_file():
                return self.root / name / version
        raise KeyError(ref)

    def __iter__(self) -> Iterator[str]:
        for toml in sorted(self.root.rglob("buildpack.toml")) if self.root.is_dir() else ():
            relative = toml.parent.relative_to(self.root)
            yield f"{_declared_id(toml) or relative.parent.as_posix()}@{relative.name}"

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _declared_id(toml: Path) -> str | None:
    """The ``[buildpack] id`` of ``toml`` (an escaped directory name does not say whether ``_`` was
    ``/``), read without validation; None if it cannot be read."""
    try:
        with toml.open("rb") as fh:
            declared = tomllib.load(fh).get("buildpack", {}).get("id")
    except (OSError, ValueError, AttributeError):
        return None
    return declared if isinstance(declared, str) and declared else None


class BuildpackDescriptors(Mapping[str, BuildpackDescriptor]):
    """The descriptors of ``BuildpackDirs``, each loaded (and API-checked) when first asked for."""

    def __init__(self, dirs: BuildpackDirs) -> None:
        self.dirs = dirs
        self._loaded: dict[str, BuildpackDescriptor] = {}

    def __getitem__(self, ref: str) -> BuildpackDescriptor:
        if ref not in self._loaded:
            self._loaded[ref] = load_buildpack_toml(self.dirs[ref] / "buildpack.toml")
        return self._loaded[ref]

    def __iter__(self) -> Iterator[str]:
        return iter(self.dirs)

    def __len__(self) -> int:
        return len(self.dirs)


def read_analyzed(inputs: PhaseInputs) -> AnalyzedToml:
    if not inputs.analyzed_path.is_file():
        return AnalyzedToml()
    return load_analyzed_toml(inputs.analyzed_path)


def read_group(inputs: PhaseInputs) -> tuple[BuildpackDescriptor, ...]:
    buildpacks = BuildpackDescriptors(BuildpackDirs(inputs.buildpacks_dir))
    group = load_group_toml(inputs.group_path).group
    missing = [e.ref for e in group if e.ref not in buildpacks.dirs]
    if missing:
        raise ConfigError("read group", f"{', '.join(missing)} not found under {inputs.buildpacks_dir}")
    return tuple(buildpacks[e.ref] for e in group)


def _target_info(analyzed: AnalyzedToml) -> TargetInfo:
    target = analyzed.run_image.target if analyzed.run_image else None
    if target is None:
        return TargetInfo()
    distro = target.distro
    return TargetInfo(
        os=target.os,
        arch=target.arch,
        arch_variant=target.arch_variant,
        distro_name=distro.name if distro else None,
        distro_version=distro.version if distro else None,
    )


def _executor(inputs: PhaseInputs, buildpack_dirs: Mapping[str, Path]) -> BuildpackExecutor:
    workspace = Workspace(inputs.app_dir, inputs.layers_dir, inputs.platform_dir, buildpack_dirs)
    return BuildpackExecutor(
        HostRunner(),
        workspace,
        _target_info(read_analyzed(inputs)),
        exec_env=inputs.exec_env,
        output=LOG.output,
    )


def _run_images(inputs: PhaseInputs) -> tuple[RunImageRef, ...]:
    if inputs.run_image:
        return (RunImageRef(image=inputs.run_image),)
    if not inputs.run_path.is_file():
        raise ConfigError(
            "find run image", f"no -run-image and no {inputs.run_path}", exit_code=ExitCode.ANALYZE
        )
    return load_run_toml(inputs.run_path).images


def open_run_image(inputs: PhaseInputs) -> tuple[str, Image]:
    """ANA-3: -run-image, else the first readable run.toml image or mirror."""
    tried: list[str] = []
    for ref in _run_images(inputs):
        for name in (ref.image, *ref.mirrors):
            with contextlib.suppress(ImageNotFound):
                return name, read_image(inputs, name)
            tried.append(name)
    raise ConfigError("find run image", f"none of {tried} can be read", exit_code=ExitCode.ANALYZE)


def run_analyzer(inputs: PhaseInputs) -> None:
    """ANA-1..5: the previous image and the run image, to analyzed.toml."""
    if not inputs.images:
        raise ConfigError("analyze", "an output image name is required", exit_code=ExitCode.BAD_ARGS)
    _check_access(inputs)
    run_name, run_image = open_run_image(inputs)
    if not run_image.config.os:
        raise ConfigError("analyze", f"run image {run_name} has no os", exit_code=ExitCode.ANALYZE)
    if inputs.layout:
        previous = _layout_previous(inputs)
    else:
        target = output_target(inputs, inputs.images[0])
        previous = previous_image(target, inputs.previous_image, pybuild_home(), warn)
    analysis = analyze(previous.image, previous.reference, warn)
    inputs.analyzed_path.parent.mkdir(parents=True, exist_ok=True)
    reference = f"{repository_of(run_name)}@{run_image.digest}"
    if inputs.layout:  # where the exporter finds it again: the layout path, pinned by digest
        reference = f"{read_target(inputs, run_name).display}@{run_image.digest}"
    write_analyzed_toml(inputs.analyzed_path, analysis, run_image, reference, run_name)


def _check_access(inputs: PhaseInputs) -> None:
    """ANA-5: the run and previous images readable; output, tags and cache image writable."""
    reads = [inputs.previous_image] if inputs.previous_image else []
    if inputs.run_image:
        reads.append(inputs.run_image)
    writes = list(inputs.images)
    if inputs.cache_image:
        reads.append(inputs.cache_image)
        writes.append(inputs.cache_image)
    check_registry_access(inputs, reads, writes)


def _layout_previous(inputs: PhaseInputs) -> PreviousImage:
    """-layout: the previous image is the layout path of -previous-image, else of the output."""
    name = inputs.previous_image or inputs.images[0]
    try:
        return PreviousImage(read_image(inputs, name), read_target(inputs, name).display)
    except ImageNotFound:
        return PreviousImage(None, None)


def run_detector(inputs: PhaseInputs) -> None:
    """DET-*: order.toml (plus system.toml on 0.15) -> group.toml and plan.toml."""
    if not inputs.order_path.is_file():
        raise ConfigError("detect", f"{inputs.order_path} does not exist", exit_code=ExitCode.DETECT_OTHER)
    order_toml = load_order_toml(inputs.order_path)
    order = order_toml.order
    if order_toml.order_extensions:  # the phase commands have no generate or extend: detect without them
        from lifecycle.platform.build_extensions import check_experimental

        mode = os.environ.get("CNB_EXPERIMENTAL_MODE")
        check_experimental("image extensions ([[order-extensions]] in order.toml)", mode, info)
    system = None
    if inputs.system_path is not None and inputs.system_path.is_file():
        system = load_system_toml(inputs.system_path)
    dirs = BuildpackDirs(inputs.buildpacks_dir)
    executor = _executor(inputs, dirs)
    base_env = filter_platform_env(os.environ)
    descriptors = BuildpackDescriptors(dirs)
    detector = Detector(order, descriptors, executor, base_env, read_user_env(inputs.platform_dir), system)
    inputs.layers_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=inputs.layers_dir, prefix=".detect-") as scratch:
        group, _ = detector.detect(Path(scratch))
        for name, dest in (("group.toml", inputs.group_path), ("plan.toml", inputs.plan_path)):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(scratch) / name, dest)
    for buildpack in group:
        info(f"{buildpack.buildpack.id} {buildpack.buildpack.version}")


def previous_from_analyzed(
    inputs: PhaseInputs, analyzed: AnalyzedToml
) -> tuple[Image | None, LifecycleMetadata | None]:
    """The previous image analyzed.toml names, if it can still be read (else no previous image)."""
    if analyzed.image is None:
        return None, None
    name, _, digest = analyzed.image.reference.rpartition("@")
    try:
        image = read_image(inputs, name or analyzed.image.reference)
    except PybuildError as exc:
        warn(f"previous image {analyzed.image.reference} cannot be read: {exc}")
        return None, None
    if digest and image.digest != digest:
        warn(f"previous image {name} changed since analyze; building as if there were none")
        return None, None
    return image, analyzed.metadata


def run_restorer(inputs: PhaseInputs) -> None:
    """RES-1..5: store.toml, layer metadata and cached contents."""
    image, metadata = previous_from_analyzed(inputs, read_analyzed(inputs))
    restore = RestoreInputs(
        group=read_group(inputs),
        layers_dir=inputs.layers_dir,
        previous=metadata,
        cache=phase_cache(inputs),
        previous_image=image,
        skip_layers=inputs.skip_restore,
        launch_cache_without_image=inputs.launch_cache_without_image,
        log=info,
        warn=warn,
    )
    Restorer(restore).restore()


def run_builder(inputs: PhaseInputs) -> None:
    """BLD-*: run the group's bin/build; writes <layers>/config/metadata.toml (BLD-14)."""
    group = read_group(inputs)
    executor = _executor(inputs, BuildpackDirs(inputs.buildpacks_dir))
    operator_env = inputs.build_config_dir / "env"
    build = BuildInputs(
        group,
        load_plan_toml(inputs.plan_path),
        inputs.layers_dir,
        filter_platform_env(os.environ),
        read_user_env(inputs.platform_dir),
        tuple(read_env_dir(operator_env, no_suffix=EnvOp.DEFAULT)) if operator_env.is_dir() else (),
    )
    Builder(build, executor).build()
