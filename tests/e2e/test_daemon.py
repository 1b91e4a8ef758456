"""The Docker daemon as a target: build into it, run there, rebase there, and the docker executor."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from support.cli import TINY_BUILDER, last_line, pybuild
from support.dockerd import DockerDaemon
from support.homes import use_stack_cache
from support.tools import require_tool

APP = "samples/procfile-shell"
COMPOSE = Path(__file__).parent / "compose" / "python-app.yml"


def _root_fs(dockerd: DockerDaemon, image: str) -> list[str]:
    return list(json.loads(dockerd.cli("image", "inspect", image).stdout)[0]["RootFS"]["Layers"])


def test_build_into_daemon_runs_and_rebases_there(home: Path, dockerd: DockerDaemon) -> None:
    pybuild("build", "daemon-app", "--path", APP, "--builder", TINY_BUILDER, "--daemon")
    run = ["run", "--rm", "--pull", "never", "--entrypoint", "/cnb/process/hello", "daemon-app"]
    assert "hello from procfile-shell" in dockerd.cli(*run).stdout
    before = _root_fs(dockerd, "daemon-app")
    out = pybuild("rebase", "daemon-app", "--daemon", "--run-image", "pybuild/run:tiny-2")
    assert "base layers replaced" in out.stdout
    after = _root_fs(dockerd, "daemon-app")
    assert after[1:] == before[1:] and after[0] != before[0]  # tiny's run image is one layer
    release = dockerd.cli(
        "run", "--rm", "--pull", "never", "--entrypoint", "cat", "daemon-app", "/etc/pybuild-release"
    )
    assert "VERSION=2" in release.stdout


def test_docker_and_bwrap_executors_give_the_same_image(home: Path, dockerd: DockerDaemon) -> None:
    args = ["--path", APP, "--builder", TINY_BUILDER]
    bwrap = last_line(pybuild("-q", "build", "via-bwrap", *args, "--executor", "bwrap"))
    docker = last_line(pybuild("-q", "build", "via-docker", *args, "--executor", "docker"))
    assert docker == bwrap


def test_daemon_errors_are_one_line_and_change_nothing(home: Path, dockerd: DockerDaemon) -> None:
    down = pybuild(
        "build",
        "x",
        "--path",
        APP,
        "--builder",
        TINY_BUILDER,
        "--daemon",
        check=False,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert down.returncode != 0 and "docker daemon" in down.stderr and "Traceback" not in down.stderr
    missing = pybuild("rebase", "no-such-image", "--daemon", check=False)
    assert missing.returncode == 72 and "Traceback" not in missing.stderr
    images = dockerd.cli("images", "--format", "{{.Repository}}").stdout.split()
    assert "x" not in images and "no-such-image" not in images


def test_run_image_of_another_architecture_is_refused(home: Path, dockerd: DockerDaemon) -> None:
    from lifecycle.backends.store import LocalStore
    from lifecycle.oci import mutate

    store = LocalStore()
    store.write(mutate.edit_image_config(store.image("pybuild/run:tiny"), architecture="arm64"), ["run-arm"])
    proc = pybuild(
        "build",
        "arm-app",
        "--path",
        APP,
        "--builder",
        TINY_BUILDER,
        "--daemon",
        "--run-image",
        "run-arm",
        check=False,
    )
    assert proc.returncode != 0 and "arm64" in proc.stderr
    assert "arm-app" not in dockerd.cli("images", "--format", "{{.Repository}}").stdout.split()


# -- the Python sample in the daemon, served through docker-compose (pytest-docker) --------------


@pytest.fixture(scope="session")
def python_app_in_daemon(
    tmp_path_factory: pytest.TempPathFactory, stack_cache: Path, dockerd: DockerDaemon
) -> str:
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path_factory.mktemp("daemon-bookworm")
    use_stack_cache(home, stack_cache)
    env = {"PYBUILD_HOME": str(home), "DOCKER_HOST": dockerd.host}
    image = "pybuild-e2e/python-app:latest"
    pybuild("build", image, "--path", "samples/python-http", "--daemon", env=env, timeout=1500)
    return image


@pytest.fixture(scope="session")
def docker_compose_command(dockerd: DockerDaemon) -> str:
    # Debian ships compose v1; point it at the test daemon.
    return f"docker-compose -H {dockerd.host}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["down -v", "up -d"]  # compose v1 has no --wait


@pytest.fixture(scope="session")
def docker_compose_file(python_app_in_daemon: str) -> str:
    return str(COMPOSE)


def test_python_app_built_into_daemon_serves_through_compose(docker_ip: str, docker_services) -> None:  # type: ignore[no-untyped-def]
    port = docker_services.port_for("web", 8080)
    url = f"http://{docker_ip}:{port}/"

    def responsive() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    docker_services.wait_until_responsive(check=responsive, timeout=60.0, pause=0.5)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert "bottle" in response.read().decode()
