"""The image value: raw manifest and config bytes plus lazy layer handles.

An ``Image`` is what every backend returns and accepts. Its digest is the
hash of the manifest bytes it was read with; parsed models sit beside the raw
bytes and are never re-serialised unless something changed (see ``mutate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lifecycle.errors import ImageError
from lifecycle.oci.digest import check_digest, sha256_digest
from lifecycle.oci.layer import BlobSource, Layer
from lifecycle.oci.media import OCI_MANIFEST, is_manifest
from lifecycle.oci.models import (
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    ImageConfig,
    Manifest,
    parse_model,
)

__all__ = ["Image", "check_size"]


@dataclass(frozen=True, eq=False)
class Image:
    raw_manifest: bytes
    raw_config: bytes
    layers: tuple[Layer, ...]

    @classmethod
    def from_raw(cls, raw_manifest: bytes, raw_config: bytes, source: BlobSource, what: str) -> Image:
        """Pair the manifest's layer descriptors with the config's diffIDs."""
        check_size(raw_manifest, MAX_MANIFEST_BYTES, f"manifest of {what}")
        check_size(raw_config, MAX_CONFIG_BYTES, f"config of {what}")
        manifest = parse_model(Manifest, raw_manifest, f"manifest of {what}")
        media_type = manifest.media_type or OCI_MANIFEST
        if not is_manifest(media_type):
            raise ImageError(f"read {what}", f"media type {media_type} is not an image manifest")
        check_digest(raw_config, manifest.config.digest, f"config of {what}")
        config = parse_model(ImageConfig, raw_config, f"config of {what}")
        diff_ids = config.rootfs.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise ImageError(
                f"read {what}",
                f"manifest has {len(manifest.layers)} layers but config has {len(diff_ids)} diff_ids",
            )
        layers = tuple(Layer(d, diff, source) for d, diff in zip(manifest.layers, diff_ids, strict=True))
        return cls(raw_manifest, raw_config, layers)

    @cached_property
    def manifest(self) -> Manifest:
        return parse_model(Manifest, self.raw_manifest, "manifest")

    @cached_property
    def config(self) -> ImageConfig:
        return parse_model(ImageConfig, self.raw_config, "config")

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.raw_manifest)

    @property
    def media_type(self) -> str:
        return self.manifest.media_type or OCI_MANIFEST

    @property
    def config_descriptor(self) -> Descriptor:
        return self.manifest.config

    def descriptor(self, annotations: dict[str, str] | None = None) -> Descriptor:
        return Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=len(self.raw_manifest),
            annotations=annotations,
        )

    @property
    def labels(self) -> dict[str, str]:
        return self.config.labels

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.manifest.annotations or {})

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    def layer_by_diff_id(self, diff_id: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.diff_id == diff_id), None)


def check_size(raw: bytes, limit: int, what: str) -> None:
    """Refuse a document larger than ``limit`` (see ``MAX_MANIFEST_BYTES``, ``MAX_CONFIG_BYTES``)."""
    if len(raw) > limit:
        raise ImageError(f"read {what}", f"it is {len(raw)} bytes, more than the {limit} bytes allowed")
