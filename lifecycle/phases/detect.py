"""The detect phase: run ``bin/detect`` through the executor and resolve the group.

Plan resolution itself is pure (``resolve``); this module adds what needs the
outside world: target matching against the run image (DET-11), exec-env
skipping (DET-12), and reasons for errors so the final message names them.

Image extensions (DET-16) take part through the same resolver: `order-extensions` becomes an
optional composite in front of every group, its extensions optional members that only provide
(`extensions` below); the winning group is then split into `[[group]]` and `[[group-extensions]]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lifecycle.cnb import write_toml
from lifecycle.cnb.buildpack import BuildpackDescriptor, Target
from lifecycle.cnb.order import GroupElement, GroupToml, OrderEntry, OrderGroup, SystemToml
from lifecycle.cnb.plan import PlanToml
from lifecycle.env import Env, user_env_operations
from lifecycle.errors import ConfigError, DetectFailed, ExitCode
from lifecycle.execution.executor import BuildpackExecutor, DetectStatus, TargetInfo
from lifecycle.phases.detect_extensions import ExtensionOrder
from lifecycle.phases.resolve import DetectResult, resolve
from lifecycle.phases.resolve import DetectStatus as Status

__all__ = ["Detector", "target_matches"]


def target_matches(targets: Sequence[Target], run: TargetInfo) -> bool:
    """DET-11: os/arch/variant equal where both are set; a listed distro must match."""
    if not targets:
        return True
    return any(_one_matches(t, run) for t in targets)


def _one_matches(target: Target, run: TargetInfo) -> bool:
    pairs = ((target.os, run.os), (target.arch, run.arch), (target.variant, run.arch_variant))
    if any(want and have and want != have for want, have in pairs):
        return False
    if not target.distros or not run.distro_name:
        return True
    return any(
        d.name == run.distro_name and (not d.version or d.version == run.distro_version)
        for d in target.distros
    )


class Detector:
    def __init__(
        self,
        order: Sequence[OrderGroup],
        buildpacks: Mapping[str, BuildpackDescriptor],
        executor: BuildpackExecutor,
        base_env: Env,
        user_env: Mapping[str, str] | None = None,
        system: SystemToml | None = None,
        extensions: ExtensionOrder | None = None,
    ) -> None:
        self.order = order
        self.buildpacks = buildpacks
        self.executor = executor
        self.base_env = base_env
        self.user_env = dict(user_env or {})
        self.system = system
        self.extensions = extensions or ExtensionOrder()
        self.reasons: dict[str, str] = {}
        self.group_extensions: list[GroupElement] = []  # DET-14: the extensions of the winning group

    def _lookup(self, entry: OrderEntry) -> BuildpackDescriptor:
        if self.extensions.knows(entry):
            return self.extensions.lookup(entry)
        try:
            return self.buildpacks[entry.ref]
        except KeyError:
            raise ConfigError(
                "detect",
                f"order names {entry.ref}, which is not available (add it to the builder)",
                exit_code=ExitCode.DETECT_OTHER,
            ) from None

    def _detect(self, buildpack: BuildpackDescriptor) -> DetectResult:
        executor = self.executor
        if self.extensions.is_extension(buildpack.ref):
            matches = target_matches(buildpack.targets, executor.target)
            env = self._env_for(buildpack)
            result, reason = self.extensions.detect(buildpack.ref, executor, env, target_matches=matches)
            if reason:
                self.reasons[buildpack.ref] = reason
                executor.output(f"ERROR: {reason}")
            return result
        exec_envs = set(buildpack.buildpack.exec_env)
        if buildpack.features.exec_env and exec_envs and not {executor.exec_env, "*"} & exec_envs:
            return DetectResult(Status.SKIP)
        has_build = (executor.host_dir(buildpack) / "bin" / "build").is_file()
        if not target_matches(buildpack.effective_targets(has_bin_build=has_build), executor.target):
            self.reasons[buildpack.ref] = f"{buildpack.ref} does not support the run image's target"
            return DetectResult(Status.ERROR)
        outcome = executor.detect(buildpack, self._env_for(buildpack))
        if outcome.status is DetectStatus.ERROR:
            self.reasons[buildpack.ref] = outcome.reason
            executor.output(f"ERROR: {outcome.reason}")
            return DetectResult(Status.ERROR)
        return DetectResult(Status(outcome.status.value), outcome.plan)

    def _env_for(self, buildpack: BuildpackDescriptor) -> Env:
        if buildpack.buildpack.clear_env:
            return self.base_env
        return self.base_env.apply(user_env_operations(self.user_env))

    def detect(self, outputs: Path | None = None) -> tuple[list[BuildpackDescriptor], PlanToml]:
        """The winning group and its plan; with ``outputs``, also group.toml and plan.toml there (DET-14)."""
        try:
            order, system = self.extensions.prepend(self.order, self.system)
            resolution = resolve(order, self._lookup, self._detect, system=system)
        except DetectFailed as exc:
            if self.reasons:
                first = next(iter(self.reasons.values()))
                raise DetectFailed(f"{exc.cause}: {first}", errored=exc.errored) from None
            raise
        elements, self.group_extensions, plan = self.extensions.split(resolution)
        group = [self.buildpacks[element.ref] for element in elements]
        if outputs is not None:
            groups = GroupToml(group=tuple(elements), group_extensions=tuple(self.group_extensions))
            write_toml(outputs / "group.toml", groups)
            write_toml(outputs / "plan.toml", plan)
        return group, plan
