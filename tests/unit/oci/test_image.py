"""The Image value: raw bytes are kept, digests are over them, layers pair with diffIDs."""

from __future__ import annotations

import json

import pytest
from support.images import random_image

from lifecycle.errors import DigestMismatch, ImageError
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import MemoryBlobs
from lifecycle.oci.media import OCI_INDEX, OCI_MANIFEST


def pretty_parts(image: Image) -> tuple[bytes, bytes]:
    """The image's manifest re-encoded with indentation: same meaning, different bytes."""
    return json.dumps(json.loads(image.raw_manifest), indent=3).encode(), image.raw_config


def test_from_raw_pairs_each_layer_descriptor_with_its_diff_id() -> None:
    image = random_image(layers=3)
    again = Image.from_raw(image.raw_manifest, image.raw_config, MemoryBlobs(), "test")
    assert [(layer.digest, layer.diff_id) for layer in again.layers] == [
        (layer.digest, layer.diff_id) for layer in image.layers
    ]


def test_digest_is_over_the_exact_manifest_bytes_read() -> None:
    raw_manifest, raw_config = pretty_parts(random_image())
    image = Image.from_raw(raw_manifest, raw_config, MemoryBlobs(), "test")
    assert image.raw_manifest == raw_manifest
    assert image.digest == sha256_digest(raw_manifest)
    assert image.descriptor().size == len(raw_manifest)


def test_from_raw_rejects_a_config_that_does_not_match_its_digest() -> None:
    image = random_image()
    with pytest.raises(DigestMismatch, match="config of app"):
        Image.from_raw(image.raw_manifest, image.raw_config + b" ", MemoryBlobs(), "app")


def test_from_raw_rejects_more_layers_than_diff_ids() -> None:
    image = random_image(layers=2)
    config = json.loads(image.raw_config)
    config["rootfs"]["diff_ids"].pop()
    raw_config = json.dumps(config).encode()
    manifest = json.loads(image.raw_manifest)
    manifest["config"].update(digest=sha256_digest(raw_config), size=len(raw_config))
    with pytest.raises(ImageError, match="manifest has 2 layers but config has 1 diff_ids"):
        Image.from_raw(json.dumps(manifest).encode(), raw_config, MemoryBlobs(), "app")


def test_from_raw_refuses_an_index() -> None:
    image = random_image()
    manifest = json.loads(image.raw_manifest)
    manifest["mediaType"] = OCI_INDEX
    with pytest.raises(ImageError, match="is not an image manifest"):
        Image.from_raw(json.dumps(manifest).encode(), image.raw_config, MemoryBlobs(), "app")


def test_a_manifest_without_media_type_is_taken_as_oci() -> None:
    image = random_image()
    manifest = json.loads(image.raw_manifest)
    del manifest["mediaType"]
    again = Image.from_raw(json.dumps(manifest).encode(), image.raw_config, MemoryBlobs(), "app")
    assert again.media_type == OCI_MANIFEST


def test_descriptor_carries_annotations_and_media_type() -> None:
    image = random_image()
    descriptor = image.descriptor({"org.opencontainers.image.ref.name": "v1"})
    assert (descriptor.media_type, descriptor.digest, descriptor.annotations) == (
        OCI_MANIFEST,
        image.digest,
        {"org.opencontainers.image.ref.name": "v1"},
    )


def test_layer_by_diff_id_finds_the_layer_or_none() -> None:
    image = random_image(layers=3)
    assert image.layer_by_diff_id(image.diff_ids[1]) is image.layers[1]
    assert image.layer_by_diff_id("sha256:" + "0" * 64) is None


def test_labels_and_annotations_are_copies() -> None:
    image = random_image(seed=5)
    image.labels["x"] = "y"
    image.annotations["x"] = "y"
    assert image.labels == {"org.example.seed": "5"}
    assert image.annotations == {}
