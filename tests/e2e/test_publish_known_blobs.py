"""``build --publish`` with no previous image, of layers published before (EXP-7, DESIGN.md "fast layers").

The blob index knows each layer's compressed blob, but after a publish the blobs live only in
the registry. The exporter asks the target repository (one HEAD per layer) instead of
compressing the layer again, and the push then finds every blob there: no layer bytes move.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from support.cli import TINY_BUILDER, last_line, pybuild
from support.registry import Registry

from lifecycle.backends.store import LocalStore

APP = "samples/procfile-shell"
UPLOADS = "/blobs/uploads/"


def _publish(ref: str) -> tuple[str, int]:
    """The digest and how many layers the exporter compressed."""
    out = pybuild("build", ref, "--path", APP, "--builder", TINY_BUILDER, "--publish", "--clear-cache")
    found = re.search(r"compressed (\d+)", out.stdout)
    assert found is not None, out.stdout
    return last_line(out), int(found.group(1))


def _layers(ref: str) -> list[str]:
    info = json.loads(pybuild("inspect", f"docker://{ref}", "-o", "json").stdout)
    return [layer["digest"] for layer in info["layers"]]


def test_a_new_tag_reuses_blobs_only_the_registry_has(home: Path, registry: Registry) -> None:
    repo = f"{registry.host}/e2e-known-blobs/app"
    first, compressed = _publish(f"{repo}:v1")
    assert compressed > 0
    local = LocalStore(home).layout
    remote_only = [d for d in _layers(f"{repo}:v1") if not local.has_blob(d)]
    assert remote_only  # blobs no store on this machine can serve

    mark = registry.log_mark()
    second, compressed = _publish(f"{repo}:v2")  # a new tag: no previous image, the cache cleared
    assert compressed == 0
    assert second == first
    log = registry.access_log(since=mark)
    assert [e for e in log if UPLOADS in e.path or e.method == "PATCH"] == []  # no upload, not even a mount
    heads = {e.path.rsplit("/", 1)[-1] for e in log if e.method == "HEAD" and "/blobs/" in e.path}
    assert set(remote_only) <= heads
    assert [e for e in log if e.method == "GET" and e.path.rsplit("/", 1)[-1] in remote_only] == []


def test_another_repository_without_the_blobs_gets_them_compressed_and_uploaded(
    home: Path, registry: Registry
) -> None:
    _, first = _publish(f"{registry.host}/e2e-known-blobs/one:v1")
    mark = registry.log_mark()
    _, again = _publish(f"{registry.host}/e2e-known-blobs/two:v1")
    assert again == first > 0  # the index knows the blobs, but this repository does not hold them
    assert [e for e in registry.access_log(since=mark) if e.method == "PUT" and UPLOADS in e.path]
