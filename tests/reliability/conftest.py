"""Reliability and security tests: hostile input, fuzzing, sandbox, secrets, faults, concurrency, load.

Loops are sized for CI; ``make soak`` (``PYBUILD_TEST_SOAK=1``) runs the full counts. Figures go to
``bench/results/reliability.json`` when the session ends (see ``figures``).
"""

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

from . import figures


@pytest.fixture(scope="session", autouse=True)
def _write_figures() -> Iterator[None]:
    yield
    figures.write()


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory, bwrap: Tool) -> Path:
    """The tiny stack and builder in a home, made once per session (as tests/e2e does)."""
    home = tmp_path_factory.mktemp("reliability-home")
    env = {**os.environ, "PYBUILD_HOME": str(home)}
    for args in (
        ["stack", "build", "stacks/tiny"],
        ["builder", "create", TINY_BUILDER, "--config", "builders/tiny.toml"],
    ):
        subprocess.run(
            [sys.executable, "-m", "lifecycle", *args], env=env, cwd=ROOT, check=True, capture_output=True
        )
    shutil.rmtree(home / "cache" / "debs", ignore_errors=True)
    return home


@pytest.fixture
def home(tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the tiny home for one test."""
    copy = tmp_path / "home"
    shutil.copytree(tiny_home, copy, symlinks=True, ignore=shutil.ignore_patterns("rootfs"))
    monkeypatch.setenv("PYBUILD_HOME", str(copy))
    return copy
