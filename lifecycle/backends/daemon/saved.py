"""Layer bytes from the daemon: one ``docker save`` per image, only when a layer is read.

A daemon image's layers are handles (``DaemonLayers``) that cost nothing
until ``compressed()`` or ``uncompressed()`` is called; the first read saves
the whole image once (docker has no per-layer API) and splits the stream into
one file per layer in a scratch directory, so later reads are file reads.
Saved layers are uncompressed tars: their digest is their diffID.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from lifecycle.backends.base import BlobStats, CountingReader
from lifecycle.errors import BlobNotFound, DigestMismatch, ImageError
from lifecycle.oci.digest import check_digest, hex_part
from lifecycle.oci.layer import FileBlobs, Layer
from lifecycle.oci.media import OCI_LAYER
from lifecycle.oci.models import Descriptor

__all__ = ["DaemonLayers", "DaemonStats", "SavedImage", "SavedImages"]

_CHUNK = 1 << 20


@dataclass
class DaemonStats(BlobStats):
    """What crossed the daemon socket: saves (with their bytes), loads (with archive bytes) and tags."""

    saves: int = 0
    saved_bytes: int = 0
    loads: int = 0
    load_bytes: int = 0
    placeholders: int = 0
    layers_sent: int = 0
    fallbacks: int = 0
    tag_only_writes: int = 0
    load_attempts: list[int] = field(default_factory=list)  # placeholders used by each docker load


@dataclass(frozen=True)
class SavedImage:
    """One saved image: its exact config bytes and a file per layer, by diffID."""

    raw_config: bytes
    layer_files: dict[str, Path]


SaveStream = Callable[[str], Iterator[bytes]]


class SavedImages:
    """Saved images by ID, in a scratch directory removed with this object (or at exit)."""

    def __init__(self, save: SaveStream, stats: DaemonStats, scratch: Path | None = None) -> None:
        self._save = save
        self._stats = stats
        self._parent = scratch
        self._root: Path | None = None
        self._images: dict[str, SavedImage] = {}
        self._lock = threading.Lock()
        self._cleanup: Callable[[], object] | None = None

    def get(self, image_id: str) -> SavedImage:
        """The saved image, saving it first if no layer of it was read before."""
        with self._lock:
            if image_id not in self._images:
                self._images[image_id] = self._save_image(image_id)
            return self._images[image_id]

    def close(self) -> None:
        """Remove every saved file; a later read saves again."""
        with self._lock:
            if self._cleanup is not None:
                self._cleanup()
            self._images.clear()
            self._root = self._cleanup = None

    def _scratch(self) -> Path:
        if self._root is None:
            if self._parent is not None:
                self._parent.mkdir(parents=True, exist_ok=True)
            self._root = Path(tempfile.mkdtemp(prefix="pybuild-docker-save-", dir=self._parent))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._root, True)
        return self._root

    def _save_image(self, image_id: str) -> SavedImage:
        directory = Path(tempfile.mkdtemp(prefix=hex_part(image_id)[:12] + "-", dir=self._scratch()))
        self._stats.saves += 1
        stream = io.BufferedReader(_ChunkStream(self._save(image_id), self._stats), _CHUNK)
        try:
            small, files = _unpack(stream, directory)
        except tarfile.TarError as exc:
            raise ImageError(f"read docker save of {image_id}", str(exc)) from exc
        return _saved_image(image_id, small, files)


def _unpack(stream: IO[bytes], directory: Path) -> tuple[dict[str, bytes], dict[str, Path]]:
    """Layer tars to files in ``directory``; the small JSON entries kept in memory."""
    files: dict[str, Path] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|", bufsize=_CHUNK) as tar:
        for member in tar:
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                continue
            if member.name.endswith("/layer.tar"):
                files[member.name] = _copy_to(source, directory / f"{len(files)}.tar")
            else:
                small[member.name] = source.read()
    return small, files


def _saved_image(image_id: str, small: dict[str, bytes], files: dict[str, Path]) -> SavedImage:
    """Pair ``manifest.json``'s layer names with the config's diffIDs; check the config is the image's."""
    try:
        (entry,) = json.loads(small["manifest.json"])
        raw_config = small[entry["Config"]]
        diff_ids = json.loads(raw_config)["rootfs"]["diff_ids"]
        paths = [files[name] for name in entry["Layers"]]
    except (KeyError, ValueError, TypeError) as exc:
        raise ImageError(f"read docker save of {image_id}", f"unexpected archive layout ({exc!r})") from exc
    check_digest(raw_config, image_id, f"config of {image_id} in docker save")
    return SavedImage(raw_config, dict(zip(diff_ids, paths, strict=True)))


def _copy_to(source: IO[bytes], path: Path) -> Path:
    with path.open("wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    return path


class _ChunkStream(io.RawIOBase):
    """A readable file over the chunks ``docker save`` streams, counting them."""

    def __init__(self, chunks: Iterator[bytes], stats: DaemonStats) -> None:
        self._chunks = chunks
        self._stats = stats
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._stats.saved_bytes += len(chunk)
            self._chunk = memoryview(chunk)
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


@dataclass(frozen=True)
class DaemonLayers:
    """The ``BlobSource`` of one daemon image's layers; descriptor digests are diffIDs."""

    saved: SavedImages = field(repr=False)
    stats: DaemonStats = field(repr=False)
    image_id: str

    def open_blob(self, digest: str) -> BinaryIO:
        path = self.saved.get(self.image_id).layer_files.get(digest)
        if path is None:
            raise BlobNotFound("read layer from docker daemon", f"{digest} is not a layer of {self.image_id}")
        self.stats.layer_opens += 1
        self.stats.opened.append(digest)
        return CountingReader(path.open("rb"), self.stats)  # type: ignore[return-value]

    def layer(self, diff_id: str) -> Layer:
        """A lazy handle: uncompressed media type, digest = diffID, size unknown (0) until saved."""
        return Layer(Descriptor(media_type=OCI_LAYER, digest=diff_id, size=0), diff_id, self)

    def exact_layer(self, diff_id: str) -> Layer:
        """The saved file as a layer with its true size (saves the image if needed)."""
        path = self.saved.get(self.image_id).layer_files.get(diff_id)
        if path is None:
            raise DigestMismatch("read layer from docker daemon", f"{diff_id} is not in {self.image_id}")
        descriptor = Descriptor(media_type=OCI_LAYER, digest=diff_id, size=path.stat().st_size)
        return Layer(descriptor, diff_id, FileBlobs({diff_id: path}))
