"""Phase-command flags that steer where images are and what is said, driven as a platform drives
the lifecycle (no `pybuild build`): -log-level, -launch-cache with -daemon, -layout/-layout-dir
(GEN-5), -insecure-registry, CNB_REGISTRY_AUTH (GEN-4) and the analyzer's access check (ANA-5).
Tiny stack; real dockerd, registries and skopeo."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import ROOT, ok, phase
from support.dockerd import DockerDaemon
from support.registry import Registry, RegistryFactory
from support.tools import Tool, unavailable

from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore

RUN_IMAGE = "pybuild/run:tiny"


@dataclass(frozen=True)
class Workspace:
    env: dict[str, str]
    app: Path
    layers: Path


@pytest.fixture
def ws(home: Path, tmp_path: Path) -> Workspace:
    """The tiny builder's buildpacks, a procfile app, and CNB_* pointing at them."""
    bps = home / "builders" / "pybuild_builder_tiny" / "buildpacks"
    (tmp_path / "order.toml").write_text('[[order]]\n[[order.group]]\nid = "pybuild/procfile"\n')
    for toml in bps.rglob("buildpack.toml"):
        if "procfile" in str(toml):
            version = toml.parent.name
            (tmp_path / "order.toml").write_text(
                f'[[order]]\n[[order.group]]\nid = "pybuild/procfile"\nversion = "{version}"\n'
            )
    (tmp_path / "run.toml").write_text(f'[[images]]\nimage = "{RUN_IMAGE}"\n')
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    layers = tmp_path / "layers"
    layers.mkdir()
    env = {
        "CNB_LAYERS_DIR": str(layers),
        "CNB_APP_DIR": str(app),
        "CNB_BUILDPACKS_DIR": str(bps),
        "CNB_PLATFORM_DIR": str(tmp_path / "platform"),
        "CNB_RUN_PATH": str(tmp_path / "run.toml"),
        "CNB_ORDER_PATH": str(tmp_path / "order.toml"),
    }
    return Workspace(env, app, layers)


def build_up_to_export(ws: Workspace, image: str, *flags: str, env: dict[str, str] | None = None) -> None:
    environ = {**ws.env, **(env or {})}
    ok(phase("analyzer", *flags, image, env=environ))
    for name in ("detector", "restorer", "builder"):
        ok(phase(name, env=environ))


# -- -log-level -----------------------------------------------------------------------------------


def _layout_env(ws: Workspace, tmp_path: Path, mode: str | None = "warn") -> dict[str, str]:
    layout_dir = tmp_path / "layouts"
    run = Layout(layout_dir / "index.docker.io" / "pybuild" / "run" / "tiny", create=True)
    if not run.tags():
        run.write(LocalStore().image(RUN_IMAGE), ["latest"])
    mode_env = {"CNB_EXPERIMENTAL_MODE": mode} if mode else {}
    return {**ws.env, "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": str(layout_dir), **mode_env}


def test_log_level_filters_what_each_phase_says(ws: Workspace, tmp_path: Path) -> None:
    """§4 CNB_LOG_LEVEL: debug adds inputs and timings; warn drops info; error drops warnings too."""
    env = _layout_env(ws, tmp_path)
    build_up_to_export(ws, "app", env=env)
    said = {
        level: ok(phase("exporter", "-log-level", level, "app", env=env))
        for level in ("debug", "info", "warn", "error")
    }
    warning = "Warning: the OCI layout (-layout) is experimental"
    assert "Timer: exporter ran in" in said["debug"].stdout
    assert f"Input layers_dir: {ws.layers}" in said["debug"].stdout
    for level in ("debug", "info"):
        assert "Saved " in said[level].stdout and warning in said[level].stderr
    assert "Timer:" not in said["info"].stdout
    assert said["warn"].stdout == "" and warning in said["warn"].stderr
    assert said["error"].stdout == "" and said["error"].stderr == ""
    via_env = ok(phase("exporter", "app", env={**env, "CNB_LOG_LEVEL": "warn"}))
    assert via_env.stdout == ""
    bad = phase("exporter", "-log-level", "loud", "app", env=env)
    assert bad.returncode == 3 and "loud" in bad.stderr and len(bad.stderr.splitlines()) == 1


# -- -layout ---------------------------------------------------------------------------------------


