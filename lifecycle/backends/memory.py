"""An in-memory image store for unit tests: same interface, no disk."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import BinaryIO

from lifecycle.backends.base import BlobStats, CountingReader, normalize_tag
from lifecycle.errors import BlobNotFound, ImageNotFound
from lifecycle.oci.digest import check_digest
from lifecycle.oci.image import Image

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.stats = BlobStats()

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            data = self.blobs[digest]
        except KeyError:
            raise BlobNotFound("read blob", f"{digest} is not in the memory store") from None
        self.stats.layer_opens += 1
        self.stats.opened.append(digest)
        return CountingReader(io.BytesIO(data), self.stats)  # type: ignore[return-value]

    def image(self, ref: str) -> Image:
        digest = self.refs.get(normalize_tag(ref), ref)
        if digest not in self.manifests:
            raise ImageNotFound(f"find image {ref}", "no such image in the memory store")
        raw_manifest, raw_config = self.manifests[digest]
        return Image.from_raw(raw_manifest, raw_config, self, ref)

    def write(self, image: Image, tags: Sequence[str]) -> str:
        """Every layer is read and verified first, so a bad layer leaves the tags as they were."""
        for layer in image.layers:
            if layer.digest not in self.blobs:
                with layer.compressed() as src:
                    data = src.read()
                check_digest(data, layer.digest, f"layer {layer.digest}")
                self.blobs[layer.digest] = data
        self.manifests[image.digest] = (image.raw_manifest, image.raw_config)
        for tag in tags:
            self.refs[normalize_tag(tag)] = image.digest
        return image.digest

    def resolve(self, ref: str) -> str | None:
        return self.refs.get(normalize_tag(ref))

    def tags(self) -> list[str]:
        return sorted(self.refs)

    def delete(self, ref: str) -> None:
        if self.refs.pop(normalize_tag(ref), None) is None:
            raise ImageNotFound(f"delete {ref}", "no such image in the memory store")
