"""The ImageStore contract: every backend reads, writes, tags, resolves and deletes alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.images import random_image, random_layer

from lifecycle.backends.memory import MemoryStore
from lifecycle.errors import DigestMismatch, ImageNotFound
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.mutate import append_layers, set_labels
from lifecycle.oci.validate import validate

from .conftest import Backend


def reset(backend: Backend) -> None:
    backend.stats.layer_bytes_read = backend.stats.layer_opens = 0
    backend.stats.opened.clear()


def test_written_image_reads_back_with_the_same_bytes_and_validates(backend: Backend) -> None:
    image = random_image(layers=3, size=50_000)
    digest = backend.store.write(image, ["app:1"])
    again = backend.reopen().image("app:1")
    assert digest == image.digest == again.digest
    assert (again.raw_manifest, again.raw_config) == (image.raw_manifest, image.raw_config)
    assert again.layers == image.layers
    validate(again)


def test_written_image_is_served_by_the_store_not_the_original_files(
    backend: Backend, tmp_path: Path
) -> None:
    image = random_image(layers=2, size=20_000, directory=tmp_path / "fresh")
    backend.store.write(image, ["app:1"])
    for layer in image.layers:
        path = layer.local_path()
        assert path is not None
        path.unlink()
    validate(backend.reopen().image("app:1"))


def test_image_by_digest_is_the_tagged_image(backend: Backend) -> None:
    image = random_image()
    backend.store.write(image, ["app:1"])
    assert backend.store.image(image.digest).raw_manifest == image.raw_manifest


def test_one_write_can_point_several_tags(backend: Backend) -> None:
    image = random_image()
    backend.store.write(image, ["app:1", "app:latest", "other:x"])
    assert backend.store.tags() == ["app:1", "app:latest", "other:x"]
    assert {backend.store.resolve(tag) for tag in backend.store.tags()} == {image.digest}


def test_resolve_gives_the_digest_a_tag_points_to_or_none(backend: Backend) -> None:
    image = random_image()
    backend.store.write(image, ["app:1"])
    assert backend.store.resolve("app:1") == image.digest
    assert backend.store.resolve("app:2") is None
    assert backend.store.resolve("nothing:1") is None


def test_writing_a_tag_again_moves_it_to_the_new_image(backend: Backend) -> None:
    first, second = random_image(seed=1), random_image(seed=2)
    backend.store.write(first, ["app:1", "app:stable"])
    backend.store.write(second, ["app:1"])
    store = backend.reopen()
    assert store.resolve("app:1") == second.digest
    assert store.image("app:1").digest == second.digest
    assert store.resolve("app:stable") == first.digest
    assert store.tags() == ["app:1", "app:stable"]


def test_an_image_whose_tag_moved_stays_readable_by_digest(backend: Backend) -> None:
    first = random_image(seed=1)
    backend.store.write(first, ["app:1"])
    backend.store.write(random_image(seed=2), ["app:1"])
    validate(backend.reopen().image(first.digest))


def test_delete_removes_only_that_tag(backend: Backend) -> None:
    image = random_image()
    backend.store.write(image, ["app:1", "app:2"])
    backend.store.delete("app:1")
    store = backend.reopen()
    assert store.resolve("app:1") is None
    assert store.tags() == ["app:2"]
    assert store.image("app:2").digest == image.digest
    with pytest.raises(ImageNotFound):
        store.image("app:1")


def test_deleting_a_missing_tag_is_image_not_found(backend: Backend) -> None:
    with pytest.raises(ImageNotFound, match="delete nothing:1"):
        backend.store.delete("nothing:1")


def test_a_missing_image_is_image_not_found_naming_the_reference(backend: Backend) -> None:
    backend.store.write(random_image(), ["app:1"])
    with pytest.raises(ImageNotFound, match="app:2"):
        backend.store.image("app:2")
    with pytest.raises(ImageNotFound):
        backend.store.image("sha256:" + "0" * 64)


def test_an_empty_store_has_no_tags(backend: Backend) -> None:
    assert backend.store.tags() == []


def test_reading_manifest_config_and_labels_reads_no_layer_bytes(backend: Backend) -> None:
    backend.store.write(random_image(layers=3, size=100_000, seed=4), ["app:1"])
    reset(backend)
    image = backend.store.image("app:1")
    assert image.labels == {"org.example.seed": "4"}
    assert len(image.layers) == 3 and image.config.rootfs.diff_ids
    assert (backend.stats.layer_opens, backend.stats.layer_bytes_read) == (0, 0)


def test_reading_one_layer_counts_exactly_its_compressed_bytes(backend: Backend) -> None:
    backend.store.write(random_image(layers=3, size=100_000), ["app:1"])
    reset(backend)
    layer = backend.store.image("app:1").layers[1]
    with layer.compressed() as stream:
        assert len(stream.read()) == layer.size
    assert (backend.stats.layer_opens, backend.stats.layer_bytes_read) == (1, layer.size)
    assert backend.stats.opened == [layer.digest]


def test_relabelling_a_stored_image_and_writing_it_back_reads_no_layer_bytes(backend: Backend) -> None:
    backend.store.write(random_image(layers=3, size=100_000), ["app:1"])
    reset(backend)
    relabelled = set_labels(backend.store.image("app:1"), {"io.buildpacks.rebased": "yes"})
    backend.store.write(relabelled, ["app:1"])
    assert backend.store.image("app:1").labels["io.buildpacks.rebased"] == "yes"
    assert backend.stats.layer_bytes_read == 0


def test_layers_the_store_already_has_are_not_read_from_the_source_again(backend: Backend) -> None:
    elsewhere = MemoryStore()
    elsewhere.write(random_image(layers=2, size=30_000), ["base:1"])
    base = elsewhere.image("base:1")
    backend.store.write(base, ["base:1"])
    elsewhere.stats.layer_opens = 0
    backend.store.write(append_layers(base, [random_layer(seed=99)]), ["app:1"])
    assert elsewhere.stats.layer_opens == 0
    validate(backend.store.image("app:1"))


def test_a_layer_whose_bytes_do_not_match_its_digest_is_refused_and_the_tag_stays(backend: Backend) -> None:
    good = random_image(seed=1)
    backend.store.write(good, ["app:1"])
    honest = random_layer(seed=50)
    blobs = MemoryBlobs()
    blobs.blobs[honest.digest] = b"not the layer"
    lying = Layer(honest.descriptor, honest.diff_id, blobs)
    with pytest.raises(DigestMismatch):
        backend.store.write(append_layers(good, [lying]), ["app:1"])
    assert backend.reopen().resolve("app:1") == good.digest


def test_writing_is_idempotent(backend: Backend) -> None:
    image = random_image()
    assert backend.store.write(image, ["app:1"]) == backend.store.write(image, ["app:1"])
    assert backend.store.tags() == ["app:1"]


def test_images_sharing_layers_both_validate(backend: Backend) -> None:
    base = random_image(layers=2, seed=1)
    apps = [append_layers(base, [random_layer(seed=100 + n)]) for n in range(3)]
    for number, app in enumerate(apps):
        backend.store.write(app, [f"app:{number}"])
    for number, app in enumerate(apps):
        image: Image = backend.reopen().image(f"app:{number}")
        assert image.digest == app.digest
        validate(image)