def test_layout_reads_and_writes_images_at_the_spec_paths(
    ws: Workspace, tmp_path: Path, skopeo: Tool
) -> None:
    """Run and previous images come from, and the app goes to, <layout-dir>/<registry>/<repo>/<tag>."""
    env = _layout_env(ws, tmp_path, mode="silent")
    layout_dir = Path(env["CNB_LAYOUT_DIR"])
    build_up_to_export(ws, "registry.test/team/app:v1", env=env)
    analyzed = tomllib.loads((ws.layers / "analyzed.toml").read_text())
    assert "image" not in analyzed  # no previous image yet
    assert analyzed["run-image"]["reference"].startswith(f"{layout_dir}/index.docker.io/pybuild/run/tiny@")
    ok(phase("exporter", "registry.test/team/app:v1", "other", env=env))
    first = layout_dir / "registry.test" / "team" / "app" / "v1"
    inspected = json.loads(skopeo("inspect", f"oci:{first}").stdout)
    assert inspected["Labels"]["io.buildpacks.lifecycle.metadata"]
    assert (layout_dir / "index.docker.io" / "library" / "other" / "latest" / "index.json").is_file()
    assert not (ws.layers.parent / "layout-repo").exists()
    report = tomllib.loads((ws.layers / "report.toml").read_text())["image"]
    assert report["digest"] == inspected["Digest"]

    ok(phase("analyzer", "registry.test/team/app:v1", env=env))  # now the previous image is there
    analyzed = tomllib.loads((ws.layers / "analyzed.toml").read_text())
    assert analyzed["image"]["reference"] == f"{first}@{report['digest']}"


def test_layout_is_experimental_and_needs_a_dir(ws: Workspace, tmp_path: Path) -> None:
    """GEN-5: without CNB_EXPERIMENTAL_MODE=warn|silent -layout fails; it needs -layout-dir (exit 3)."""
    refused = phase("analyzer", "app", env=_layout_env(ws, tmp_path, mode=None))
    assert refused.returncode != 0 and "experimental" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    no_dir = phase("analyzer", "-layout", "app", env={**ws.env, "CNB_EXPERIMENTAL_MODE": "warn"})
    assert no_dir.returncode == 3 and "-layout-dir" in no_dir.stderr


# -- -launch-cache with -daemon --------------------------------------------------------------------


def _saved_bytes(proc: subprocess.CompletedProcess[str]) -> int:
    """Bytes `docker save` streamed out of the daemon during an export (its debug stats line)."""
    found = re.search(r"^Stats daemon: .*\bsaved_bytes=(\d+)", proc.stdout, re.MULTILINE)
    assert found, proc.stdout
    return int(found[1])


def test_launch_cache_spares_reading_reused_layers_from_the_daemon(
    ws: Workspace, tmp_path: Path, dockerd: DockerDaemon
) -> None:
    """§4 CNB_LAUNCH_CACHE_DIR: layers the export wrote are kept by diffID; the next daemon export
    reuses them from disk instead of saving the previous image out of the daemon."""
    cache = tmp_path / "launch-cache"
    build_up_to_export(ws, "cached", "-daemon")
    ok(phase("exporter", "-daemon", "-launch-cache", str(cache), "cached", env=ws.env))
    kept = sorted(p.name for p in (cache / "committed").glob("*.tar"))
    assert kept and all(re.fullmatch(r"sha256:[0-9a-f]{64}\.tar", name) for name in kept)

    def export_changed(version: str, *flags: str) -> subprocess.CompletedProcess[str]:
        (ws.app / "version.txt").write_text(version)  # the app layer changes; layers above it do not
        ok(phase("analyzer", "-daemon", "cached", env=ws.env))
        return ok(phase("exporter", "-daemon", "-log-level", "debug", *flags, "cached", env=ws.env))

    without_cache = export_changed("2")
    with_cache = export_changed("3", "-launch-cache", str(cache))
    assert _saved_bytes(without_cache) > 0
    assert _saved_bytes(with_cache) < _saved_bytes(without_cache)
    assert _saved_bytes(with_cache) == 0
    assert re.search(r"Launch cache: [1-9]\d* layers of the previous image read", with_cache.stdout)
    run = dockerd.cli("run", "--rm", "--entrypoint", "/bin/cat", "cached", "/workspace/version.txt")
    assert run.stdout.strip() == "3"


