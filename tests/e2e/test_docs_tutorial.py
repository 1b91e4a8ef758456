"""docs/tutorial.md, followed literally: its ```sh blocks, in order, in one shell, in an empty dir.

The convention the tutorial states: only ```sh blocks are commands; ```text blocks are output.
`pybuild` is the one installed beside this interpreter, the home has the tiny builder.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.cli import ROOT

TUTORIAL = ROOT / "docs" / "tutorial.md"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
TEN_MINUTES = 600


def sh_blocks(markdown: str) -> list[str]:
    """The bodies of the ```sh blocks, in order."""
    return [match[1] for match in _SH_BLOCK.finditer(markdown)]


def _path_with_pybuild(tmp_path: Path) -> str:
    """PATH with a `pybuild` that runs this checkout under this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "pybuild"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lifecycle "$@"\n')
    wrapper.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def _run_script(script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``script`` in its own process group, and end whatever it left running (a server)."""
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=TEN_MINUTES)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    return proc.returncode, output


def test_sh_blocks_are_found_in_order() -> None:
    blocks = sh_blocks("intro\n```sh\necho one\n```\n```text\nout\n```\n```sh\necho two\n```\n")

    assert blocks == ["echo one\n", "echo two\n"]


def test_tutorial_runs_as_written(home: Path, tmp_path: Path) -> None:
    blocks = sh_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 8, "the tutorial lost its commands"
    script = "set -euxo pipefail\n" + "\n".join(blocks)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**os.environ, "PATH": _path_with_pybuild(tmp_path), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    code, output = _run_script(script, workdir, env)
    took = time.monotonic() - started

    assert code == 0, output
    assert took < TEN_MINUTES
    for shown in (
        "Making layer hello",
        "Reusing layer hello (content hash",
        "Hello from acme/hello 0.0.1 on",
        "<h1>Hello from acme/hello 0.0.1</h1>",
        "stepped aside: bin/detect exited with 100",
        "exit code 20",
        "Howdy from acme/hello 0.0.1",
        "The app says: I was built by my own buildpack.",
        "VERSION=2",
    ):
        assert shown in output, f"{shown!r} not in the tutorial's output:\n{output}"
