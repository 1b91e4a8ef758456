"""Publishing to and rebasing in a real registry (Debian's docker-registry), read back by real clients."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import TINY_BUILDER, last_line, pybuild
from support.dockerd import DockerDaemon
from support.registry import AccessLogEntry, Registry
from support.tools import Tool

APP = "samples/procfile-shell"


def _layer_digests(*refs: str) -> set[str]:
    digests: set[str] = set()
    for ref in refs:
        info = json.loads(pybuild("inspect", f"docker://{ref}", "-o", "json").stdout)
        digests |= {layer["digest"] for layer in info["layers"]}
    return digests


def _layer_traffic(entries: list[AccessLogEntry], *refs: str) -> list[AccessLogEntry]:
    """Layer bytes moved: GETs of layer blobs, chunk PATCHes, and upload PUTs of layer digests.

    Config blobs and manifests are small and change in a rebase; they are not counted.
    """
    layers = _layer_digests(*refs)
    return [
        e
        for e in entries
        if (e.method == "GET" and e.path.rsplit("/", 1)[-1] in layers)
        or (e.method == "PATCH" and "/blobs/uploads/" in e.path)
        or (e.method == "PUT" and "/blobs/uploads/" in e.path and e.query.get("digest") in layers)
    ]


def _push_bases(registry: Registry) -> tuple[str, str]:
    v1, v2 = f"{registry.host}/pybuild/run:tiny", f"{registry.host}/pybuild/run:tiny-2"
    pybuild("push", "pybuild/run:tiny", v1)
    pybuild("push", "pybuild/run:tiny-2", v2)
    return v1, v2


def test_publish_is_read_by_skopeo_and_docker_and_runs(
    home: Path, registry: Registry, skopeo: Tool, dockerd: DockerDaemon
) -> None:
    ref = f"{registry.host}/e2e-publish/app:v1"
    digest = last_line(pybuild("build", ref, "--path", APP, "--builder", TINY_BUILDER, "--publish"))
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    assert info["Digest"] == digest
    assert "io.buildpacks.lifecycle.metadata" in info["Labels"]
    dockerd.cli("pull", ref)
    out = dockerd.cli("run", "--rm", "--pull", "never", "--entrypoint", "/cnb/process/hello", ref).stdout
    assert "hello from procfile-shell" in out


def test_second_publish_of_unchanged_app_uploads_nothing(home: Path, registry: Registry) -> None:
    ref = f"{registry.host}/e2e-republish/app:v1"
    args = ["build", ref, "--path", APP, "--builder", TINY_BUILDER, "--publish"]
    first = last_line(pybuild(*args))
    mark = registry.log_mark()
    second = last_line(pybuild(*args))
    assert second == first
    assert _layer_traffic(registry.access_log(since=mark), ref) == []


def test_base_layers_are_mounted_from_the_run_image_repository(home: Path, registry: Registry) -> None:
    v1, _ = _push_bases(registry)
    mark = registry.log_mark()
    ref = f"{registry.host}/e2e-mount/app:v1"
    pybuild("build", ref, "--path", APP, "--builder", TINY_BUILDER, "--run-image", v1, "--publish")
    log = registry.access_log(since=mark)
    assert any(e.method == "POST" and "mount" in e.query for e in log)
    assert [e for e in _layer_traffic(log, v1) if e.method == "GET"] == []  # the base is never downloaded


def test_remote_rebase_moves_no_layer_bytes(home: Path, registry: Registry) -> None:
    v1, v2 = _push_bases(registry)
    ref = f"{registry.host}/e2e-rebase/app:v1"
    built = last_line(
        pybuild("build", ref, "--path", APP, "--builder", TINY_BUILDER, "--run-image", v1, "--publish")
    )
    mark = registry.log_mark()
    out = pybuild("rebase", ref, "--run-image", v2, "--publish")
    log = registry.access_log(since=mark)
    assert "base layers replaced" in out.stdout
    assert _layer_traffic(log, ref, v1, v2) == []
    assert last_line(pybuild("rebase", ref, "--publish")).startswith("sha256:")  # already up to date
    back = last_line(pybuild("-q", "rebase", ref, "--run-image", v1, "--publish"))
    assert back == built


def test_pull_and_push_round_trip_keeps_the_digest(home: Path, registry: Registry) -> None:
    digest = last_line(pybuild("-q", "build", "local-app", "--path", APP, "--builder", TINY_BUILDER))
    ref = f"{registry.host}/e2e-roundtrip/app:v1"
    assert last_line(pybuild("push", "local-app", ref)) == digest
    assert last_line(pybuild("pull", ref, "pulled")) == digest
    assert "hello from procfile-shell" in pybuild("run", "pulled", "--process", "hello").stdout


def test_autoupdate_over_a_registry_prefix(home: Path, registry: Registry) -> None:
    v1, v2 = _push_bases(registry)
    refs = [f"{registry.host}/e2e-fleet/app-{n}:v1" for n in range(3)]
    for ref in refs:
        pybuild("build", ref, "--path", APP, "--builder", TINY_BUILDER, "--run-image", v1, "--publish")
    pybuild("tag", f"docker://{v2}", f"docker://{v1}")  # the patched base is published under the same tag
    mark = registry.log_mark()
    rows = json.loads(pybuild("autoupdate", "--registry", f"{registry.host}/e2e-fleet", "-o", "json").stdout)
    assert sorted(r["action"] for r in rows) == ["rebased"] * 3
    log = registry.access_log(since=mark)
    assert _layer_traffic(log, *refs, v2) == []
    again = json.loads(pybuild("autoupdate", "--registry", f"{registry.host}/e2e-fleet", "-o", "json").stdout)
    assert sorted(r["action"] for r in again) == ["up-to-date"] * 3
