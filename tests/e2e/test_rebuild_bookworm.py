"""The Python sample rebuilt on the bookworm stack: pip is skipped and every layer reused.

One cold build (pip runs), one unchanged rebuild and one after a source edit; the stack comes
from the session's shared `stack_cache`, as in test_python_bookworm.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.cli import ROOT, last_line, pybuild
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

from lifecycle.backends.store import LocalStore


@pytest.fixture
def bookworm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_cache: Path, bwrap: Tool) -> Path:
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path / "home"
    use_stack_cache(home, stack_cache)
    monkeypatch.setenv("PYBUILD_HOME", str(home))
    return home


def test_python_sample_rebuild_skips_pip_and_reuses_every_layer(bookworm_home: Path, tmp_path: Path) -> None:
    app = tmp_path / "python-http"
    shutil.copytree(ROOT / "samples" / "python-http", app)
    cold = pybuild("build", "pyapp", "--path", str(app), timeout=1500)
    assert "Installing requirements with pip" in cold.stdout

    again = pybuild("build", "pyapp", "--path", str(app), "--rerun")  # unchanged: run the buildpacks anyway
    assert "Reusing cached dependencies" in again.stdout and "pip" not in again.stdout
    assert "Reusing layer 'pybuild/python:venv'" in again.stdout
    assert "Reused 5 of 5 layers, compressed 0" in again.stdout
    assert last_line(again) == last_line(cold)

    before = [layer.digest for layer in LocalStore(bookworm_home).image("pyapp").layers]
    with (app / "app.py").open("a") as source:
        source.write("# edited\n")
    edited = pybuild("build", "pyapp", "--path", str(app))
    assert "Reusing cached dependencies" in edited.stdout and "Adding 1/1 app layer(s)" in edited.stdout
    after = [layer.digest for layer in LocalStore(bookworm_home).image("pyapp").layers]
    assert [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [len(before) - 4]
