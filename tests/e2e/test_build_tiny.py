"""`pybuild build` and `pybuild run` through the CLI on the tiny stack, with buildpacks
written as pack users write them (DET-*, BLD-*, EXP-*, LCH-*)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, pybuild

FIXTURES = ROOT / "tests" / "fixtures"
BUILDER = TINY_BUILDER


def test_procfile_app_builds_and_runs_each_process(home: Path) -> None:
    digest = pybuild("build", "shellapp", "--path", "samples/procfile-shell", "--builder", BUILDER).stdout
    assert "===> DETECTING" in digest and "===> EXPORTING" in digest
    out = pybuild("run", "shellapp", "--process", "hello").stdout
    assert "hello from procfile-shell" in out
    assert "running as uid 1000" in out


def test_same_inputs_give_the_same_image_digest(home: Path) -> None:
    """EXP-6: reproducible images."""
    first = pybuild("-q", "build", "a", "--path", "samples/procfile-shell", "--builder", BUILDER).stdout
    second = pybuild("-q", "build", "b", "--path", "samples/procfile-shell", "--builder", BUILDER).stdout
    assert first.strip().splitlines()[-1] == second.strip().splitlines()[-1]
    assert first.strip().startswith("sha256:")


def test_buildpack_with_launch_layer_and_process_runs_unchanged(home: Path) -> None:
    """BLD-3, BLD-10, LCH-5: a launch layer's bin is on PATH and its env.launch default applies."""
    bp = str(FIXTURES / "buildpacks" / "sys-info")
    pybuild("build", "info", "--path", "samples/procfile-shell", "--builder", BUILDER, "--buildpack", bp)
    out = pybuild("run", "info", "--process", "sys-info").stdout
    assert out.strip(), "sys-info printed nothing"
    info = pybuild("inspect", "info", "--output", "json").stdout
    assert "io.buildpacks.lifecycle.metadata" in info
    assert "org.opencontainers.image.base.digest" in info


def test_app_carrying_its_own_buildpack_in_project_toml(home: Path) -> None:
    app = FIXTURES / "apps" / "own-buildpack"
    pybuild("build", "own", "--path", str(app), "--builder", BUILDER)
    inspect = pybuild("inspect", "own", "--output", "json").stdout
    assert "io.buildpacks.build.metadata" in inspect


@pytest.mark.parametrize(
    ("fixture", "code", "needle"),
    [
        ("no-detect", 21, "bin/detect"),
        ("bad-api", 12, "buildpack.toml"),
        ("bad-toml", 3, "buildpack.toml"),
        ("reserved-layer", 52, "reserved"),
        ("bad-launch", 52, "launch.toml"),
    ],
)
def test_bad_buildpack_gives_one_line_error_and_writes_nothing(
    home: Path, fixture: str, code: int, needle: str
) -> None:
    bp = str(FIXTURES / "buildpacks" / fixture)
    proc = pybuild(
        "build",
        "broken",
        "--path",
        "samples/procfile-shell",
        "--builder",
        BUILDER,
        "--buildpack",
        bp,
        check=False,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    images = pybuild("images", "--output", "json").stdout
    assert "broken" not in images
