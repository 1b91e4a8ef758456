"""OCI layout specifics: files on disk, gc, corrupt or missing files, hard-linked layers."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.images import random_image, random_layer

from lifecycle.backends.base import REF_NAME
from lifecycle.backends.layout import Layout
from lifecycle.errors import BlobNotFound, DigestMismatch, ImageError, ImageNotFound, StoreCorrupt
from lifecycle.oci.digest import hex_part, sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.media import OCI_INDEX, OCI_MANIFEST
from lifecycle.oci.models import Descriptor, Index, Platform
from lifecycle.oci.mutate import append_layers
from lifecycle.oci.validate import validate


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "oci", create=True)


def blob(layout: Layout, digest: str) -> Path:
    return layout.root / "blobs" / "sha256" / hex_part(digest)


def blobs_of(image: Image) -> set[str]:
    return {image.digest, image.config_descriptor.digest, *(layer.digest for layer in image.layers)}


def stored_blobs(layout: Layout) -> set[str]:
    return {"sha256:" + path.name for path in (layout.root / "blobs" / "sha256").iterdir()}


# -- files on disk -------------------------------------------------------------------------------


def test_create_makes_an_empty_oci_layout(layout: Layout) -> None:
    assert json.loads((layout.root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout.root / "index.json").read_bytes())
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert (layout.root / "blobs" / "sha256").is_dir()


def test_create_on_an_existing_layout_keeps_its_images(layout: Layout) -> None:
    layout.write(random_image(), ["app:1"])
    assert Layout(layout.root, create=True).tags() == ["app:1"]


def test_opening_a_directory_that_is_no_layout_is_image_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match=re.escape(f"{tmp_path} is not an OCI layout")):
        Layout(tmp_path)


def test_a_tag_is_a_ref_name_annotation_in_index_json(layout: Layout) -> None:
    image = random_image()
    layout.write(image, ["v1"])
    (entry,) = json.loads((layout.root / "index.json").read_bytes())["manifests"]
    assert entry == {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": len(image.raw_manifest),
        "annotations": {REF_NAME: "v1"},
    }


def test_every_blob_is_stored_under_its_digest(layout: Layout) -> None:
    image = random_image(layers=2)
    layout.write(image, ["v1"])
    for digest in blobs_of(image):
        assert sha256_digest(blob(layout, digest).read_bytes()) == digest


def test_blobs_and_index_are_readable_by_other_users(layout: Layout, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        image = random_image(layers=1, directory=tmp_path / "fresh")
        layout.write(append_layers(image, [random_layer(seed=9)]), ["v1"])
    finally:
        os.umask(old)
    for path in [layout.root / "index.json", *(layout.root / "blobs" / "sha256").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_no_temporary_file_is_left_after_a_write(layout: Layout) -> None:
    layout.write(random_image(layers=2), ["v1"])
    assert list(layout.scratch.iterdir()) == []
    assert not [path for path in layout.root.iterdir() if path.name.startswith(".write-")]


# -- put_layer -----------------------------------------------------------------------------------


def test_put_layer_hard_links_a_local_blob(layout: Layout, tmp_path: Path) -> None:
    layer = random_layer(size=10_000, directory=tmp_path / "fresh")
    source = layer.local_path()
    assert source is not None
    layout.put_layer(layer)
    assert blob(layout, layer.digest).stat().st_ino == source.stat().st_ino


def test_put_layer_copies_a_blob_from_memory(layout: Layout) -> None:
    layer = random_layer(size=10_000)
    layout.put_layer(layer)
    with layer.compressed() as stream:
        assert blob(layout, layer.digest).read_bytes() == stream.read()


def test_put_layer_copies_a_blob_on_another_filesystem(layout: Layout) -> None:
    shm = Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(layout.root).st_dev:
        pytest.fail("this test needs /dev/shm on another filesystem than the test's tmp dir")
    scratch = shm / f"pybuild-test-{os.getpid()}"
    try:
        layer = random_layer(size=10_000, directory=scratch)
        layout.put_layer(layer)
        source = layer.local_path()
        assert source is not None
        assert blob(layout, layer.digest).read_bytes() == source.read_bytes()
        assert blob(layout, layer.digest).stat().st_ino != source.stat().st_ino
    finally:
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()


def test_put_layer_refuses_a_copied_blob_that_does_not_match_its_digest(layout: Layout) -> None:
    honest = random_layer(size=10_000)
    blobs = MemoryBlobs()
    blobs.blobs[honest.digest] = b"tampered"
    with pytest.raises(DigestMismatch, match="copy blob"):
        layout.put_layer(Layer(honest.descriptor, honest.diff_id, blobs))
    assert not blob(layout, honest.digest).exists()
    assert list(layout.scratch.iterdir()) == []


def test_put_layer_of_a_blob_already_there_reads_nothing(layout: Layout) -> None:
    layer = random_layer()
    layout.put_layer(layer)
    layout.put_layer(Layer(layer.descriptor, layer.diff_id, MemoryBlobs()))  # would raise if read


def test_threads_putting_the_same_local_layer_at_once_all_succeed(layout: Layout, tmp_path: Path) -> None:
    shared = random_layer(size=50_000, directory=tmp_path / "fresh")
    start = threading.Barrier(8)  # reusable: releases all eight threads together each round

    def put(_: int) -> None:
        start.wait()
        layout.put_layer(shared)

    for attempt in range(20):
        blob(layout, shared.digest).unlink(missing_ok=True)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(8)))
        assert sha256_digest(blob(layout, shared.digest).read_bytes()) == shared.digest, attempt
    assert list(layout.scratch.iterdir()) == []


def test_threads_writing_images_that_share_a_layer_all_succeed(layout: Layout, tmp_path: Path) -> None:
    shared = random_layer(size=50_000, directory=tmp_path / "fresh")
    images = [append_layers(random_image(layers=0), [shared, random_layer(seed=n)]) for n in range(16)]

    def write(number: int) -> str:
        return layout.write(images[number], [f"app:{number}"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(16))) == [image.digest for image in images]
    assert layout.tags() == sorted(f"app:{number}" for number in range(16))
    for number in range(16):
        validate(layout.image(f"app:{number}"))


# -- corrupt and missing files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe garbage", b"[]", b'{"manifests": 5}', b'{"manifests": [{"digest": "x"}]}'],
    ids=["empty", "truncated", "binary", "list", "wrong-type", "bad-descriptor"],
)
def test_a_corrupt_index_json_is_store_corrupt_in_one_line_naming_the_file(
    layout: Layout, content: bytes
) -> None:
    (layout.root / "index.json").write_bytes(content)
    with pytest.raises(StoreCorrupt) as caught:
        layout.tags()
    message = str(caught.value)
    assert str(layout.root / "index.json") in message
    assert "\n" not in message


def test_a_missing_index_json_is_store_corrupt(layout: Layout) -> None:
    (layout.root / "index.json").unlink()
    with pytest.raises(StoreCorrupt, match=r"index\.json is missing"):
        layout.image("v1")


def test_a_missing_layer_blob_is_blob_not_found_naming_its_path(layout: Layout) -> None:
    image = random_image(layers=2)
    layout.write(image, ["v1"])
    missing = blob(layout, image.layers[1].digest)
    missing.unlink()
    stored = layout.image("v1")  # lazy: the layer is not touched yet
    with pytest.raises(BlobNotFound, match=re.escape(str(missing))):
        validate(stored)


def test_a_missing_config_blob_is_blob_not_found_naming_its_path(layout: Layout) -> None:
    image = random_image()
    layout.write(image, ["v1"])
    missing = blob(layout, image.config_descriptor.digest)
    missing.unlink()
    with pytest.raises(BlobNotFound, match=re.escape(f"failed to read config of v1: {missing} is missing")):
        layout.image("v1")


def test_a_corrupted_manifest_blob_is_digest_mismatch_naming_its_path(layout: Layout) -> None:
    image = random_image()
    layout.write(image, ["v1"])
    path = blob(layout, image.digest)
    path.write_bytes(path.read_bytes().replace(b"schemaVersion", b"schemaVersiom"))
    with pytest.raises(DigestMismatch, match=re.escape(str(path))):
        layout.image("v1")


def test_a_layer_digest_given_as_an_image_reference_is_an_image_error(layout: Layout) -> None:
    image = random_image()
    layout.write(image, ["v1"])
    with pytest.raises(ImageError, match=r"manifest or an index.*not a JSON object"):
        layout.image(image.layers[0].digest)


# -- images, indexes, tags -----------------------------------------------------------------------


def tag_index(layout: Layout, tag: str, manifests: list[Descriptor]) -> str:
    raw = Index(media_type=OCI_INDEX, manifests=manifests).to_bytes()
    digest = layout.write_blob(raw)
    index = layout.read_index()
    entry = Descriptor(media_type=OCI_INDEX, digest=digest, size=len(raw), annotations={REF_NAME: tag})
    (layout.root / "index.json").write_bytes(index.model_copy(update={"manifests": [entry]}).to_bytes())
    return digest


def platform_entry(image: Image, architecture: str) -> Descriptor:
    return image.descriptor().model_copy(update={"platform": Platform(architecture=architecture, os="linux")})


def test_a_tag_naming_an_image_index_reads_the_linux_amd64_image(layout: Layout) -> None:
    arm, amd = random_image(seed=1), random_image(seed=2)
    layout.write(arm, [])
    layout.write(amd, [])
    tag_index(layout, "multi", [platform_entry(arm, "arm64"), platform_entry(amd, "amd64")])
    assert layout.image("multi").digest == amd.digest


def test_an_empty_image_index_is_image_not_found(layout: Layout) -> None:
    tag_index(layout, "empty", [])
    with pytest.raises(ImageNotFound, match="lists no manifests"):
        layout.image("empty")


def test_a_write_without_tags_is_readable_by_digest_only(layout: Layout) -> None:
    image = random_image()
    layout.write(image, [])
    assert layout.tags() == []
    assert layout.image(image.digest).digest == image.digest


def test_delete_keeps_blobs_until_gc(layout: Layout) -> None:
    image = random_image()
    layout.write(image, ["v1"])
    layout.delete("v1")
    assert blobs_of(image) <= stored_blobs(layout)


# -- gc ------------------------------------------------------------------------------------------


def test_gc_deletes_only_blobs_no_tag_reaches(layout: Layout) -> None:
    base = random_image(layers=2, seed=1)
    kept = append_layers(base, [random_layer(seed=10)])
    dropped = append_layers(base, [random_layer(seed=20)])
    layout.write(kept, ["kept"])
    layout.write(dropped, ["dropped"])
    layout.delete("dropped")
    garbage = blobs_of(dropped) - blobs_of(kept)
    sizes = sum(blob(layout, digest).stat().st_size for digest in garbage)
    assert len(garbage) == 3  # manifest, config, top layer

    assert layout.gc() == sizes
    assert stored_blobs(layout) == blobs_of(kept)
    validate(layout.image("kept"))


def test_gc_keeps_images_reached_through_a_tagged_index(layout: Layout) -> None:
    image = random_image(seed=1)
    layout.write(image, [])
    index_digest = tag_index(layout, "multi", [platform_entry(image, "amd64")])
    assert layout.gc() == 0
    assert stored_blobs(layout) == blobs_of(image) | {index_digest}


def test_gc_of_a_clean_layout_frees_nothing(layout: Layout) -> None:
    layout.write(random_image(), ["v1"])
    assert layout.gc() == 0


def test_gc_removes_stale_temp_files_but_not_fresh_ones(layout: Layout) -> None:
    stale, fresh = layout.scratch / ".layer-stale.tmp", layout.scratch / ".layer-fresh.tmp"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 10)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    assert layout.gc() == 100
    assert list(layout.scratch.iterdir()) == [fresh]


def test_gc_frees_a_killed_write_s_blobs(layout: Layout) -> None:
    layout.write(random_image(seed=1), ["v1"])
    orphan = random_image(seed=2)
    layout.write(orphan, [])  # blobs written, tag never moved: what a killed write leaves
    layout.gc()
    assert not (blobs_of(orphan) & stored_blobs(layout))
