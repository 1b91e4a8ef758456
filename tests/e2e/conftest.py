"""A PYBUILD_HOME with the tiny stack and builder, made once per session and copied per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER
from support.tools import Tool


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory, bwrap: Tool) -> Path:
    home = tmp_path_factory.mktemp("tiny-home")
    env = {**os.environ, "PYBUILD_HOME": str(home)}
    for args in (
        ["stack", "build", "stacks/tiny"],
        ["builder", "create", TINY_BUILDER, "--config", "builders/tiny.toml"],
    ):
        subprocess.run(
            [sys.executable, "-m", "lifecycle", *args], env=env, cwd=ROOT, check=True, capture_output=True
        )
    return home


@pytest.fixture
def home(tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home per test with the session's stack and builder (copied: tests stay independent)."""
    copy = tmp_path / "home"
    shutil.copytree(tiny_home, copy, symlinks=True, ignore=shutil.ignore_patterns("rootfs"))
    monkeypatch.setenv("PYBUILD_HOME", str(copy))
    yield copy
