"""Fixtures for every test: a clean environment, and real services for integration tests.

Session services start on first use and stop when the run ends (see tests/support):
  dockerd           our own Docker daemon (or $PYBUILD_TEST_DOCKER_HOST); .host .env .client .cli
  registry          a plain-HTTP registry shared by the session; use a repository name per test
  registry_factory  registry_factory(auth=True, tls=True) starts a new variant
  skopeo, umoci     Tool: call with the client's arguments; bwrap is a Tool too, checked to work
  busybox_rootfs, busybox_image  a tiny rootfs tar and an OCI layout of it (treat as read-only)
A missing tool skips the test, or fails it when CI is set (support.tools.unavailable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER
from support.dockerd import DockerDaemon, docker_daemon
from support.images import OciImage, busybox_rootfs_tar, write_oci_layout
from support.registry import Registry, RegistryFactory, running_registry
from support.tools import Tool, require_root, require_tool, unavailable

from lifecycle.backends.layout import Layout
from lifecycle.oci.validate import validate

TESTS_DIR = Path(__file__).parent
INTEGRATION_DIRS = (TESTS_DIR / "integration", TESTS_DIR / "e2e")
# Settings that would point a test at the developer's daemon, store or credentials.
_LEAKY_PREFIXES = ("DOCKER_", "PYBUILD_", "CNB_", "REGISTRY_AUTH_FILE", "SOURCE_DATE_EPOCH")
_KEPT_PREFIX = "PYBUILD_TEST_"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(directory) for directory in INTEGRATION_DIRS):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the user's store, docker daemon, logins or CNB settings.

    PYBUILD_HOME does not exist yet, as for a new user. DOCKER_HOST is set only for tests that use
    the `dockerd` fixture, and then points at that daemon.
    """
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) and not name.startswith(_KEPT_PREFIX):
            monkeypatch.delenv(name)
    env_dir = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("PYBUILD_HOME", os.fspath(env_dir / "pybuild-home"))
    monkeypatch.setenv("DOCKER_CONFIG", os.fspath(env_dir / "docker-config"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", os.fspath(env_dir / "containers-auth.json"))
    if "dockerd" in request.fixturenames:
        daemon: DockerDaemon = request.getfixturevalue("dockerd")
        monkeypatch.setenv("DOCKER_HOST", daemon.host)


@pytest.fixture(autouse=True)
def _written_images_validate(_isolated_env: None) -> Iterator[None]:
    """After each test, every image tagged in the store it used must validate byte for byte."""
    yield
    # Fixtures may point PYBUILD_HOME elsewhere; monkeypatch undoes that only after this runs.
    home = os.environ.get("PYBUILD_HOME")
    store = Path(home or "/nonexistent") / "store"
    if home and (store / "index.json").is_file():
        layout = Layout(store)
        for tag in layout.tags():
            validate(layout.image(tag))


@pytest.fixture(scope="session")
def stack_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mmdebstrap/.deb cache for the session: link it into a home with support.homes.use_stack_cache."""
    return tmp_path_factory.mktemp("stack-cache")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[DockerDaemon]:
    with docker_daemon() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def registry_factory() -> Iterator[RegistryFactory]:
    with ExitStack() as running:

        def start(*, auth: bool = False, tls: bool = False) -> Registry:
            return running.enter_context(running_registry(auth=auth, tls=tls))

        yield start


@pytest.fixture(scope="session")
def registry(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


@pytest.fixture(scope="session")
def skopeo() -> Tool:
    return Tool(require_tool("skopeo", "skopeo"))


@pytest.fixture(scope="session")
def umoci() -> Tool:
    return Tool(require_tool("umoci", "umoci"))


@pytest.fixture(scope="session")
def bwrap() -> Tool:
    tool = Tool(require_tool("bwrap", "bubblewrap"))
    probe = tool("--ro-bind", "/", "/", "--unshare-all", "true", check=False)
    if probe.returncode != 0:
        unavailable(f"bwrap cannot make a sandbox on this machine: {probe.stderr.strip()}")
    return tool


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "rootfs.tar")


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> OciImage:
    return write_oci_layout(tmp_path_factory.mktemp("busybox-oci"), busybox_rootfs, "latest")


@pytest.fixture
def as_root() -> None:
    """Root only: staging mounts and handing files to another uid (CI runs as root)."""
    require_root("this test mounts or gives files to another uid")


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory, bwrap: Tool) -> Path:
    """A PYBUILD_HOME with the tiny stack and builder, made once per session."""
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
def home(tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the tiny home per test (tests stay independent), without the deb cache."""
    copy = tmp_path / "home"
    shutil.copytree(tiny_home, copy, symlinks=True, ignore=shutil.ignore_patterns("rootfs", "debs"))
    monkeypatch.setenv("PYBUILD_HOME", str(copy))
    return copy
