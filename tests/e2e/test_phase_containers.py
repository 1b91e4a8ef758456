"""pybuild inside the bookworm builder image: the five phases, one ``docker run`` each (GEN-1, GEN-2,
EXP-13), on the test dockerd, with /layers, /workspace and /platform shared through volumes.

The builder image carries pybuild and its runtime dependencies under /cnb/lifecycle
(``lifecycle.platform.lifecycle_layer``) in one reproducible layer. The bookworm bootstrap is
shared with the other bookworm tests through ``stack_cache``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest
from support.cli import ROOT, last_line, pybuild
from support.dockerd import DockerDaemon
from support.homes import use_stack_cache
from support.registry import Registry
from support.tools import require_tool

from lifecycle.backends.layout import Layout

BUILDER_TOML = ROOT / "builders" / "bookworm.toml"
PHASES = ("analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser", "launcher")
CNB_USER = "1000:1000"


@pytest.fixture(scope="module")
def bookworm_env(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path) -> dict[str, str]:
    """A PYBUILD_HOME holding the bookworm stack images (the session's bootstrap cache)."""
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path_factory.mktemp("phase-containers") / "home"
    use_stack_cache(home, stack_cache)
    env = {"PYBUILD_HOME": str(home)}
    pybuild("stack", "build", "stacks/bookworm", env=env, timeout=1800)
    return env


def _lifecycle_members(layout: Path, tag: str) -> dict[str, tarfile.TarInfo]:
    """The entries of the builder layer that holds /cnb/lifecycle."""
    image = Layout(layout).image(tag)
    for layer in image.layers:
        with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            members = {m.name.lstrip("/"): m for m in tar}
        if "cnb/lifecycle/lifecycle" in members:
            return members
    raise AssertionError("no layer holds /cnb/lifecycle/lifecycle")


def test_bookworm_builder_carries_pybuild_in_one_reproducible_layer(
    bookworm_env: dict[str, str], tmp_path: Path
) -> None:
    digests = []
    for name in ("first", "second"):
        out = pybuild(
            "-q",
            "builder",
            "create",
            f"oci:{tmp_path / name}:b",
            "--config",
            str(BUILDER_TOML),
            env=bookworm_env,
        )
        digests.append(last_line(out))
    assert digests[0].startswith("sha256:")
    layers = [Layout(tmp_path / name).image("b").diff_ids for name in ("first", "second")]
    changed = [i for i, (a, b) in enumerate(zip(*layers, strict=True)) if a != b]
    assert digests[0] == digests[1], f"layers {changed} of {len(layers[0])} differ"
    members = _lifecycle_members(tmp_path / "first", "b")
    for phase in PHASES:
        assert members[f"cnb/lifecycle/{phase}"].issym(), phase
        assert members[f"cnb/lifecycle/{phase}"].linkname == "lifecycle"
    script = members["cnb/lifecycle/lifecycle"]
    assert script.mode & 0o111 and (script.uid, script.gid) == (0, 0)
    for module in (
        "lifecycle/cli/dispatch.py",
        "click/__init__.py",
        "pydantic/__init__.py",
        "httpx/__init__.py",
    ):
        assert f"cnb/lifecycle/lib/{module}" in members, module
    assert not [name for name in members if "__pycache__" in name or name.endswith(".pyc")]
    tools = ("pytest", "_pytest", "hypothesis", "mypy", "ruff")
    top = {n.split("/")[3].split("-")[0] for n in members if n.startswith("cnb/lifecycle/lib/")}
    assert not top & set(tools)  # runtime requirements only, no test deps


def _volumes(root: Path) -> list[str]:
    """Shared volumes owned by the CNB user, the sample app in /workspace."""
    args = []
    for name in ("layers", "platform", "workspace"):
        (root / name).mkdir(parents=True)
        args += ["-v", f"{root / name}:/{name}"]
    shutil.copytree(ROOT / "samples" / "procfile-shell", root / "workspace", dirs_exist_ok=True)
    for path in [root, *root.rglob("*")]:
        os.chown(path, 1000, 1000, follow_symlinks=False)
    return args


def test_five_phases_run_one_container_each_and_make_a_runnable_image(
    bookworm_env: dict[str, str], tmp_path: Path, dockerd: DockerDaemon, registry: Registry
) -> None:
    builder = f"{registry.host}/e2e-phases/builder:bookworm"
    run_image = f"{registry.host}/e2e-phases/run:bookworm"
    app = f"{registry.host}/e2e-phases/app:latest"
    created = pybuild(
        "builder", "create", builder, "--config", str(BUILDER_TOML), "--publish", env=bookworm_env
    )
    assert "Not installing" not in created.stdout
    pybuild("push", "pybuild/run:bookworm", run_image, env=bookworm_env)
    dockerd.cli("pull", "-q", builder, timeout=600)
    volumes = _volumes(tmp_path / "build")

    def phase(name: str, *args: str) -> str:
        argv = ["run", "--rm", "--network", "host", "--user", CNB_USER, *volumes]
        argv += ["-e", "CNB_PLATFORM_API=0.15", builder, f"/cnb/lifecycle/{name}", *args]
        proc = dockerd.cli(*argv, check=False, timeout=600)
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return str(proc.stdout)

    phase("analyzer", "-run-image", run_image, app)
    assert "pybuild/procfile 0.1.0" in phase("detector")
    phase("restorer")
    assert "hello:" in phase("builder")
    phase("exporter", "-process-type", "hello", app)
    report = tomllib.loads((tmp_path / "build" / "layers" / "report.toml").read_text())
    dockerd.cli("pull", "-q", app, timeout=300)
    pulled = dockerd.cli("image", "inspect", "--format", "{{index .RepoDigests 0}}", app).stdout.strip()
    assert pulled.endswith("@" + report["image"]["digest"])  # EXP-13: the digest the registry holds
    out = dockerd.cli("run", "--rm", app, timeout=120).stdout
    assert "hello from procfile-shell on" in out and "running as uid 1000" in out
