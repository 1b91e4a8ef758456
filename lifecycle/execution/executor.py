"""The CNB buildpack protocol over a Runner: argv, ``CNB_*`` env, plan files, results.

Only in-sandbox paths reach a buildpack (``/workspace``, ``/layers``,
``/platform``, ``/cnb/buildpacks/<escaped id>/<version>`` under bwrap); the host side of
each file is known here so results can be read back (DET-4, DET-5, BLD-1, §4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lifecycle.cnb import write_toml
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.plan import BuildpackPlan, DetectPlan, load_detect_plan
from lifecycle.env import Env
from lifecycle.errors import ConfigError, ExitCode
from lifecycle.execution.runner import OutputSink, ProcessRequest, Runner, SandboxPaths, Workspace
from lifecycle.execution.secrets import NO_SECRETS, Secrets

__all__ = ["BuildpackExecutor", "DetectOutcome", "DetectStatus", "TargetInfo"]

SCRATCH = ".pybuild"  # under <layers>: plan files; never exported


@dataclass(frozen=True)
class TargetInfo:
    """The run image's target, as ``CNB_TARGET_*`` (§4; optional ones never empty, lifecycle#1371)."""

    os: str = "linux"
    arch: str = "amd64"
    arch_variant: str | None = None
    distro_name: str | None = None
    distro_version: str | None = None

    def env(self) -> dict[str, str]:
        values = {
            "CNB_TARGET_OS": self.os,
            "CNB_TARGET_ARCH": self.arch,
            "CNB_TARGET_ARCH_VARIANT": self.arch_variant,
            "CNB_TARGET_DISTRO_NAME": self.distro_name,
            "CNB_TARGET_DISTRO_VERSION": self.distro_version,
        }
        return {name: value for name, value in values.items() if value}


class DetectStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True)
class DetectOutcome:
    status: DetectStatus
    plan: DetectPlan = field(default_factory=DetectPlan)
    reason: str = ""


@dataclass
class BuildpackExecutor:
    """Runs ``bin/detect`` and ``bin/build`` of buildpacks through one runner."""

    runner: Runner
    workspace: Workspace
    target: TargetInfo = field(default_factory=TargetInfo)
    exec_env: str = "production"
    output: OutputSink = print
    secrets: Secrets = NO_SECRETS  # at <platform>/secrets/<id> for bin/detect and bin/build only

    @property
    def paths(self) -> SandboxPaths:
        return self.runner.paths(self.workspace)

    def host_dir(self, buildpack: BuildpackDescriptor) -> Path:
        return self.workspace.buildpacks[buildpack.ref]

    def _common_env(self, buildpack: BuildpackDescriptor, env: Env) -> dict[str, str]:
        features = buildpack.features
        values = dict(env)
        values["CNB_BUILDPACK_DIR"] = self.paths.buildpacks[buildpack.ref]
        if not features.positional_args_only:
            values["CNB_PLATFORM_DIR"] = self.paths.platform
        if features.targets:
            values.update(self.target.env())
        if features.exec_env:
            values["CNB_EXEC_ENV"] = self.exec_env
        return values

    def _scratch(self, phase: str, buildpack: BuildpackDescriptor) -> tuple[Path, str]:
        """A per-buildpack plan file: host path and sandbox path."""
        relative = f"{_scratch_dir(phase, buildpack)}/plan.toml"
        host = self.workspace.layers / relative
        host.parent.mkdir(parents=True, exist_ok=True)
        host.unlink(missing_ok=True)
        return host, f"{self.paths.layers}/{relative}"

    def detect(self, buildpack: BuildpackDescriptor, env: Env) -> DetectOutcome:
        """Run ``bin/detect``: 0 pass, 100 fail, anything else error (DET-4, DET-5)."""
        problem = _not_runnable(self.host_dir(buildpack) / "bin" / "detect")
        if problem:
            return DetectOutcome(DetectStatus.ERROR, reason=problem)
        plan_host, plan_path = self._scratch("detect", buildpack)
        plan_host.touch()
        values = self._common_env(buildpack, env)
        if not buildpack.features.positional_args_only:
            values["CNB_BUILD_PLAN_PATH"] = plan_path
        argv = [f"{self.paths.buildpacks[buildpack.ref]}/bin/detect", self.paths.platform, plan_path]
        code = self._run(argv, values, (_scratch_dir("detect", buildpack),))
        if code == 100:
            return DetectOutcome(DetectStatus.FAIL)
        if code != 0:
            return DetectOutcome(DetectStatus.ERROR, reason=f"{buildpack.ref}: bin/detect exited with {code}")
        try:
            return DetectOutcome(DetectStatus.PASS, load_detect_plan(plan_host))
        except ConfigError as exc:
            return DetectOutcome(DetectStatus.ERROR, reason=str(exc.cause))

    def build(self, buildpack: BuildpackDescriptor, plan: BuildpackPlan, env: Env) -> int:
        """Run ``bin/build`` with ``<layers>/<id> <platform> <plan>`` (BLD-1); its exit code."""
        problem = _not_runnable(self.host_dir(buildpack) / "bin" / "build")
        if problem:
            raise ConfigError(f"build with {buildpack.ref}", problem, exit_code=ExitCode.BUILD_OTHER)
        layers_dir = f"{self.paths.layers}/{escape_id(buildpack.buildpack.id)}"
        (self.workspace.layers / escape_id(buildpack.buildpack.id)).mkdir(parents=True, exist_ok=True)
        plan_host, plan_path = self._scratch("build", buildpack)
        write_toml(plan_host, plan)
        values = self._common_env(buildpack, env)
        if not buildpack.features.positional_args_only:
            values.update(CNB_BP_PLAN_PATH=plan_path, CNB_LAYERS_DIR=layers_dir)
        argv = [
            f"{self.paths.buildpacks[buildpack.ref]}/bin/build",
            layers_dir,
            self.paths.platform,
            plan_path,
        ]
        own = escape_id(buildpack.buildpack.id)
        return self._run(argv, values, (own, _scratch_dir("build", buildpack)))

    def _run(self, argv: list[str], env: dict[str, str], writable: tuple[str, ...]) -> int:
        """Run in the sandbox; of the layers dir only ``writable`` (its own dirs) may change."""
        request = ProcessRequest(argv, env, self.paths.app, self.secrets, writable)
        return self.runner.run(request, self.workspace, self.output)


def _scratch_dir(phase: str, buildpack: BuildpackDescriptor) -> str:
    """The buildpack's own scratch dir of ``phase`` (its plan file), relative to the layers dir."""
    return f"{SCRATCH}/{phase}/{escape_id(buildpack.buildpack.id)}"


def _not_runnable(executable: Path) -> str | None:
    """Why ``executable`` cannot be run, naming the file and the fix; None when it can."""
    if not executable.is_file():
        return f"{executable} does not exist (add bin/{executable.name})"
    if not os.access(executable, os.X_OK):
        return f"{executable} is not executable (chmod +x bin/{executable.name})"
    return None
