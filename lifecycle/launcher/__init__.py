"""The in-image launcher and its process/env rules (cnb-spec.md LCH-1..LCH-8, BLD-7).

At export time the exporter scans the launch layers (`scan_layers`), builds a
`LaunchPlan` with the processes, writes it with `render_plan` to `PLAN_PATH` under the
layers dir, and installs `launcher_script()` at `LAUNCHER_PATH` with `/cnb/process/<type>`
symlinks to it. At start the POSIX sh launcher applies the plan to the container env.
Run images without a shell get a baked config from `bake` instead.

This package is the bottom layer: it imports only the stdlib and `lifecycle.errors`.
"""

from __future__ import annotations

from importlib import resources

from lifecycle.launcher.baked import BakedLaunch, apply_env_op, bake, launch_env
from lifecycle.launcher.plan import (
    DEFAULT_APP_DIR,
    DEFAULT_EXEC_ENV,
    LAUNCHER_PATH,
    PLAN_PATH,
    PROCESS_DIR,
    STRIPPED_VARS,
    EnvAction,
    EnvOp,
    LaunchLayer,
    LaunchPlan,
    LaunchPlanError,
    LayerScript,
    Process,
    env_op_problem,
)
from lifecycle.launcher.planfile import PLAN_FORMAT, parse_plan, render_plan
from lifecycle.launcher.scan import scan_layers

__all__ = [
    "DEFAULT_APP_DIR",
    "DEFAULT_EXEC_ENV",
    "LAUNCHER_MODE",
    "LAUNCHER_PATH",
    "PLAN_FORMAT",
    "PLAN_PATH",
    "PROCESS_DIR",
    "STRIPPED_VARS",
    "BakedLaunch",
    "EnvAction",
    "EnvOp",
    "LaunchLayer",
    "LaunchPlan",
    "LaunchPlanError",
    "LayerScript",
    "Process",
    "apply_env_op",
    "bake",
    "env_op_problem",
    "launch_env",
    "launcher_script",
    "parse_plan",
    "render_plan",
    "scan_layers",
]

LAUNCHER_MODE = 0o755
"""EXP-5: the launcher and the process symlinks are root-owned, mode 0755."""


def launcher_script() -> bytes:
    """The bytes of `/cnb/lifecycle/launcher` (package data `launcher.sh`)."""
    return resources.files(__name__).joinpath("launcher.sh").read_bytes()
