"""Image extensions at detect and generate time: `bin/detect` and `bin/generate` (DET-16, GEN-5).

An extension runs in the build-image sandbox like a buildpack, with `CNB_EXTENSION_DIR` in place
of `CNB_BUILDPACK_DIR`. Detect: a missing `bin/detect` passes (its `detect/plan.toml`, if any,
is the plan), and a plan with `requires` is an error, since extensions only provide.

Generate runs each extension of the group in order with `<output> <platform> <plan>` and
`CNB_OUTPUT_DIR=<layers>/generated/<escaped id>`; without `bin/generate`, its `generate/` dir is
copied there instead. A non-zero exit is exit code 91; any other problem with what it wrote
(a Dockerfile that does not parse, a bad extend-config.toml, both `context` and `context.<kind>`)
is 92. Each extension meets every plan entry it was given: those leave the plan the buildpacks
see. The run image is selected as the platform spec says: the last `run.Dockerfile` whose
`FROM` names an image switches the run image, and the run Dockerfiles before it are renamed
`*.ignore`; any remaining Dockerfile with instructions beyond `FROM` extends its image.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lifecycle.cnb import write_toml
from lifecycle.cnb.extension import ExtendConfig, ExtensionDir, load_extend_config
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.plan import BuildpackPlan, PlanEntry, PlanToml, load_detect_plan
from lifecycle.env import Env, user_env_operations
from lifecycle.errors import ConfigError, ExitCode, PybuildError
from lifecycle.execution.executor import SCRATCH, BuildpackExecutor
from lifecycle.execution.runner import ProcessRequest
from lifecycle.phases.resolve import DetectResult, DetectStatus

if TYPE_CHECKING:
    from lifecycle.cnb.dockerfile import Dockerfile

__all__ = [
    "GENERATED",
    "GenerateFailed",
    "GenerateResult",
    "GeneratedDockerfile",
    "Generator",
    "detect_extension",
]

GENERATED = "generated"  # <layers>/generated/<escaped id>/: each extension's output

Kind = Literal["build", "run"]


class GenerateFailed(PybuildError):
    """`bin/generate` failed (91) or its output cannot be used (92)."""

    exit_code = ExitCode.GENERATE_OTHER


def _extension_env(executor: BuildpackExecutor, extension: ExtensionDir, env: Env) -> dict[str, str]:
    features = extension.descriptor.features
    values = dict(env)
    values["CNB_EXTENSION_DIR"] = executor.paths.buildpacks[extension.ref]
    values["CNB_PLATFORM_DIR"] = executor.paths.platform
    if features.targets:
        values.update(executor.target.env())
    if features.exec_env:
        values["CNB_EXEC_ENV"] = executor.exec_env
    return values


def _scratch_plan(executor: BuildpackExecutor, phase: str, extension: ExtensionDir) -> tuple[Path, str]:
    relative = f"{_scratch_dir(phase, extension)}/plan.toml"
    host = executor.workspace.layers / relative
    host.parent.mkdir(parents=True, exist_ok=True)
    host.unlink(missing_ok=True)
    return host, f"{executor.paths.layers}/{relative}"


def _scratch_dir(phase: str, extension: ExtensionDir) -> str:
    return f"{SCRATCH}/{phase}-extension/{escape_id(extension.descriptor.extension.id)}"


def _run(
    executor: BuildpackExecutor, argv: list[str], env: Mapping[str, str], writable: tuple[str, ...]
) -> int:
    """Run in the sandbox; of the layers dir only ``writable`` (the extension's own dirs) may change."""
    request = ProcessRequest(argv, env, executor.paths.app, writable_layers=writable)
    return executor.runner.run(request, executor.workspace, executor.output)


def detect_extension(
    executor: BuildpackExecutor, extension: ExtensionDir, env: Env
) -> tuple[DetectResult, str]:
    """Run an extension's `bin/detect` (or take its `detect/` output); the result and any error reason."""
    ref = extension.ref
    if not extension.has_detect:
        ready = extension.detect_dir / "plan.toml"
        return _checked_plan(ref, ready if ready.is_file() else None)
    executable = extension.path / "bin" / "detect"
    if not os.access(executable, os.X_OK):
        return DetectResult(DetectStatus.ERROR, extension=True), f"{executable} is not executable (chmod +x)"
    plan_host, plan_path = _scratch_plan(executor, "detect", extension)
    plan_host.touch()
    values = _extension_env(executor, extension, env)
    values["CNB_BUILD_PLAN_PATH"] = plan_path
    sandbox_dir = executor.paths.buildpacks[ref]
    argv = [f"{sandbox_dir}/bin/detect", executor.paths.platform, plan_path]
    code = _run(executor, argv, values, (_scratch_dir("detect", extension),))
    if code == 100:
        return DetectResult(DetectStatus.FAIL, extension=True), ""
    if code != 0:
        return DetectResult(DetectStatus.ERROR, extension=True), f"{ref}: bin/detect exited with {code}"
    return _checked_plan(ref, plan_host)


def _checked_plan(ref: str, path: Path | None) -> tuple[DetectResult, str]:
    """DET-16: an extension's plan may only provide."""
    if path is None:
        return DetectResult(DetectStatus.PASS, extension=True), ""
    try:
        plan = load_detect_plan(path)
    except ConfigError as exc:
        return DetectResult(DetectStatus.ERROR, extension=True), str(exc.cause)
    if any(section.requires for section in plan.alternatives()):
        reason = f"{ref}: an image extension may only provide, but its plan has [[requires]] (remove them)"
        return DetectResult(DetectStatus.ERROR, extension=True), reason
    return DetectResult(DetectStatus.PASS, plan, extension=True), ""


@dataclass(frozen=True)
class GeneratedDockerfile:
    """One Dockerfile an extension generated, with its build args and build context."""

    extension_id: str
    kind: Kind
    path: Path
    dockerfile: Dockerfile
    context: Path
    args: Mapping[str, str]

    def base_image(self) -> str | None:
        """The image its `FROM` names, or None for `FROM ${base_image}`."""
        return self.dockerfile.base_image(self.args) if self.dockerfile.switches_base else None


@dataclass(frozen=True)
class GenerateResult:
    """What generate decided: the Dockerfiles to apply, the plan left for buildpacks, the run image."""

    build: tuple[GeneratedDockerfile, ...] = ()
    run: tuple[GeneratedDockerfile, ...] = ()  # only those after the switch, if any
    plan: PlanToml = field(default_factory=PlanToml)
    run_image: str | None = None  # a run.Dockerfile's FROM switched the run image to this

    @property
    def extend_build(self) -> bool:
        return bool(self.build)

    @property
    def extend_run(self) -> bool:
        """Some run.Dockerfile still to apply has instructions beyond FROM."""
        return any(d.dockerfile.extends for d in self.run)


@dataclass
class Generator:
    """Runs `bin/generate` for each extension of the group, in order."""

    extensions: Sequence[ExtensionDir]
    plan: PlanToml
    executor: BuildpackExecutor
    base_env: Env
    user_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def generated_dir(self) -> Path:
        return self.executor.workspace.layers / GENERATED

    def generate(self) -> GenerateResult:
        entries = list(self.plan.entries)
        found: list[GeneratedDockerfile] = []
        for extension in self.extensions:
            mine = [e for e in entries if _provided_by(e, extension)]
            output = self._run_one(extension, mine)
            found += _read_outputs(extension, output, self.executor.workspace.app)
            met = {e.requires[0].name for e in mine if e.requires}
            entries = [e for e in entries if not (e.requires and e.requires[0].name in met)]
        run, switched = _select_run([d for d in found if d.kind == "run"])
        build = tuple(d for d in found if d.kind == "build")
        return GenerateResult(build, run, PlanToml(entries=tuple(entries)), switched)

    def _run_one(self, extension: ExtensionDir, entries: list[PlanEntry]) -> Path:
        ref = extension.ref
        name = escape_id(extension.descriptor.extension.id)
        output = self.generated_dir / name
        if output.exists():
            shutil.rmtree(output)
        output.mkdir(parents=True)
        if not extension.has_generate:
            shutil.copytree(extension.generate_dir, output, symlinks=True, dirs_exist_ok=True)
            return output
        executable = extension.path / "bin" / "generate"
        if not os.access(executable, os.X_OK):
            raise GenerateFailed(f"generate with {ref}", f"{executable} is not executable (chmod +x)")
        plan_host, plan_path = _scratch_plan(self.executor, "generate", extension)
        write_toml(plan_host, BuildpackPlan(entries=tuple(r for e in entries for r in e.requires)))
        env = self.base_env
        if not extension.descriptor.extension.clear_env:
            env = env.apply(user_env_operations(self.user_env))
        values = _extension_env(self.executor, extension, env)
        output_path = f"{self.executor.paths.layers}/{GENERATED}/{name}"
        values.update(CNB_OUTPUT_DIR=output_path, CNB_BP_PLAN_PATH=plan_path)
        argv = [f"{self.executor.paths.buildpacks[ref]}/bin/generate", output_path]
        own = (f"{GENERATED}/{name}", _scratch_dir("generate", extension))
        code = _run(self.executor, [*argv, self.executor.paths.platform, plan_path], values, own)
        if code != 0:
            raise GenerateFailed(
                f"generate with {ref}",
                f"bin/generate exited with {code}",
                exit_code=ExitCode.GENERATE_EXTENSION,
            )
        return output


def _provided_by(entry: PlanEntry, extension: ExtensionDir) -> bool:
    info = extension.descriptor.extension
    return any(p.extension and p.id == info.id and p.version == info.version for p in entry.providers)


def _read_outputs(extension: ExtensionDir, output: Path, app: Path) -> list[GeneratedDockerfile]:
    """The Dockerfiles in `output`, parsed, with their args and contexts (run first, then build)."""
    from lifecycle.cnb.dockerfile import parse_dockerfile  # only once an extension has run

    ref = extension.ref
    config_path = output / "extend-config.toml"
    try:
        config = load_extend_config(config_path) if _exists(config_path) else ExtendConfig()
    except ConfigError as exc:
        raise GenerateFailed(f"generate with {ref}", exc.cause) from None
    found = []
    kinds: tuple[Kind, ...] = ("run", "build")
    for kind in kinds:
        path = output / f"{kind}.Dockerfile"
        if not _exists(path):
            continue
        if path.is_symlink() or not path.is_file():
            raise GenerateFailed(f"generate with {ref}", f"{path} is not a regular file (write a plain file)")
        try:
            dockerfile = parse_dockerfile(path, kind=kind)
        except PybuildError as exc:
            raise GenerateFailed(f"parse {kind}.Dockerfile of {ref}", exc.cause) from None
        args = {arg.name: arg.value for arg in config.args(kind)}
        context = _context(ref, output, kind, app)
        found.append(
            GeneratedDockerfile(extension.descriptor.extension.id, kind, path, dockerfile, context, args)
        )
    return found


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _context(ref: str, output: Path, kind: Kind, app: Path) -> Path:
    """`context`, else `context.<kind>`, else the app dir; `context` with `context.*` is an error."""
    shared, own = output / "context", output / f"context.{kind}"
    specific = [p for p in (output / "context.build", output / "context.run") if p.is_dir()]
    if shared.is_dir() and specific:
        raise GenerateFailed(
            f"generate with {ref}",
            f"{output} has both context and {specific[0].name} (use one of them)",
        )
    for candidate in (shared, own):
        if candidate.is_dir() and not candidate.is_symlink():
            return candidate
    return app


def _select_run(run: list[GeneratedDockerfile]) -> tuple[tuple[GeneratedDockerfile, ...], str | None]:
    """The run Dockerfiles still to apply, and the run image the last switching one names."""
    for index in range(len(run) - 1, -1, -1):
        image = run[index].base_image()
        if image is None:
            continue
        for ignored in run[:index]:
            ignored.path.rename(ignored.path.with_name(ignored.path.name + ".ignore"))
        return tuple(run[index:]), image
    return tuple(run), None
