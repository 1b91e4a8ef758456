"""The default builder on the bookworm stack: the Python sample is built, served, and rebased.

This is `make demo` as a test, plus the host CA bundle given to buildpacks (and withheld with
--no-host-ca). The bookworm bootstrap is shared with the stack tests through `stack_cache`.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import ROOT, last_line, pybuild
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

from lifecycle.execution.bwrap import HOST_CA_BUNDLE


@pytest.fixture
def bookworm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_cache: Path, bwrap: Tool) -> Path:
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path / "home"
    use_stack_cache(home, stack_cache)
    monkeypatch.setenv("PYBUILD_HOME", str(home))
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(image: str) -> Iterator[str]:
    """Run the image's default process and yield its first page."""
    port = _free_port()
    argv = [sys.executable, "-m", "lifecycle", "run", image, "-e", f"PORT={port}"]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                        yield response.read().decode()
                        return
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise AssertionError(f"the app did not answer on port {port}") from None
                    time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_python_sample_builds_serves_and_rebases(bookworm_home: Path) -> None:
    build = pybuild("build", "pyapp", "--path", "samples/python-http", timeout=1200)
    assert "Installing requirements with pip" in build.stdout
    page = next(_serve("pyapp"))
    assert "bottle" in page and "VERSION=1" in page
    pybuild("rebase", "pyapp", "--run-image", "pybuild/run:bookworm-2")
    assert "VERSION=2" in next(_serve("pyapp"))
    again = pybuild("-q", "build", "pyapp2", "--path", "samples/python-http")
    assert last_line(again).startswith("sha256:")


def test_buildpacks_see_the_host_ca_bundle_unless_told_not_to(bookworm_home: Path) -> None:
    bp = str(ROOT / "tests" / "fixtures" / "buildpacks" / "ca-check")
    host = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()
    shared = pybuild("build", "ca", "--path", "samples/static-site", "--buildpack", bp, timeout=1200).stdout
    withheld = pybuild(
        "build", "ca", "--path", "samples/static-site", "--buildpack", bp, "--no-host-ca"
    ).stdout
    assert f"ca-bundle: {host}" in shared
    assert "ca-bundle: " in withheld and f"ca-bundle: {host}" not in withheld


def test_this_repository_builds_into_the_autoupdate_image(bookworm_home: Path) -> None:
    """deploy/: pybuild builds itself with its default builder; the image runs pybuild."""
    pybuild("build", "pybuild-self", "--path", ".", timeout=1500)
    info = pybuild("inspect", "pybuild-self", "-o", "json").stdout
    assert '"autoupdate"' in info
    out = pybuild("run", "pybuild-self", "--process", "pybuild").stdout
    assert "autoupdate" in out and "rebase" in out
