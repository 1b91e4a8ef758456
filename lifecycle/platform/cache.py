"""What a build reuses from earlier builds: previous image, layer cache, known blobs (ANA-1, RES-6).

- The previous image is ``--previous-image`` or what the output name points to now; one
  that is missing or unreadable means a build from scratch, never an error (ANA-1).
- The layer cache is ``--cache-image REF`` (an image in any store) or else a directory on
  this machine named after the image without its tag, or ``--cache NAME``.
- Known blobs: the compressed-blob index over the stores at hand (the target's layout and
  the local store), so a layer already compressed here is not compressed again; and over the
  target itself when it can say it holds a blob (a registry), so it is not uploaded again either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.backends.base import HoldsBlobs
from lifecycle.backends.store import LocalStore
from lifecycle.errors import ImageNotFound, PybuildError
from lifecycle.oci.image import Image
from lifecycle.phases.cache import LayerCache
from lifecycle.phases.export_layers import FindLayer
from lifecycle.platform.cache_blobs import BlobIndex, BlobStore
from lifecycle.platform.cache_dir import DirectoryCache, cache_name_for, caches_root, list_caches
from lifecycle.platform.cache_image import ImageCache
from lifecycle.platform.targets import Target, open_target

__all__ = [
    "PreviousImage",
    "PruneReport",
    "blob_index",
    "find_known_layers",
    "open_cache",
    "previous_image",
    "prune_caches",
]

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
    publish: bool = False,
) -> LayerCache:
    """The cache a build of ``image`` uses; ``clear`` empties it first (``--clear-cache``).

    A cache image is named like any image (``oci:``, ``docker://``, a store name); with
    ``publish`` (the app goes to a registry) a plain ``host/repo:tag`` is in that registry too.
    """
    cache: DirectoryCache | ImageCache
    if cache_image:
        target = open_target(cache_image, create=True, home=home, publish=publish)
        cache = ImageCache(target.store, target.name, target.display, base=run_image)
    else:
        cache = DirectoryCache(caches_root(home), name or cache_name_for(image))
    if clear:
        cache.clear()
    return cache


def blob_index(home: Path) -> BlobIndex:
    return BlobIndex(home / "cache" / "blobs")


def find_known_layers(home: Path, target: Target) -> FindLayer:
    """The blob index over the target's blobs and the local store's, then the target's own word."""
    stores: list[BlobStore] = []
    for store in (target.store, LocalStore(home)):
        layout = getattr(store, "layout", store)
        if isinstance(layout, BlobStore) and all(s.root != layout.root for s in stores):
            stores.append(layout)
    remote = [(target.store, target.name)] if isinstance(target.store, HoldsBlobs) else []
    return blob_index(home).finder(stores, remote)


@dataclass(frozen=True)
class PruneReport:
    removed: tuple[str, ...]  # caches removed whole
    freed: int  # bytes
    index_entries: int  # blob index entries dropped


def prune_caches(home: Path, older_than: float | None, now: float) -> PruneReport:
    """Drop unreferenced tars of every cache, caches unused for ``older_than`` seconds, and
    blob index entries whose blob the local store no longer has."""
    removed, freed = [], 0
    for cache in list_caches(caches_root(home)):
        info = cache.info()
        if older_than is not None and now - info.last_used > older_than:
            cache.remove()
            removed.append(cache.cache_name)
            freed += info.size
        else:
            freed += cache.prune()
    dropped = blob_index(home).prune(LocalStore(home).layout.has_blob)
    return PruneReport(tuple(removed), freed, dropped)
