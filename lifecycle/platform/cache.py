"""What a build reuses from earlier builds: previous image, layer cache, known blobs (ANA-1, RES-6).

- The previous image is ``--previous-image`` or what the output name points to now; one
  that is missing or unreadable means a build from scratch, never an error (ANA-1).
- The layer cache is ``--cache-image REF`` (an image in any store) or else a directory on
  this machine named after the image without its tag, or ``--cache NAME``.
- Known blobs: the compressed-blob index over the stores at hand (the target's layout and
  the local store), so a layer already compressed here is not compressed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.backends.store import LocalStore
from lifecycle.errors import ImageNotFound, PybuildError
from lifecycle.oci.image import Image
from lifecycle.phases.cache import LayerCache
from lifecycle.phases.export_layers import FindLayer
from lifecycle.platform.cache_blobs import BlobIndex, BlobStore
from lifecycle.platform.cache_dir import DirectoryCache, cache_name_for, caches_root
from lifecycle.platform.cache_image import ImageCache
from lifecycle.platform.targets import Target, open_target

__all__ = ["PreviousImage", "blob_index", "find_known_layers", "open_cache", "previous_image"]

Warn = Callable[[str], None]


@dataclass(frozen=True)
class PreviousImage:
    image: Image | None
    reference: str | None


def previous_image(target: Target, ref: str | None, home: Path, warn: Warn) -> PreviousImage:
    """``ref`` (``--previous-image``) or the target's current image; none if it cannot be read."""
    try:
        source = open_target(ref, home=home) if ref else target
        return PreviousImage(source.store.image(source.name), source.display)
    except ImageNotFound as exc:
        if ref:
            warn(f"previous image {ref} not found, building from scratch: {exc.cause}")
    except PybuildError as exc:
        warn(f"previous image {ref or target.display} cannot be read, building from scratch: {exc}")
    return PreviousImage(None, None)


def open_cache(
    home: Path,
    image: str,
    *,
    name: str | None = None,
    cache_image: str | None = None,
    run_image: Image | None = None,
    clear: bool = False,
) -> LayerCache:
    """The cache a build of ``image`` uses; ``clear`` empties it first (``--clear-cache``)."""
    cache: DirectoryCache | ImageCache
    if cache_image:
        target = open_target(cache_image, create=True, home=home)
        cache = ImageCache(target.store, target.name, target.display, base=run_image)
    else:
        cache = DirectoryCache(caches_root(home), name or cache_name_for(image))
    if clear:
        cache.clear()
    return cache


def blob_index(home: Path) -> BlobIndex:
    return BlobIndex(home / "cache" / "blobs")


def find_known_layers(home: Path, target: Target) -> FindLayer:
    """The blob index over the target's blobs and the local store's."""
    stores: list[BlobStore] = []
    for store in (target.store, LocalStore(home)):
        layout = getattr(store, "layout", store)
        if isinstance(layout, BlobStore) and all(s.root != layout.root for s in stores):
            stores.append(layout)
    return blob_index(home).finder(stores)