# -- registries: -insecure-registry, CNB_REGISTRY_AUTH, ANA-5 ---------------------------------------


@pytest.fixture
def non_loopback(registry: Registry) -> Iterator[str]:
    """The session registry under a host that is not loopback (so not plain HTTP by default)."""
    address = next(
        (
            a
            for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
            if "." in a and not a.startswith("127.")
        ),
        None,
    )
    if address is None:
        unavailable("this machine has no non-loopback IPv4 address")
    upstream_host, upstream_port = registry.host.rsplit(":", 1)
    listener = socket.create_server((address, 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    opened: list[socket.socket] = []

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection((upstream_host, int(upstream_port)))
            opened.extend((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(src, dst), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"{address}:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()
    for sock in opened:
        sock.close()


def test_insecure_registry_flag_and_env_allow_plain_http(ws: Workspace, non_loopback: str) -> None:
    """-insecure-registry (repeatable) and CNB_INSECURE_REGISTRIES: plain HTTP to that host only."""
    image = f"{non_loopback}/insecure/app:1"
    refused = phase("analyzer", image, env=ws.env)  # HTTPS to a plain-HTTP registry: no access
    assert refused.returncode == 32, refused.stderr
    assert "ERROR: failed to analyze: no registry read/write access" in refused.stderr
    flags = ("-insecure-registry", "other.test:5000", "-insecure-registry", non_loopback)
    ok(phase("analyzer", *flags, image, env=ws.env))
    ok(phase("analyzer", image, env={**ws.env, "CNB_INSECURE_REGISTRIES": f"x.test,{non_loopback}"}))
    for name in ("detector", "restorer", "builder"):
        ok(phase(name, env=ws.env))
    ok(phase("exporter", "-insecure-registry", non_loopback, image, env=ws.env))


def _auth_env(registry: Registry) -> dict[str, str]:
    assert registry.credentials is not None
    pair = registry.credentials.colon_pair.encode()
    return {"CNB_REGISTRY_AUTH": json.dumps({registry.host: "Basic " + base64.b64encode(pair).decode()})}


def test_registry_auth_env_reaches_an_htpasswd_registry(
    ws: Workspace, registry_factory: RegistryFactory, skopeo: Tool
) -> None:
    """GEN-4: CNB_REGISTRY_AUTH is used by analyze (ANA-5 checks it first) and export."""
    secured = registry_factory(auth=True)
    image = f"{secured.host}/authed/app:1"
    anonymous = phase("analyzer", image, env=ws.env)
    assert anonymous.returncode == 32 and "401" in anonymous.stderr, anonymous.stderr
    assert len(anonymous.stderr.strip().splitlines()) == 1
    mark = secured.log_mark()
    build_up_to_export(ws, image, env=_auth_env(secured))
    checked = [e for e in secured.access_log(since=mark) if "/blobs/uploads/" in e.path]
    assert [e.method for e in checked if e.status < 300] == ["POST", "DELETE"]  # ANA-5: opened, cancelled
    ok(phase("exporter", image, env={**ws.env, **_auth_env(secured)}))
    assert secured.credentials is not None
    report = tomllib.loads((ws.layers / "report.toml").read_text())["image"]
    pushed = skopeo(
        "inspect", "--tls-verify=false", "--creds", secured.credentials.colon_pair, f"docker://{image}"
    )
    assert json.loads(pushed.stdout)["Digest"] == report["digest"]
    wrong = json.dumps({secured.host: "Basic " + "bm9ib2R5Om5vcGU="})  # nobody:nope
    refused = phase("analyzer", image, env={**ws.env, "CNB_REGISTRY_AUTH": wrong})
    assert refused.returncode == 32 and "refused the credentials" in refused.stderr


def test_analyzer_checks_read_access_to_the_run_image(
    ws: Workspace, registry_factory: RegistryFactory, registry: Registry
) -> None:
    """ANA-5: an unreadable -run-image fails the analyzer before anything is built (exit 32)."""
    secured = registry_factory(auth=True)
    proc = phase(
        "analyzer", "-run-image", f"{secured.host}/base/run:tiny", f"{registry.host}/ana5/app", env=ws.env
    )
    assert proc.returncode == 32, proc.stderr
    assert f"no registry read access to {secured.host}/base/run:tiny" in proc.stderr
    assert not (ws.layers / "analyzed.toml").exists()
