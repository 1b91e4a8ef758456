"""`pybuild build` and `pybuild run` through the CLI on the tiny stack, with buildpacks
written as pack users write them (DET-*, BLD-*, EXP-*, LCH-*)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, pybuild

FIXTURES = ROOT / "tests" / "fixtures"
BUILDER = TINY_BUILDER
APP = "samples/procfile-shell"


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


def test_flags_reach_buildpacks_and_the_image(home: Path, tmp_path: Path) -> None:
    """--env/--env-file become /platform/env (BLD-8); --creation-time sets created (EXP-6)."""
    env_file = tmp_path / "build.env"
    env_file.write_text("# comment\nFROM_FILE=file value\nBOTH=file\n")
    bp = str(FIXTURES / "buildpacks" / "env-printer")
    out = pybuild(
        "build", "envs", "--path", APP, "--builder", BUILDER, "--buildpack", bp, "--env-file", str(env_file),
        "--env", "FROM_FLAG=flag", "--env", "BOTH=flag", "--creation-time", "1700000000",
    ).stdout  # fmt: skip
    assert "FROM_FILE=file value" in out and "FROM_FLAG=flag" in out and "BOTH=flag" in out
    info = json.loads(pybuild("inspect", "envs", "-o", "json").stdout)
    assert info["created"] == "2023-11-14T22:13:20Z"


def test_buildpack_archive_and_oci_layout_target(home: Path, tmp_path: Path) -> None:
    """A .tgz buildpack (pack's uri forms) and an oci:DIR:tag target read by skopeo's syntax."""
    archive = tmp_path / "sys-info.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(FIXTURES / "buildpacks" / "sys-info", arcname=".")
    layout = tmp_path / "layout"
    pybuild("build", f"oci:{layout}:v1", "--path", APP, "--builder", BUILDER, "--buildpack", str(archive))
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    info = json.loads(pybuild("inspect", f"oci:{layout}:v1", "-o", "json").stdout)
    assert [p["type"] for p in info["processes"]] == ["sys-info"]


def test_host_executor_runs_buildpacks_on_this_machine(home: Path) -> None:
    bp = str(FIXTURES / "buildpacks" / "env-printer")
    out = pybuild(
        "build", "hosted", "--path", APP, "--builder", BUILDER, "--buildpack", bp, "--executor", "host"
    )
    assert "env-printer build: end" in out.stdout
    assert "CNB_PLATFORM_DIR=" in out.stdout
