"""Launching without a shell: the launch plan evaluated in Python into a baked image config.

A run image with no `/bin/sh` cannot run `launcher.sh`. For such images the exporter
evaluates the plan here against the run image's env and writes the result into the image
config (Entrypoint, Cmd, Env, WorkingDir), with the same rules as the launcher: process
selection and exec env (LCH-2), args (LCH-3), env start (LCH-4), bin/lib and env files
(LCH-5, BLD-7), working dir (LCH-8). What a baked image gives up:

- exec.d programs (LCH-6) cannot run; `BakedLaunch.skipped` lists them so the exporter
  can warn.
- profile.d (LCH-7) and shell processes (`direct=false`) need a shell; baking one raises.
- The env is fixed at export time; a rebase onto a run image with a different env needs
  a new bake.
- One process is fixed at export time; `/cnb/process/<type>`, `CNB_PROCESS_TYPE` and
  user commands through the launcher are not available.

LCH-3 maps onto the OCI Entrypoint/Cmd split: from buildpack API 0.9 `args` go to Cmd,
which `docker run IMAGE ARGS...` replaces; below 0.9 they join the Entrypoint and user
arguments append.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from lifecycle.launcher.plan import (
    DEFAULT_APP_DIR,
    DEFAULT_EXEC_ENV,
    STRIPPED_VARS,
    EnvOp,
    LaunchPlan,
    LaunchPlanError,
    Process,
    by_buildpack,
    in_scope,
    usable_env,
)

__all__ = ["BakedLaunch", "apply_env_op", "bake", "launch_env"]

_LAUNCHER_PATH_DIRS = ("/cnb/process", "/cnb/lifecycle")  # LCH-4


@dataclass(frozen=True, kw_only=True)
class BakedLaunch:
    """The image config of a process launched without the launcher."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str]
    working_dir: str
    skipped: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        """What runs when the image is started with no arguments."""
        return self.entrypoint + self.cmd

    def config_env(self) -> list[str]:
        """`env` as OCI config `Env` entries, sorted so that the config is reproducible."""
        return [f"{name}={value}" for name, value in sorted(self.env.items())]


def bake(
    plan: LaunchPlan,
    run_env: Mapping[str, str],
    process_type: str | None = None,
    *,
    app_dir: str = DEFAULT_APP_DIR,
    exec_env: str = DEFAULT_EXEC_ENV,
) -> BakedLaunch:
    """Evaluate `process_type` (default: the plan's default process) for a shell-less image.

    `run_env` is the run image's config env, or the env the container will start with.
    Raises `LaunchPlanError` when there is no such process, it is not eligible for
    `exec_env` (LCH-2), or it needs a shell.
    """
    process = _select(plan, process_type, exec_env)
    if process.user_args_replace:
        entrypoint, cmd = process.command, process.args
    else:
        entrypoint, cmd = process.command + process.args, ()
    skipped = [
        s.path for layer in plan.layers for s in layer.exec_d if in_scope(s.process_type, process.type)
    ]
    return BakedLaunch(
        entrypoint=entrypoint,
        cmd=cmd,
        env=launch_env(plan, run_env, process.type),
        working_dir=_working_dir(process, app_dir),
        skipped=tuple(skipped),
    )


def launch_env(plan: LaunchPlan, run_env: Mapping[str, str], process_type: str | None) -> dict[str, str]:
    """The env a process starts with before exec.d (LCH-4, LCH-5); None: a user command."""
    env = {name: value for name, value in run_env.items() if name not in STRIPPED_VARS}
    if "PATH" in env:
        env["PATH"] = ":".join(d for d in env["PATH"].split(":") if d not in _LAUNCHER_PATH_DIRS)
    for group in by_buildpack(plan.layers):
        for layer in group:
            if layer.has_bin:
                apply_env_op(env, EnvOp(name="PATH", action="prepend", value=f"{layer.path}/bin", delim=":"))
            if layer.has_lib:
                apply_env_op(
                    env, EnvOp(name="LD_LIBRARY_PATH", action="prepend", value=f"{layer.path}/lib", delim=":")
                )
        for layer in group:
            for op in usable_env(layer):
                if in_scope(op.process_type, process_type):
                    apply_env_op(env, op)
    return env


def apply_env_op(env: dict[str, str], op: EnvOp) -> None:
    """BLD-7 on `env` in place; prepend/append add no delimiter next to an empty value."""
    old = env.get(op.name, "")
    if op.action == "override":
        env[op.name] = op.value
    elif op.action == "default":
        env[op.name] = old or op.value
    elif op.action == "prepend":
        env[op.name] = op.value + (op.delim + old if old else "")
    else:
        env[op.name] = (old + op.delim if old else "") + op.value


def _select(plan: LaunchPlan, process_type: str | None, exec_env: str) -> Process:
    process = plan.process(process_type) if process_type else plan.default_process
    if process is None:
        wanted = f"process type {process_type!r}" if process_type else "default process"
        raise LaunchPlanError("bake launch", f"the image has no {wanted}")
    if not process.eligible(exec_env):
        raise LaunchPlanError(
            "bake launch", f"process {process.type!r} does not run in exec env {exec_env!r}"
        )
    if not process.direct:
        raise LaunchPlanError("bake launch", f"process {process.type!r} is direct=false and needs a shell")
    return process


def _working_dir(process: Process, app_dir: str) -> str:
    return posixpath.join(app_dir, process.working_dir) if process.working_dir else app_dir
