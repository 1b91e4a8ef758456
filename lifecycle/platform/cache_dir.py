"""The default build cache: a directory on this machine, one per app name (RES-6, EXP-14).

``$PYBUILD_HOME/cache/build/<name>/``, where ``<name>`` is the image name without its tag
(``myapp:v1`` and ``myapp:v2`` share one cache) or ``--cache NAME``. Its layout is the
lifecycle's volume cache (RES-6): ``committed/<diffID>.tar``, uncompressed tars with
absolute paths, and ``committed/io.buildpacks.lifecycle.cache.metadata``. Uncompressed,
because a tar the exporter already wrote is linked in for free and restores with no
inflate; the blob index keeps compressed blobs from being made twice.

Writes are atomic (each tar and the metadata land by rename) and one save at a time holds
the lock; restores take no lock: a tar removed under a reader is a miss and a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from lifecycle.backends.base import repository_of
from lifecycle.oci.digest import is_digest
from lifecycle.oci.files import create_temp
from lifecycle.phases.cache import CACHE_METADATA_LABEL, CacheError, CacheLayer, CacheMetadata
from lifecycle.phases.cache_extract import remove_tree

__all__ = ["CacheInfo", "DirectoryCache", "cache_name_for", "caches_root", "list_caches"]

_STALE_TMP_SECONDS = 3600
_MAX_DIR_NAME = 200


def caches_root(home: Path) -> Path:
    return home / "cache" / "build"


def cache_name_for(image: str) -> str:
    """The cache an image uses by default: its name without tag or digest."""
    return repository_of(image)


@dataclass(frozen=True)
class CacheInfo:
    name: str
    path: Path
    layers: int
    size: int
    last_used: float  # seconds since the epoch


class DirectoryCache:
    """One cache directory; ``name`` is what the user calls it (``myapp``, ``--cache NAME``)."""

    def __init__(self, root: Path, cache_name: str) -> None:
        self.cache_name = cache_name
        self.root = root / _dir_name(cache_name)
        self.committed = self.root / "committed"

    @property
    def name(self) -> str:
        return f"cache {self.cache_name!r} ({self.root})"

    # -- reading ---------------------------------------------------------------------
    def metadata(self) -> CacheMetadata:
        path = self.committed / CACHE_METADATA_LABEL
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return CacheMetadata()
        except OSError as exc:
            raise CacheError("read cache metadata", f"{path}: {exc.strerror}") from None
        return CacheMetadata.parse(raw, str(path))

    def _tar(self, diff_id: str) -> Path:
        if not is_digest(diff_id):
            raise CacheError("find cached layer", f"{diff_id!r} is not a diffID")
        return self.committed / f"{diff_id}.tar"

    def has(self, diff_id: str) -> bool:
        return is_digest(diff_id) and self._tar(diff_id).is_file()

    def open_layer(self, diff_id: str) -> BinaryIO:
        path = self._tar(diff_id)
        try:
            return path.open("rb")
        except OSError as exc:
            raise CacheError("read cached layer", f"{path}: {exc.strerror}") from None

    def discard(self, diff_id: str) -> None:
        with contextlib.suppress(CacheError, OSError):
            self._tar(diff_id).unlink(missing_ok=True)

    # -- writing ---------------------------------------------------------------------
    def save(self, metadata: CacheMetadata, added: Sequence[CacheLayer]) -> None:
        """Link or copy the new tars in, replace the metadata, then drop what it no longer names."""
        try:
            self.committed.mkdir(parents=True, exist_ok=True)
            (self.root / "name").write_text(self.cache_name)
            with self._locked():
                for layer in added:
                    self._put(layer)
                _atomic_write(self.committed / CACHE_METADATA_LABEL, metadata.to_json().encode(), self.root)
                self._drop_unlisted(set(metadata.diff_ids()))
        except OSError as exc:
            raise CacheError("save cache", f"{self.root}: {exc}") from None

    def _put(self, layer: CacheLayer) -> None:
        dest = self._tar(layer.diff_id)
        if dest.is_file():
            return
        fd, tmp = create_temp(self.root, ".tar-")
        os.close(fd)
        tmp.unlink()
        try:
            os.link(layer.tar, tmp)
        except OSError:
            shutil.copyfile(layer.tar, tmp)
        os.replace(tmp, dest)

    def _drop_unlisted(self, keep: set[str]) -> None:
        for path in self.committed.glob("*.tar"):
            if path.name.removesuffix(".tar") not in keep:
                path.unlink(missing_ok=True)
        for path in self.root.glob(".*.tmp"):
            if time.time() - path.lstat().st_mtime > _STALE_TMP_SECONDS:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every layer (``--clear-cache``)."""
        with self._locked():
            remove_tree(self.committed)

    def remove(self) -> None:
        remove_tree(self.root)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def info(self) -> CacheInfo:
        files = list(self.committed.glob("*.tar")) if self.committed.is_dir() else []
        meta = self.committed / CACHE_METADATA_LABEL
        last = meta.stat().st_mtime if meta.is_file() else self.root.stat().st_mtime
        size = sum(p.stat().st_size for p in files)
        return CacheInfo(self.cache_name, self.root, len(files), size, last)

    def prune(self) -> int:
        """Drop tars the metadata does not name (an interrupted save left them); bytes freed."""
        if not self.committed.is_dir():
            return 0
        try:
            keep = set(self.metadata().diff_ids())
        except CacheError:
            keep = set()
        before = self.info().size
        with self._locked():
            self._drop_unlisted(keep)
        return before - self.info().size


def list_caches(root: Path) -> list[DirectoryCache]:
    """Every cache under ``root``, by name."""
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        if path.is_dir():
            name_file = path / "name"
            name = name_file.read_text() if name_file.is_file() else unquote(path.name)
            found.append(DirectoryCache(root, name))
    return sorted(found, key=lambda cache: cache.cache_name)


def _dir_name(name: str) -> str:
    """A file name for a cache name: reversible (``%2F`` for ``/``), never ``.`` or ``..``."""
    if not name:
        raise CacheError("open cache", "the cache name is empty")
    escaped = quote(name, safe="")
    if escaped in (".", ".."):
        return escaped.replace(".", "%2E")
    if len(escaped) > _MAX_DIR_NAME:  # the real name is in the dir's ``name`` file
        return escaped[: _MAX_DIR_NAME - 17] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return escaped


def _atomic_write(dest: Path, data: bytes, scratch: Path) -> None:
    fd, tmp = create_temp(scratch, ".write-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
