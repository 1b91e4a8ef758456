"""Our images in a real Docker daemon: `pybuild save` then `docker load` and `docker run`."""

from __future__ import annotations

from pathlib import Path

from support.cli import TINY_BUILDER, pybuild
from support.dockerd import DockerDaemon


def test_tiny_run_image_loads_and_runs_in_docker(home: Path, tmp_path: Path, dockerd: DockerDaemon) -> None:
    archive = tmp_path / "run.tar"
    pybuild("save", "pybuild/run:tiny", "-o", str(archive))
    dockerd.cli("load", "-i", str(archive))
    out = dockerd.cli(
        "run", "--rm", "--pull", "never", "pybuild/run:tiny", "cat", "/etc/pybuild-release"
    ).stdout
    assert "VERSION=1" in out


def test_built_app_runs_its_processes_in_docker(home: Path, tmp_path: Path, dockerd: DockerDaemon) -> None:
    """The launcher works under docker too: default entrypoint and /cnb/process/<type>."""
    pybuild("build", "shellapp", "--path", "samples/procfile-shell", "--builder", TINY_BUILDER)
    archive = tmp_path / "app.tar"
    pybuild("save", "shellapp", "-o", str(archive))
    dockerd.cli("load", "-i", str(archive))
    run = ["run", "--rm", "--pull", "never", "--entrypoint", "/cnb/process/hello", "shellapp"]
    assert "hello from procfile-shell" in dockerd.cli(*run).stdout
