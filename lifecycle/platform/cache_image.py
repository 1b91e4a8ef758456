"""A build cache kept as an image: ``--cache-image REF`` (RES-6, EXP-14).

The image's layers are the cache=true layers, gzip-compressed and keyed by diffID, and its
``io.buildpacks.lifecycle.cache.metadata`` label holds the metadata, as pack's cache images.
It is read and written only through the ``ImageStore`` interface, so one class serves the
local store, an OCI layout and a registry, whether or not the app image is published.
Unchanged layers are carried over by handle (nothing downloaded, compressed or uploaded)
and a save that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from lifecycle.backends.base import ImageStore
from lifecycle.errors import ImageNotFound, PybuildError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.models import ContainerConfig, ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.phases.cache import CACHE_METADATA_LABEL, CacheError, CacheLayer, CacheMetadata

__all__ = ["ImageCache"]

_CREATED = "1980-01-01T00:00:01Z"


class ImageCache:
    def __init__(self, store: ImageStore, ref: str, display: str, base: Image | None = None) -> None:
        self.store = store
        self.ref = ref
        self.display = display
        self.base = base  # only its os/architecture/variant are used
        self._image: Image | None = None
        self._loaded = False
        self._discarded: set[str] = set()

    @property
    def name(self) -> str:
        return f"cache image {self.display}"

    def _load(self) -> Image | None:
        if not self._loaded:
            try:
                self._image = self.store.image(self.ref)
            except ImageNotFound:
                self._image = None
            except PybuildError as exc:
                raise CacheError("read cache image", str(exc)) from None
            self._loaded = True
        return self._image

    def metadata(self) -> CacheMetadata:
        image = self._load()
        if image is None:
            return CacheMetadata()
        raw = image.labels.get(CACHE_METADATA_LABEL)
        if raw is None:
            raise CacheError("read cache image", f"{self.display} has no {CACHE_METADATA_LABEL} label")
        return CacheMetadata.parse(raw, f"label {CACHE_METADATA_LABEL} of {self.display}")

    def has(self, diff_id: str) -> bool:
        try:
            image = self._load()
        except CacheError:
            return False
        return (
            image is not None
            and diff_id not in self._discarded
            and image.layer_by_diff_id(diff_id) is not None
        )

    def discard(self, diff_id: str) -> None:
        self._discarded.add(diff_id)

    def open_layer(self, diff_id: str) -> BinaryIO:
        image = self._load()
        layer = image.layer_by_diff_id(diff_id) if image is not None else None
        if layer is None:
            raise CacheError("read cached layer", f"{diff_id} is not in {self.display}")
        try:
            return layer.uncompressed()
        except (PybuildError, OSError) as exc:
            raise CacheError("read cached layer", f"{diff_id} of {self.display}: {exc}") from None

    def save(self, metadata: CacheMetadata, added: Sequence[CacheLayer]) -> None:
        try:
            old = self._load()
        except CacheError:
            old = None
        new = {layer.diff_id: layer for layer in added}
        try:
            layers = [self._layer(diff_id, old, new) for diff_id in metadata.diff_ids()]
            image = new_image(self._config(metadata), layers)
            if old is None or old.digest != image.digest:
                self.store.write(image, [self.ref])
        except (PybuildError, OSError) as exc:
            raise CacheError("save cache image", f"{self.display}: {exc}") from None
        self._image, self._loaded = image, True

    def _layer(self, diff_id: str, old: Image | None, new: dict[str, CacheLayer]) -> Layer:
        kept = old.layer_by_diff_id(diff_id) if old is not None else None
        if kept is not None and diff_id not in self._discarded:
            return kept
        if diff_id not in new:
            raise CacheError("save cache image", f"layer {diff_id} is neither cached nor new")
        return new[diff_id].compressed()

    def _config(self, metadata: CacheMetadata) -> ImageConfig:
        platform = self.base.config if self.base is not None else ImageConfig()
        return ImageConfig(
            created=_CREATED,
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            config=ContainerConfig(labels={CACHE_METADATA_LABEL: metadata.to_json()}),
        )

    def clear(self) -> None:
        """Start from an empty cache (``--clear-cache``); the stored image is replaced on save."""
        self._image, self._loaded = None, True
