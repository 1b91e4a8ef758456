"""Finding and running real command-line clients, and what to do when one is missing.

Integration tests must never skip silently in CI: `unavailable` fails there and skips elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

StrPath = str | os.PathLike[str]

_FALSE_VALUES = frozenset({"", "0", "false", "no"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _FALSE_VALUES


def unavailable(reason: str) -> NoReturn:
    """The one place that decides skip versus fail when a test prerequisite is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: integration tests must not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_root(why: str) -> None:
    """`unavailable` unless this process is root (CI runs as root)."""
    if os.geteuid() != 0:
        unavailable(f"{why}: run the tests as root")


def require_tool(name: str, package: str) -> str:
    """The absolute path of executable `name`, or `unavailable` naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"`{name}` not found in PATH: apt-get install {package}")
    return path


class ToolError(AssertionError):
    """A client exited non-zero; the message carries its command line and output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        command = " ".join(str(arg) for arg in result.args)
        output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        super().__init__(f"`{command}` exited {result.returncode}\n{output}")
        self.result = result


@dataclass(frozen=True)
class Tool:
    """A command-line client: ``tool("copy", src, dest)`` runs it with the current env plus `env`."""

    path: str
    env: Mapping[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: StrPath, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.path, *(os.fspath(arg) for arg in args)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
            check=False,
        )
        if check and result.returncode != 0:
            raise ToolError(result)
        return result
