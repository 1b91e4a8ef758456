"""The launch plan: what the exporter knows about processes and launch layers, as plain values.

This module owns the plan model and the launch rules that its two consumers share:
the order env steps run in (LCH-5), when user arguments replace `args` (LCH-3), which
processes an exec env may run (LCH-2), and which env names and values a POSIX shell can
carry. `planfile` writes the plan for the in-image `launcher.sh`; `baked` evaluates it
in Python for run images without a shell. Process fields follow launch.toml (BLD-10);
env operations follow the env-file rules (BLD-7).

It is the bottom layer: stdlib and `lifecycle.errors` only.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from lifecycle.errors import ExitCode, PybuildError

__all__ = [
    "DEFAULT_APP_DIR",
    "DEFAULT_EXEC_ENV",
    "LAUNCHER_PATH",
    "PLAN_PATH",
    "PROCESS_DIR",
    "STRIPPED_VARS",
    "EnvAction",
    "EnvOp",
    "LaunchLayer",
    "LaunchPlan",
    "LaunchPlanError",
    "LayerScript",
    "Process",
    "by_buildpack",
    "env_op_problem",
    "in_scope",
    "usable_env",
]

LAUNCHER_PATH = "/cnb/lifecycle/launcher"
PROCESS_DIR = "/cnb/process"
PLAN_PATH = "config/launch-plan.sh"
"""Where the plan lives, relative to the layers dir (`CNB_LAYERS_DIR`, default `/layers`)."""
DEFAULT_APP_DIR = "/workspace"
DEFAULT_EXEC_ENV = "production"
STRIPPED_VARS = (
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
)
"""LCH-4: launcher inputs that the process never sees."""

EnvAction = Literal["override", "default", "prepend", "append"]

_PROCESS_TYPE = re.compile(r"[A-Za-z0-9._-]+")
_EXEC_ENV = re.compile(r"[A-Za-z0-9._-]+|\*")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_API = re.compile(r"(\d+)\.(\d+)")
_REPLACE_ARGS_API = (0, 9)

log = logging.getLogger("lifecycle.launcher")


class LaunchPlanError(PybuildError):
    """A launch plan cannot be built, read or evaluated; raised at export time."""

    exit_code = ExitCode.EXPORT


@dataclass(frozen=True, kw_only=True)
class EnvOp:
    """One env file (BLD-7): `<name>[.<action>]` with its verbatim contents.

    `delim` comes from `<name>.delim` in the same dir; empty means no separator.
    `process_type` is set for files under `env.launch/<type>/`.
    """

    name: str
    action: EnvAction
    value: str
    delim: str = ""
    process_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class LayerScript:
    """An exec.d program or profile.d script, by its path in the image (LCH-6, LCH-7)."""

    path: str
    process_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class LaunchLayer:
    """A launch layer as the launcher needs it; `path` is where it sits in the image.

    `env` holds `env/`, then `env.launch/`, then `env.launch/<type>/` files, each dir in
    file-name order. `exec_d` and `profile_d` hold `<dir>/*` then `<dir>/<type>/*`.
    """

    buildpack_id: str
    name: str
    path: str
    has_bin: bool = False
    has_lib: bool = False
    env: tuple[EnvOp, ...] = ()
    exec_d: tuple[LayerScript, ...] = ()
    profile_d: tuple[LayerScript, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Process:
    """A process type from launch.toml (BLD-10), after BLD-11 picked the winner per type.

    For buildpack API below 0.9 `command` is the single command string and `direct=False`
    means it runs through the shell (LCH-7); `exec_env=None` means every exec env.
    """

    type: str
    command: tuple[str, ...]
    buildpack_id: str
    buildpack_api: str
    args: tuple[str, ...] = ()
    direct: bool = True
    default: bool = False
    working_dir: str | None = None
    exec_env: tuple[str, ...] | None = None

    @property
    def user_args_replace(self) -> bool:
        """LCH-3: user arguments replace `args` from buildpack API 0.9, before it they append."""
        return _api_version(self) >= _REPLACE_ARGS_API

    def eligible(self, exec_env: str) -> bool:
        """LCH-2: whether this process may run in `exec_env` (`CNB_EXEC_ENV`)."""
        return self.exec_env is None or "*" in self.exec_env or exec_env in self.exec_env


@dataclass(frozen=True, kw_only=True)
class LaunchPlan:
    """Processes plus launch layers in buildpack order, then layer name (LCH-5)."""

    processes: tuple[Process, ...] = ()
    layers: tuple[LaunchLayer, ...] = ()

    def __post_init__(self) -> None:
        for process in self.processes:
            _check_process(process)
        types = [p.type for p in self.processes]
        if len(set(types)) != len(types):
            raise LaunchPlanError("write launch plan", f"process types are not unique: {sorted(types)}")
        if sum(p.default for p in self.processes) > 1:
            raise LaunchPlanError("write launch plan", "more than one default process")

    @property
    def default_process(self) -> Process | None:
        return next((p for p in self.processes if p.default), None)

    def process(self, process_type: str) -> Process | None:
        return next((p for p in self.processes if p.type == process_type), None)


def by_buildpack(layers: Sequence[LaunchLayer]) -> Iterator[tuple[LaunchLayer, ...]]:
    """LCH-5 works per buildpack: consecutive layers of one buildpack form a group."""
    for _, group in itertools.groupby(layers, key=lambda layer: layer.buildpack_id):
        yield tuple(group)


def in_scope(process_type: str | None, selected: str | None) -> bool:
    """Whether an item scoped to `process_type` (None: every process) applies to `selected`."""
    return process_type is None or process_type == selected


def env_op_problem(op: EnvOp) -> str | None:
    """Why a POSIX shell cannot apply `op`, or None if it can.

    The launcher is sh, so names must be shell identifiers (and not its own `_cnb_`
    names) and values cannot hold NUL. Both consumers skip such files so that a run
    image with a shell and one without get the same env.
    """
    if not _SHELL_NAME.fullmatch(op.name) or op.name.startswith("_cnb_"):
        return f"env name {op.name!r} is not a shell variable name"
    if "\0" in op.value or "\0" in op.delim:
        return f"env value of {op.name!r} contains a NUL byte"
    return None


def usable_env(layer: LaunchLayer) -> Iterator[EnvOp]:
    """The layer's env ops that a shell can apply, logging a warning for each one skipped."""
    for op in layer.env:
        problem = env_op_problem(op)
        if problem is None:
            yield op
        else:
            log.warning("skipping an env file of layer %s/%s: %s", layer.buildpack_id, layer.name, problem)


def _check_process(process: Process) -> None:
    def fail(cause: str, exit_code: int | None = None) -> NoReturn:
        raise LaunchPlanError("write launch plan", f"process {process.type!r}: {cause}", exit_code=exit_code)

    api = _api_version(process)
    if not _PROCESS_TYPE.fullmatch(process.type):
        fail("a process type may only contain letters, digits, '.', '_' and '-' (BLD-10)")
    if not process.command or not process.command[0]:
        fail("command is empty")
    if any("\0" in word for word in (*process.command, *process.args, process.working_dir or "")):
        fail("command, args or working-dir contain a NUL byte")
    if not process.direct and api >= _REPLACE_ARGS_API:
        fail("direct=false needs buildpack API below 0.9", ExitCode.BUILDPACK_API)
    if process.exec_env is not None and not all(_EXEC_ENV.fullmatch(e) for e in process.exec_env):
        fail(f"exec-env names must match [A-Za-z0-9._-]+ or be '*': {list(process.exec_env)}")


def _api_version(process: Process) -> tuple[int, int]:
    match = _API.fullmatch(process.buildpack_api)
    if match is None:
        raise LaunchPlanError(
            "write launch plan",
            f"buildpack {process.buildpack_id!r} has api {process.buildpack_api!r}, not <major>.<minor>",
            exit_code=ExitCode.BUILDPACK_API,
        )
    return int(match[1]), int(match[2])
