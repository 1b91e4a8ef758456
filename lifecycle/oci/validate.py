"""Check an image end to end: every digest, size and diffID recomputed from bytes."""

from __future__ import annotations

import hashlib

from lifecycle.errors import DigestMismatch, ImageError
from lifecycle.oci.digest import check_digest
from lifecycle.oci.image import Image

__all__ = ["validate"]

_CHUNK = 1 << 20


def validate(image: Image, *, layers: bool = True) -> None:
    """Raise unless the config, and (with ``layers``) every layer, match their descriptors."""
    check_digest(image.raw_config, image.config_descriptor.digest, "image config")
    if image.config_descriptor.size != len(image.raw_config):
        raise ImageError("verify image config", "size differs from its descriptor")
    if image.config.rootfs.diff_ids != image.diff_ids:
        raise ImageError("verify image", "config diff_ids differ from the layer handles")
    if image.manifest.layers != [layer.descriptor for layer in image.layers]:
        raise ImageError("verify image", "manifest layers differ from the layer handles")
    if layers:
        for index, layer in enumerate(image.layers):
            _validate_layer(index, layer.digest, layer.size, layer.diff_id, image)


def _validate_layer(index: int, digest: str, size: int, diff_id: str, image: Image) -> None:
    layer = image.layers[index]
    compressed = hashlib.sha256()
    count = 0
    with layer.compressed() as stream:
        while chunk := stream.read(_CHUNK):
            compressed.update(chunk)
            count += len(chunk)
    if "sha256:" + compressed.hexdigest() != digest or count != size:
        raise DigestMismatch(f"verify layer {index}", f"blob does not match {digest} ({size} bytes)")
    uncompressed = hashlib.sha256()
    with layer.uncompressed() as stream:
        while chunk := stream.read(_CHUNK):
            uncompressed.update(chunk)
    if "sha256:" + uncompressed.hexdigest() != diff_id:
        raise DigestMismatch(f"verify layer {index}", f"content does not match diffID {diff_id}")
