"""``pybuild buildpack test``: detect and build of one buildpack on this machine, then what it made.

The fast inner loop of authoring: the buildpack runs through the same ``Detector`` and
``Builder`` phases as a real build, over the ``HostRunner`` (no image, no sandbox), against a
copy of the app and a scratch layers dir. The report lists its layers (``[types]``,
``[metadata]``, size), its processes, and the environment its layers give later buildpacks
(BLD-6) and the app (LCH-5). Failures keep the CNB exit codes: 20/21 from detect (DET-15),
51/52 from build (BLD-1).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.layers import ConfigMetadata, LayerTypes, MetadataProcess, load_layer_toml
from lifecycle.cnb.order import OrderEntry, OrderGroup
from lifecycle.env import (
    EnvOperation,
    build_layer_operations,
    filter_platform_env,
    launch_operations,
    read_user_env,
)
from lifecycle.errors import ConfigError, DetectFailed
from lifecycle.execution.executor import BuildpackExecutor, TargetInfo
from lifecycle.execution.host import HostRunner
from lifecycle.execution.runner import Workspace
from lifecycle.phases.build import Builder, BuildInputs
from lifecycle.phases.detect import Detector
from lifecycle.platform.authoring import check_buildpack
from lifecycle.platform.workspace import copy_app, write_platform_env

__all__ = [
    "LayerReport",
    "TrialPhases",
    "TrialReport",
    "host_target",
    "layer_reports",
    "run_trial",
    "try_buildpack",
]

Log = Callable[[str], None]

# Where the layers sit in a build container and in the app image, for the env shown.
LAYERS_IN_IMAGE = PurePosixPath("/layers")
_NOT_LAYERS = frozenset({"launch", "build", "store"})  # their .toml files are not layers (BLD-5)
# uname machine -> OCI architecture and variant.
_ARCHES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


@dataclass(frozen=True)
class LayerReport:
    """One layer a buildpack wrote: ``<name>.toml`` and its dir (None when it left no dir)."""

    name: str
    types: LayerTypes
    metadata: dict[str, Any]
    size: int | None


@dataclass(frozen=True)
class TrialReport:
    """What one buildpack's detect and build produced."""

    buildpack: BuildpackDescriptor
    plan: tuple[str, ...]  # names of the plan entries the buildpack was given
    layers: tuple[LayerReport, ...]
    processes: tuple[MetadataProcess, ...]
    default_process: str | None
    launch_env: tuple[EnvOperation, ...]
    build_env: tuple[EnvOperation, ...]
    layers_dir: Path | None  # where they were kept (``--layers``); None for a removed scratch dir

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON data (``buildpack test --output json``)."""
        info = self.buildpack.buildpack
        return {
            "buildpack": {"id": info.id, "version": info.version, "api": str(self.buildpack.api)},
            "plan": list(self.plan),
            "layers": [
                {
                    "name": layer.name,
                    "types": layer.types.model_dump(),
                    "metadata": layer.metadata,
                    "size": layer.size,
                }
                for layer in self.layers
            ],
            "processes": [
                {
                    "type": p.type,
                    "command": list(p.command),
                    "args": list(p.args),
                    "default": p.type == self.default_process,
                }
                for p in self.processes
            ],
            "launch_env": [_operation_json(op) for op in self.launch_env],
            "build_env": [_operation_json(op) for op in self.build_env],
            "layers_dir": str(self.layers_dir) if self.layers_dir else None,
        }


def _operation_json(operation: EnvOperation) -> dict[str, str]:
    shown = {"name": operation.name, "op": operation.op.value, "value": operation.value}
    return shown | ({"delim": operation.delim} if operation.delim is not None else {})


@dataclass(frozen=True)
class TrialPhases:
    """Callbacks for phase headers and the buildpack's live output."""

    phase: Log
    output: Log
    info: Log


def host_target() -> TargetInfo:
    """This machine as a CNB target: os, architecture, and distro from /etc/os-release (DET-11)."""
    uname = os.uname()
    arch, variant = _ARCHES.get(uname.machine, (uname.machine, None))
    release = platform.freedesktop_os_release() if Path("/etc/os-release").is_file() else {}
    return TargetInfo(
        os=uname.sysname.lower(),
        arch=arch,
        arch_variant=variant,
        distro_name=release.get("ID"),
        distro_version=release.get("VERSION_ID"),
    )


