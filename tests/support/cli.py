"""Run the real `pybuild` CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY_BUILDER = "pybuild/builder:tiny"


def pybuild(
    *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``env`` adds to this process's environment."""
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pybuild {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


def phase(
    name: str, *args: str, env: dict[str, str] | None = None, api: str | None = "0.15"
) -> subprocess.CompletedProcess[str]:
    """Run ``pybuild lifecycle NAME``: no ``CNB_*`` from this process, ``CNB_PLATFORM_API`` = ``api``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CNB_")}
    environ.update({"CNB_PLATFORM_API": api} if api else {})
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", "lifecycle", name, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=environ,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``proc``, once it is known to have exited 0 (else its output in the failure)."""
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc
