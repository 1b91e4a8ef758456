"""The registry's ``HoldsBlobs`` capability and the blob index over it, on the real registry (EXP-7).

A layer whose blob the index knows, and which the target repository already holds, is found with
one HEAD: nothing is read, compressed or uploaded for it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.images import random_image
from support.registry import Registry

from lifecycle.backends.base import HoldsBlobs
from lifecycle.backends.registry import RegistryStore, RetryPolicy
from lifecycle.oci.digest import check_digest
from lifecycle.phases.export_layers import TarredLayer
from lifecycle.platform.cache_blobs import BlobIndex


@pytest.fixture
def repo() -> str:
    return f"it/known-{secrets.token_hex(4)}"


@pytest.fixture
def store(registry: Registry) -> Iterator[RegistryStore]:
    with RegistryStore(registry.host) as opened:
        yield opened


def test_known_blob_is_one_head_and_reads_nothing(
    store: RegistryStore, registry: Registry, repo: str
) -> None:
    assert isinstance(store, HoldsBlobs)
    image = random_image(layers=2, size=30_000, seed=11)
    store.write(image, [f"{repo}:1"])
    layer = image.layers[0]
    mark = registry.log_mark()

    source = store.known_blob(f"{repo}:new-tag", layer.digest, layer.size)
    assert source is not None
    assert store.known_blob(f"{repo}:1", layer.digest, layer.size + 1) is None  # a wrong size is no match
    assert store.known_blob(f"{repo}-other:1", layer.digest, layer.size) is None  # another repository
    missing = "sha256:" + "0" * 64
    assert store.known_blob(f"{repo}:1", missing, 10) is None

    log = registry.access_log(since=mark)
    assert [(e.method, e.path.rsplit("/", 1)[-1]) for e in log] == [
        ("HEAD", layer.digest),
        ("HEAD", layer.digest),
        ("HEAD", layer.digest),
        ("HEAD", missing),
    ]
    assert store.stats.layer_bytes_read == 0 and store.stats.layer_opens == 0
    with source.open_blob(layer.digest) as blob:  # the handle is lazy, and reads the right bytes
        check_digest(blob.read(), layer.digest, "the known blob")


def test_the_index_finds_a_blob_only_the_registry_has(
    store: RegistryStore, registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = random_image(layers=1, size=20_000, seed=12)
    store.write(image, [f"{repo}:1"])
    (layer,) = image.layers
    index = BlobIndex(tmp_path / "blobs")
    index.record([layer])
    tarred = TarredLayer("app", layer.diff_id, tmp_path / "unused.tar", 20_000)

    found = index.finder([], [(store, f"{repo}:2")])(tarred)
    assert found is not None and (found.digest, found.diff_id) == (layer.digest, layer.diff_id)
    assert index.finder([], [(store, f"{repo}-empty:1")])(tarred) is None
    unknown = TarredLayer("app", "sha256:" + "1" * 64, tmp_path / "unused.tar", 20_000)
    mark = registry.log_mark()
    assert index.finder([], [(store, f"{repo}:2")])(unknown) is None
    assert registry.access_log(since=mark) == []  # a diffID the index does not know costs no request
    assert store.stats.layer_bytes_read == 0


def test_a_registry_that_refuses_the_head_means_not_known(tmp_path: Path) -> None:
    """The index only saves work: a look-up that fails costs a compression, not the build."""
    image = random_image(layers=1, size=1_000, seed=13)
    (layer,) = image.layers
    index = BlobIndex(tmp_path / "blobs")
    index.record([layer])
    tarred = TarredLayer("app", layer.diff_id, tmp_path / "unused.tar", 1_000)
    with RegistryStore("127.0.0.1:9", insecure=True, retry=RetryPolicy(attempts=1)) as nowhere:
        assert index.finder([], [(nowhere, "app:1")])(tarred) is None