def try_buildpack(
    directory: Path,
    app: Path,
    phases: TrialPhases,
    *,
    env: Mapping[str, str] | None = None,
    layers_dir: Path | None = None,
) -> TrialReport:
    """Run detect then build of the buildpack in ``directory`` against a copy of ``app``.

    ``layers_dir`` keeps the layers between runs (so a buildpack's reuse can be seen);
    without it they go in a scratch dir that is removed afterwards.
    """
    descriptor = check_buildpack(directory)
    if descriptor.is_composite:
        raise ConfigError(
            "test buildpack",
            f"{directory / 'buildpack.toml'}: order makes {descriptor.ref} a composite "
            "(test the buildpacks it lists, or build with it)",
        )
    with _scratch() as work:
        # Absolute: the buildpack runs in the app copy and must find its layers from there.
        layers = layers_dir.resolve() if layers_dir is not None else work / "layers"
        layers.mkdir(parents=True, exist_ok=True)
        copy_app(app, work / "app")
        write_platform_env(work / "platform", env or {})
        workspace = Workspace(work / "app", layers, work / "platform", {descriptor.ref: directory.resolve()})
        executor = BuildpackExecutor(HostRunner(), workspace, host_target(), output=phases.output)
        report = run_trial(descriptor, executor, phases)
    return report if layers_dir is not None else dataclasses.replace(report, layers_dir=None)


@contextmanager
def _scratch() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="pybuild-buildpack-test-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_trial(
    descriptor: BuildpackDescriptor, executor: BuildpackExecutor, phases: TrialPhases
) -> TrialReport:
    """Detect then build of one buildpack through ``executor``; what it made (DET-15, BLD-1)."""
    layers = executor.workspace.layers
    base_env = filter_platform_env(os.environ)
    user_env = read_user_env(executor.workspace.platform)
    order = (
        OrderGroup(group=(OrderEntry(id=descriptor.buildpack.id, version=descriptor.buildpack.version),)),
    )
    phases.phase("DETECTING")
    try:
        group, plan = Detector(order, {descriptor.ref: descriptor}, executor, base_env, user_env).detect()
    except DetectFailed as exc:
        if exc.errored:
            raise
        raise DetectFailed(
            f"{descriptor.ref} stepped aside: bin/detect exited with 100", errored=False
        ) from None
    phases.info(f"{descriptor.ref} passed")
    phases.phase("BUILDING")
    metadata = Builder(BuildInputs(tuple(group), plan, layers, base_env, user_env), executor).build()
    names = tuple(require.name for entry in plan.entries for require in entry.requires)
    return _report(descriptor, names, layers, metadata)


def _report(
    descriptor: BuildpackDescriptor, plan: tuple[str, ...], layers: Path, metadata: ConfigMetadata
) -> TrialReport:
    escaped = escape_id(descriptor.buildpack.id)
    bp_dir = layers / escaped
    found = layer_reports(bp_dir)
    visible = LAYERS_IN_IMAGE / escaped
    launch = [layer.name for layer in found if layer.types.launch]
    build_env = [
        op
        for layer in found
        if layer.types.build
        for op in build_layer_operations(bp_dir / layer.name, visible_as=visible / layer.name)
    ]
    return TrialReport(
        buildpack=descriptor,
        plan=plan,
        layers=found,
        processes=metadata.processes,
        default_process=metadata.buildpack_default_process_type,
        launch_env=tuple(launch_operations(bp_dir, launch, visible_as=visible)),
        build_env=tuple(build_env),
        layers_dir=layers,
    )


def layer_reports(bp_dir: Path) -> tuple[LayerReport, ...]:
    """Each ``<layer>.toml`` under one buildpack's layers dir, by name (BLD-3)."""
    reports = []
    for toml in sorted(bp_dir.glob("*.toml")):
        if toml.stem in _NOT_LAYERS:
            continue
        layer = load_layer_toml(toml)
        layer_dir = bp_dir / toml.stem
        size = _tree_size(layer_dir) if layer_dir.is_dir() else None
        reports.append(LayerReport(toml.stem, layer.types, dict(layer.metadata), size))
    return tuple(reports)


def _tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (links not followed)."""
    return sum(
        (Path(dirpath) / name).lstat().st_size
        for dirpath, _, files in os.walk(root)
        for name in files
        if (Path(dirpath) / name).is_file()
    )
