"""The build phase: run each buildpack of the group, collect its outputs (BLD-1..14).

Inputs are plain values and an executor; the result is the ``config/metadata.toml``
the exporter and the launcher read. No flags, env vars or exits in here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lifecycle.cnb import write_toml
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import check_layer_name, escape_id
from lifecycle.cnb.layers import (
    ConfigMetadata,
    Label,
    LaunchToml,
    LayerToml,
    LayerTypes,
    MetadataProcess,
    Slice,
    load_launch_toml,
    load_layer_toml,
)
from lifecycle.cnb.order import GroupElement
from lifecycle.cnb.plan import BuildpackPlan, PlanEntry, PlanToml, load_build_toml
from lifecycle.env import Env, EnvOperation, build_layer_operations, user_env_operations
from lifecycle.errors import ConfigError, ExitCode, PybuildError
from lifecycle.execution.executor import BuildpackExecutor
from lifecycle.phases.sbom import SbomError, collect_sbom

__all__ = ["BuildFailed", "BuildInputs", "Builder"]


class BuildFailed(PybuildError):
    """A ``bin/build`` exited non-zero (exit 51) or wrote something invalid (52)."""

    exit_code = ExitCode.BUILD_BUILDPACK


@dataclass(frozen=True)
class BuildInputs:
    group: tuple[BuildpackDescriptor, ...]
    plan: PlanToml
    layers_dir: Path  # host side
    base_env: Env
    user_env: dict[str, str] = field(default_factory=dict)
    operator_env: tuple[EnvOperation, ...] = ()


@dataclass
class _Outputs:
    processes: dict[str, MetadataProcess] = field(default_factory=dict)
    default_type: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    slices: list[Slice] = field(default_factory=list)


class Builder:
    """Runs ``bin/build`` for each buildpack in group order (BLD-1)."""

    def __init__(self, inputs: BuildInputs, executor: BuildpackExecutor) -> None:
        self.inputs = inputs
        self.executor = executor

    def build(self) -> ConfigMetadata:
        env = self.inputs.base_env
        entries = list(self.inputs.plan.entries)
        outputs = _Outputs()
        for buildpack in self.inputs.group:
            mine = [e for e in entries if _provides(e, buildpack)]
            self._run(buildpack, mine, self._env_for(buildpack, env))
            bp_dir = self.inputs.layers_dir / escape_id(buildpack.buildpack.id)
            entries = _remaining(entries, mine, _unmet(bp_dir, mine, buildpack))
            env = env.apply(self._settle_layers(buildpack, bp_dir))
            _collect_launch(bp_dir, buildpack, outputs)
        metadata = _metadata(self.inputs.group, outputs)
        config_dir = self.inputs.layers_dir / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        write_toml(config_dir / "metadata.toml", metadata)
        return metadata

    def _env_for(self, buildpack: BuildpackDescriptor, env: Env) -> Env:
        """User env again before each buildpack unless clear-env; operator env last (BLD-8)."""
        if not buildpack.buildpack.clear_env:
            env = env.apply(user_env_operations(self.inputs.user_env))
        return env.apply(self.inputs.operator_env)

    def _run(self, buildpack: BuildpackDescriptor, entries: list[PlanEntry], env: Env) -> None:
        plan = BuildpackPlan(entries=tuple(r for e in entries for r in e.requires))
        code = self.executor.build(buildpack, plan, env)
        if code != 0:
            raise BuildFailed(f"build with {buildpack.ref}", f"bin/build exited with {code}")

    def _settle_layers(self, buildpack: BuildpackDescriptor, bp_dir: Path) -> list[EnvOperation]:
        """Hide unused layers (BLD-4), gather SBOMs (BLD-13), return build env changes (BLD-6)."""
        types_by_layer = _layer_types(bp_dir, buildpack)
        operations: list[EnvOperation] = []
        visible = PurePosixPath(self.executor.paths.layers, escape_id(buildpack.buildpack.id))
        for name, types in types_by_layer.items():
            if not (types.launch or types.build or types.cache):
                _hide(bp_dir / name)
            elif types.build and (bp_dir / name).is_dir():
                operations += build_layer_operations(bp_dir / name, visible_as=visible / name)
        try:
            collect_sbom(bp_dir, self.inputs.layers_dir, buildpack, types_by_layer)
        except SbomError as exc:
            raise BuildFailed(
                f"build with {buildpack.ref}", str(exc), exit_code=ExitCode.BUILD_OTHER
            ) from None
        return operations


def _layer_types(bp_dir: Path, buildpack: BuildpackDescriptor) -> dict[str, LayerTypes]:
    """Each ``<layer>.toml``'s types, by layer name, checking names (BLD-3, BLD-5)."""
    _refuse_reserved_dirs(bp_dir, buildpack)
    found: dict[str, LayerTypes] = {}
    for toml in sorted(bp_dir.glob("*.toml")):
        name = toml.stem
        if name in ("launch", "build", "store"):
            continue
        try:
            check_layer_name(name)
        except ValueError as exc:
            raise BuildFailed(
                f"build with {buildpack.ref}", f"{toml}: {exc}", exit_code=ExitCode.BUILD_OTHER
            ) from None
        found[name] = _load(toml, buildpack).types
    return found


