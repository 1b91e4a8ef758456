"""Lazy layer handles: a digest, a diffID and where the bytes can be had.

Bytes move only when ``compressed()`` or ``uncompressed()`` is called. A
backend may offer cheaper paths by capability (``blob_path`` for a file that
can be hard-linked), never by type checks (STYLE.md, go-containerregistry).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from isal import igzip

from lifecycle.errors import BlobNotFound
from lifecycle.oci.media import is_gzip_layer
from lifecycle.oci.models import Descriptor

__all__ = ["BlobSource", "FileBlobs", "Layer", "LocalBlobs", "MemoryBlobs"]


class BlobSource(Protocol):
    """Where a layer's compressed bytes come from."""

    def open_blob(self, digest: str) -> BinaryIO: ...


@runtime_checkable
class LocalBlobs(Protocol):
    """Capability: the blob is a file on this machine (can be hard-linked)."""

    def blob_path(self, digest: str) -> Path | None: ...


@dataclass(frozen=True)
class Layer:
    descriptor: Descriptor
    diff_id: str
    source: BlobSource = field(compare=False, repr=False)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    def compressed(self) -> BinaryIO:
        return self.source.open_blob(self.digest)

    def uncompressed(self) -> BinaryIO:
        stream = self.compressed()
        if is_gzip_layer(self.media_type):
            return _Gunzip(stream)  # type: ignore[return-value]
        return stream

    def local_path(self) -> Path | None:
        if isinstance(self.source, LocalBlobs):
            return self.source.blob_path(self.digest)
        return None


class _Gunzip(igzip.GzipFile):
    """Decompresses a blob stream, and closes it too (``GzipFile`` leaves a given stream open)."""

    def __init__(self, blob: BinaryIO) -> None:
        super().__init__(fileobj=blob, mode="rb")  # type: ignore[no-untyped-call]
        self._blob = blob

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._blob.close()


class FileBlobs:
    """Blobs that are files on disk, known by digest (fresh layers, extracted caches)."""

    def __init__(self, paths: dict[str, Path] | None = None) -> None:
        self._paths = dict(paths or {})

    def add(self, digest: str, path: Path) -> None:
        self._paths[digest] = path

    def blob_path(self, digest: str) -> Path | None:
        return self._paths.get(digest)

    def open_blob(self, digest: str) -> BinaryIO:
        path = self._paths.get(digest)
        if path is None:
            raise BlobNotFound("open blob", f"{digest} is not known")
        return path.open("rb")


class MemoryBlobs:
    """Blobs held in memory: unit tests and tiny generated layers."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return io.BytesIO(self.blobs[digest])
        except KeyError:
            raise BlobNotFound("open blob", f"{digest} is not known") from None
