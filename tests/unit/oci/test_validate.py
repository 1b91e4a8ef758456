"""validate() recomputes every digest, size and diffID, and says which part is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.images import random_image, random_layer

from lifecycle.errors import DigestMismatch, ImageError
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.mutate import new_image
from lifecycle.oci.validate import validate


def test_a_fresh_image_in_memory_is_valid() -> None:
    validate(random_image(layers=3, size=100_000))


def test_a_fresh_image_on_disk_is_valid(tmp_path: Path) -> None:
    validate(random_image(layers=3, size=100_000, directory=tmp_path))


def test_an_image_without_layers_is_valid() -> None:
    validate(random_image(layers=0))


def corrupt_blob(layer: Layer, change: bytes = b"\xff") -> None:
    path = layer.local_path()
    assert path is not None
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= change[0]
    path.write_bytes(bytes(data))


def test_a_corrupted_layer_blob_is_caught_and_named(tmp_path: Path) -> None:
    image = random_image(layers=3, directory=tmp_path)
    corrupt_blob(image.layers[1])
    with pytest.raises(
        DigestMismatch, match=f"failed to verify layer 1: blob does not match {image.layers[1].digest}"
    ):
        validate(image)


def test_a_truncated_layer_blob_is_caught(tmp_path: Path) -> None:
    image = random_image(layers=1, directory=tmp_path)
    path = image.layers[0].local_path()
    assert path is not None
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DigestMismatch, match="verify layer 0"):
        validate(image)


def test_a_wrong_diff_id_is_caught() -> None:
    layer = random_layer(seed=1)
    lying = Layer(layer.descriptor, random_layer(seed=2).diff_id, layer.source)
    with pytest.raises(DigestMismatch, match="content does not match diffID"):
        validate(new_image(random_image(layers=0).config, [lying]))


def test_a_config_that_does_not_match_its_digest_is_caught() -> None:
    image = random_image()
    manifest = json.loads(image.raw_manifest)
    manifest["config"]["digest"] = sha256_digest(b"another config")
    with pytest.raises(DigestMismatch, match="verify image config"):
        validate(Image(json.dumps(manifest).encode(), image.raw_config, image.layers))


def test_a_config_size_that_differs_from_its_descriptor_is_caught() -> None:
    image = random_image()
    manifest = json.loads(image.raw_manifest)
    manifest["config"]["size"] += 1
    with pytest.raises(ImageError, match="size differs"):
        validate(Image(json.dumps(manifest).encode(), image.raw_config, image.layers))


def test_layer_handles_that_differ_from_the_config_diff_ids_are_caught() -> None:
    image = random_image(layers=2)
    with pytest.raises(ImageError, match="diff_ids differ"):
        validate(Image(image.raw_manifest, image.raw_config, tuple(reversed(image.layers))))


def test_layer_handles_that_differ_from_the_manifest_layers_are_caught() -> None:
    image = random_image(layers=1)
    other = random_layer(seed=77)
    swapped = Layer(other.descriptor, image.layers[0].diff_id, other.source)
    with pytest.raises(ImageError, match="manifest layers differ"):
        validate(Image(image.raw_manifest, image.raw_config, (swapped,)))


def test_without_layers_only_the_config_is_checked(tmp_path: Path) -> None:
    image = random_image(layers=1, directory=tmp_path)
    corrupt_blob(image.layers[0])
    validate(image, layers=False)