def _load(toml: Path, buildpack: BuildpackDescriptor) -> LayerToml:
    try:
        return load_layer_toml(toml)
    except ConfigError as exc:
        raise BuildFailed(f"build with {buildpack.ref}", exc.cause, exit_code=ExitCode.BUILD_OTHER) from None


def _refuse_reserved_dirs(bp_dir: Path, buildpack: BuildpackDescriptor) -> None:
    """A layer dir named build, launch or store would clash with those files (BLD-5)."""
    for name in ("build", "launch", "store"):
        if (bp_dir / name).is_dir():
            raise BuildFailed(
                f"build with {buildpack.ref}",
                f'{bp_dir / name}: layer name "{name}" is reserved (rename the layer)',
                exit_code=ExitCode.BUILD_OTHER,
            )


def _hide(layer_dir: Path) -> None:
    if layer_dir.is_dir():
        target = layer_dir.with_name(layer_dir.name + ".ignore")
        if target.exists():
            shutil.rmtree(target)
        layer_dir.rename(target)


def _provides(entry: PlanEntry, buildpack: BuildpackDescriptor) -> bool:
    info = buildpack.buildpack
    return any(p.id == info.id and p.version == info.version for p in entry.providers)


def _unmet(bp_dir: Path, mine: list[PlanEntry], buildpack: BuildpackDescriptor) -> set[str]:
    path = bp_dir / "build.toml"
    if not path.is_file():
        return set()
    try:
        names = {u.name for u in load_build_toml(path).unmet}
    except ConfigError as exc:
        raise BuildFailed(f"build with {buildpack.ref}", exc.cause, exit_code=ExitCode.BUILD_OTHER) from None
    unknown = names - {r.name for e in mine for r in e.requires}
    if unknown:
        raise BuildFailed(
            f"build with {buildpack.ref}",
            f"{path}: unmet entry {sorted(unknown)[0]!r} is not in this buildpack's plan (remove it)",
            exit_code=ExitCode.BUILD_OTHER,
        )
    return names


def _remaining(entries: list[PlanEntry], mine: list[PlanEntry], unmet: set[str]) -> list[PlanEntry]:
    """Entries met by this buildpack go; unmet ones pass to the next provider (BLD-2)."""
    return [e for e in entries if e not in mine or any(r.name in unmet for r in e.requires)]


def _collect_launch(bp_dir: Path, buildpack: BuildpackDescriptor, outputs: _Outputs) -> None:
    path = bp_dir / "launch.toml"
    if not path.is_file():
        return
    try:
        launch = load_launch_toml(path, buildpack.features)
    except ConfigError as exc:
        raise BuildFailed(f"build with {buildpack.ref}", exc.cause, exit_code=ExitCode.BUILD_OTHER) from None
    _merge_processes(launch, buildpack, outputs)
    outputs.labels.update({label.key: label.value for label in launch.labels})
    outputs.slices.extend(launch.slices)


def _merge_processes(launch: LaunchToml, buildpack: BuildpackDescriptor, outputs: _Outputs) -> None:
    """Later buildpacks win per type; the last default wins, a plain redefinition drops it (BLD-11)."""
    direct_always = not buildpack.features.direct_allowed
    for process in launch.processes:
        outputs.processes[process.type] = MetadataProcess(
            type=process.type,
            command=process.command,
            args=process.args,
            direct=True if direct_always else process.direct,
            buildpack_id=buildpack.buildpack.id,
            working_dir=process.working_dir,
            exec_env=process.exec_env,
        )
        if process.default:
            outputs.default_type = process.type
        elif outputs.default_type == process.type:
            outputs.default_type = None


def _metadata(group: tuple[BuildpackDescriptor, ...], outputs: _Outputs) -> ConfigMetadata:
    return ConfigMetadata(
        buildpacks=tuple(
            GroupElement(
                id=b.buildpack.id, version=b.buildpack.version, api=b.api, homepage=b.buildpack.homepage
            )
            for b in group
        ),
        processes=tuple(outputs.processes[t] for t in sorted(outputs.processes)),
        slices=tuple(outputs.slices),
        labels=tuple(Label(key=k, value=v) for k, v in outputs.labels.items()),
        buildpack_default_process_type=outputs.default_type,
    )
