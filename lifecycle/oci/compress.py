"""Single-pass layer compression: tar bytes -> diffID, gzip -> digest, to a file.

One pass over the uncompressed stream hashes it (the diffID), deflates it with
ISA-L (about ten times zlib level 6 here, at similar size) and hashes the
compressed output (the digest) while writing it. Nothing is read twice.

ISA-L's output depends on how its input is cut into ``compress`` calls, so the
sink always feeds it whole ``_CHUNK`` blocks: the blob then depends only on the
tar bytes, not on how a writer split them (EXP-6). Changing ``_CHUNK`` or the
level changes every layer digest.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from isal import isal_zlib

from lifecycle.oci.files import create_temp, naming
from lifecycle.oci.layer import FileBlobs, Layer
from lifecycle.oci.media import OCI_LAYER_GZIP
from lifecycle.oci.models import Descriptor
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar

__all__ = ["CompressedBlob", "LayerSink", "blob_layer", "compress_file", "write_layer"]

_GZIP_WBITS = 31  # gzip container; ISA-L writes mtime 0, so headers are reproducible
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CompressedBlob:
    path: Path
    diff_id: str
    digest: str
    size: int
    uncompressed_size: int


class LayerSink:
    """A write-only file object: feed it a tar stream, get a ``CompressedBlob``.

    The blob lands in ``directory`` under a temporary name; callers rename it
    into place once they have its digest (atomic writes).
    """

    def __init__(self, directory: Path, level: int = 1) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, self._path = create_temp(directory, ".layer-")
        self._file = os.fdopen(fd, "wb")
        self._diff = hashlib.sha256()
        self._digest = hashlib.sha256()
        self._deflate = isal_zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        self._pending = bytearray()
        self._size = 0
        self._raw_size = 0
        self.result: CompressedBlob | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._pending += data
        if len(self._pending) >= _CHUNK:
            self._consume_whole_chunks()
        return len(data)

    def tell(self) -> int:
        return self._raw_size + len(self._pending)

    def flush(self) -> None:
        """Kept cheap: tarfile calls it; real flushing happens at close."""

    def _consume_whole_chunks(self) -> None:
        whole = len(self._pending) - len(self._pending) % _CHUNK
        with memoryview(self._pending) as view:
            for start in range(0, whole, _CHUNK):
                self._consume(view[start : start + _CHUNK])
        del self._pending[:whole]

    def _consume(self, chunk: bytes | memoryview) -> None:
        self._raw_size += len(chunk)
        self._diff.update(chunk)
        self._emit(self._deflate.compress(chunk))

    def _emit(self, out: bytes) -> None:
        if out:
            self._digest.update(out)
            with naming(self._path):
                self._file.write(out)
            self._size += len(out)

    def close(self) -> CompressedBlob:
        if self.result is None:
            self._consume(bytes(self._pending))
            self._pending.clear()
            self._emit(self._deflate.flush())
            with naming(self._path):
                self._file.close()
            self.result = CompressedBlob(
                path=self._path,
                diff_id="sha256:" + self._diff.hexdigest(),
                digest="sha256:" + self._digest.hexdigest(),
                size=self._size,
                uncompressed_size=self._raw_size,
            )
        return self.result

    def abort(self) -> None:
        try:
            self._file.close()  # flushes: on a full disk this fails again, and the file must still go
        finally:
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> LayerSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def compress_file(tar_path: Path, directory: Path, level: int = 1) -> CompressedBlob:
    """Compress an existing tar file (a rootfs tarball) in one pass."""
    with LayerSink(directory, level) as sink, tar_path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            sink.write(chunk)
    return sink.close()


def blob_layer(blob: CompressedBlob, media_type: str = OCI_LAYER_GZIP) -> Layer:
    """A layer handle over a freshly compressed blob file."""
    descriptor = Descriptor(media_type=media_type, digest=blob.digest, size=blob.size)
    return Layer(descriptor, blob.diff_id, FileBlobs({blob.digest: blob.path}))


def write_layer(
    directory: Path,
    fill: Callable[[LayerTar], None],
    *,
    mtime: int = DEFAULT_MTIME,
    uid: int = 0,
    gid: int = 0,
    level: int = 1,
) -> Layer:
    """Write one reproducible layer: ``fill`` adds entries to the tar, one pass to a blob file."""
    with LayerSink(directory, level) as sink:
        tar = LayerTar(sink, mtime=mtime, uid=uid, gid=gid)  # type: ignore[arg-type]
        fill(tar)
        tar.close()
    return blob_layer(sink.close())
