"""MemoryStore specifics: plain names mean :latest, and what it counts."""

from __future__ import annotations

import pytest
from support.images import random_image

from lifecycle.backends.memory import MemoryStore
from lifecycle.errors import ImageNotFound


def test_a_plain_name_means_the_latest_tag() -> None:
    store = MemoryStore()
    image = random_image()
    store.write(image, ["app"])
    assert store.tags() == ["app:latest"]
    assert store.resolve("app") == store.resolve("app:latest") == image.digest
    assert store.image("app").digest == image.digest


def test_a_registry_name_with_a_port_still_gets_latest() -> None:
    store = MemoryStore()
    store.write(random_image(), ["localhost:5000/team/app"])
    assert store.tags() == ["localhost:5000/team/app:latest"]


def test_delete_of_a_plain_name_deletes_latest() -> None:
    store = MemoryStore()
    store.write(random_image(), ["app"])
    store.delete("app")
    with pytest.raises(ImageNotFound):
        store.image("app:latest")


def test_layer_blobs_are_stored_once_per_digest() -> None:
    store = MemoryStore()
    image = random_image(layers=2)
    store.write(image, ["a"])
    store.write(image, ["b"])
    assert set(store.blobs) == {layer.digest for layer in image.layers}
