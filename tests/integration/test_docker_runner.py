"""The docker runner runs buildpack processes in containers of the tiny build image, as bwrap does."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dockerd import DockerDaemon
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

from lifecycle.backends.daemon import DaemonStore
from lifecycle.backends.store import LocalStore
from lifecycle.errors import PybuildError
from lifecycle.execution.bwrap import BwrapRunner
from lifecycle.execution.docker import DockerRunner, hand_over
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import ProcessRequest, Runner, Workspace
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.mutate import append_layers
from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.stacks import Role, build_stack

STACKS = Path(__file__).parents[2] / "stacks"


@pytest.fixture(scope="module")
def build_image(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path) -> Image:
    require_tool("apt-get", "apt")
    home = tmp_path_factory.mktemp("docker-runner-home")
    use_stack_cache(home, stack_cache)
    store = LocalStore(home)
    result = build_stack(STACKS / "tiny", store)
    return store.image(result.image(Role.BUILD).tags[0])


@pytest.fixture
def store(dockerd: DockerDaemon) -> Iterator[DaemonStore]:
    daemon_store = DaemonStore()
    yield daemon_store
    daemon_store.close()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    dirs = {name: tmp_path / name for name in ("app", "layers", "platform", "bp")}
    for path in dirs.values():
        path.mkdir()
    (dirs["bp"] / "marker").write_text("buildpack files\n")
    (dirs["platform"] / "env").mkdir()
    return Workspace(dirs["app"], dirs["layers"], dirs["platform"], {"acme/hello@1.0": dirs["bp"]})


def run(runner: Runner, ws: Workspace, script: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    lines: list[str] = []
    request = ProcessRequest(["/bin/sh", "-c", script], {"PATH": "/bin", **(env or {})}, "/workspace")
    code = runner.run(request, ws, lines.append)
    return code, "\n".join(lines)


def test_runs_as_build_user_with_binds_env_and_exit_code(
    store: DaemonStore, build_image: Image, ws: Workspace, dockerd: DockerDaemon
) -> None:
    runner = DockerRunner(store, build_image, 1000, 1000, ca_bundle=None)
    script = (
        "id -u; id -g; pwd; echo $GREETING; cat /cnb/buildpacks/acme_hello/1.0/marker; "
        "touch /workspace/made /layers/made; touch /platform/x 2>/dev/null || echo readonly-platform; "
        "touch /etc/x 2>/dev/null || echo readonly-root; touch /tmp/x && echo tmp-writable; "
        "printf no-newline; exit 7"
    )

    code, out = run(runner, ws, script, {"GREETING": "hi"})

    assert code == 7
    assert out.splitlines() == [
        "1000",
        "1000",
        "/workspace",
        "hi",
        "buildpack files",
        "readonly-platform",
        "readonly-root",
        "tmp-writable",
        "no-newline",
    ]
    assert (ws.layers / "made").stat().st_uid == (ws.app / "made").stat().st_uid == 1000
    assert dockerd.client.containers.list(all=True, filters={"label": "io.pybuild.runner"}) == []


def test_network_none_leaves_only_loopback(store: DaemonStore, build_image: Image, ws: Workspace) -> None:
    count = "cat /proc/net/dev | wc -l"

    _, shared = run(DockerRunner(store, build_image, 1000, 1000, ca_bundle=None), ws, count)
    _, isolated = run(DockerRunner(store, build_image, 1000, 1000, network="none", ca_bundle=None), ws, count)

    assert int(isolated) == 3  # two header lines and lo
    assert int(shared) > int(isolated)


def test_the_build_image_is_loaded_when_the_daemon_lacks_it(
    store: DaemonStore, build_image: Image, ws: Workspace, dockerd: DockerDaemon
) -> None:
    image_id = build_image.config_descriptor.digest
    if store.resolve(image_id):
        dockerd.cli("rmi", "--force", image_id)
    tag = f"docker-runner-test/build:{secrets.token_hex(4)}"

    code, _ = run(DockerRunner(store, build_image, 1000, 1000, image_tags=(tag,), ca_bundle=None), ws, "true")

    assert code == 0
    assert store.resolve(tag) == image_id


def test_host_ca_bundle_is_bound_only_where_the_image_has_certs(
    store: DaemonStore, build_image: Image, ws: Workspace, tmp_path: Path
) -> None:
    bundle = tmp_path / "host-ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE----- test\n")

    def certs_dir(tar: LayerTar) -> None:
        tar.add_dir("/etc/ssl/certs")

    with_certs = append_layers(build_image, [write_layer(tmp_path / "layers", certs_dir)])
    read = "cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || echo no-bundle"

    _, plain = run(DockerRunner(store, build_image, 1000, 1000, ca_bundle=bundle), ws, read)
    _, bound = run(DockerRunner(store, with_certs, 1000, 1000, ca_bundle=bundle), ws, read)

    assert plain == "no-bundle"
    assert bound == "-----BEGIN CERTIFICATE----- test"


def test_buildpacks_see_the_same_sandbox_as_under_bwrap(
    store: DaemonStore, build_image: Image, ws: Workspace, tmp_path: Path, bwrap: Tool
) -> None:
    script = (
        "id -u; id -g; stat -c '%u %g %a' /workspace /layers; ls /cnb/buildpacks/acme_hello/1.0; "
        "echo $CNB_USER_ID; mkdir -p /layers/acme/venv && echo ok > /layers/acme/venv/f; ls -R /layers"
    )
    env = {"CNB_USER_ID": "1000"}
    bwrap_runner = BwrapRunner(rootfs_cache(build_image, tmp_path / "rootfs"), 1000, 1000, ca_bundle=None)

    _, in_bwrap = run(bwrap_runner, ws, script, env)
    for made in ws.layers.iterdir():
        shutil.rmtree(made)
    _, in_docker = run(DockerRunner(store, build_image, 1000, 1000, ca_bundle=None), ws, script, env)

    assert in_docker == in_bwrap


def test_a_user_other_than_root_or_the_build_user_is_refused(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1234)

    with pytest.raises(PybuildError, match="runs as uid 1234 but the build image's user is 1000"):
        hand_over(ws, 1000, 1000)
