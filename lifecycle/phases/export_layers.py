"""Layers as the exporter and the cacher write them: tarred once, compressed only when new.

Each layer is first tarred to a plain file while its diffID is hashed. If a blob with that
diffID is already known (a layer of the previous image, EXP-7, or a blob this machine
compressed before, through the platform's blob index) that handle is used and nothing is
compressed or copied. Otherwise the tar file is compressed in one pass by ``compress_file``,
which feeds ISA-L the same whole chunks as ``write_layer``, so the blob and its digest are
the same as a one-pass write would give (EXP-6). On a 1,700-file venv, tarring to a file
costs about 60% of the one-pass write and compressing that file about 45% of it
(bench/README.md, "rebuild"): a known layer is nearly half price, a new one ~5% dearer.

A layer is tarred once per build even when both the image and the cache want it (a launch
and cache layer, EXP-14): results are kept by identifier (``<buildpack id>:<layer>``).

Build secrets: the tar bytes are searched for every secret value as they stream to the file
(``LeakScanner``, which also finds a value cut across two chunks); a tar holding one is
deleted and ``SecretInLayer`` (exit 62) names the layer and the secret's id, never its value.
Both the image and the cache are written from these tars only.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lifecycle.errors import ExitCode, PybuildError
from lifecycle.execution.secrets import NO_SECRETS, LeakScanner, Secrets
from lifecycle.oci.compress import blob_layer, compress_file
from lifecycle.oci.files import create_temp, naming
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar

__all__ = ["Fill", "FindLayer", "LayerWriter", "SecretInLayer", "TarredLayer", "WrittenLayer", "dir_fill"]

Fill = Callable[[LayerTar], None]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TarredLayer:
    """A layer's uncompressed tar on disk and its diffID."""

    identifier: str
    diff_id: str
    path: Path
    size: int


FindLayer = Callable[[TarredLayer], Layer | None]
"""Where a blob with a tar's diffID may already exist: returns its handle, or None."""


class SecretInLayer(PybuildError):
    """A layer's tar holds the value of a build secret: the build fails before anything is written."""

    exit_code = ExitCode.EXPORT


@dataclass(frozen=True)
class WrittenLayer:
    layer: Layer
    reused: bool  # an existing blob: nothing was compressed


class _TarSink:
    """A write-only file object: buffers tar bytes into whole chunks, hashes and writes them."""

    def __init__(self, directory: Path, scanner: LeakScanner) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.scanner = scanner
        fd, self.path = create_temp(directory, ".tar-")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._hash = hashlib.sha256()
        self._pending = bytearray()
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._pending += data
        if len(self._pending) >= _CHUNK:
            self._drain()
        return len(data)

    def tell(self) -> int:
        return self._size + len(self._pending)

    def flush(self) -> None:
        """Kept cheap: tarfile calls it; the data goes out in whole chunks."""

    def _drain(self) -> None:
        if self.scanner.feed(self._pending):
            self._pending.clear()
            return  # the layer fails when it is closed; nothing more is worth writing
        self._hash.update(self._pending)
        with naming(self.path):
            self._file.write(self._pending)
        self._size += len(self._pending)
        self._pending.clear()

    def close(self) -> tuple[str, int]:
        self._drain()
        self._file.close()
        return "sha256:" + self._hash.hexdigest(), self._size

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class LayerWriter:
    """Tars and (when needed) compresses layers into ``scratch``; safe to share between threads."""

    def __init__(
        self,
        scratch: Path,
        *,
        mtime: int = DEFAULT_MTIME,
        find: Sequence[FindLayer] = (),
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self.scratch = scratch
        self.mtime = mtime
        self.find = tuple(find)
        self.secrets = secrets
        self.compressed: list[Layer] = []
        self._lock = threading.Lock()
        self._tars: dict[str, TarredLayer] = {}
        self._written: dict[str, WrittenLayer] = {}

    def tar(self, identifier: str, fill: Fill, uid: int = 0, gid: int = 0) -> TarredLayer:
        """The layer's tar, written on the first call for ``identifier`` only."""
        with self._lock:
            known = self._tars.get(identifier)
        if known is not None:
            return known
        sink = _TarSink(self.scratch / "tars", self.secrets.scanner())
        try:
            tar = LayerTar(sink, mtime=self.mtime, uid=uid, gid=gid)  # type: ignore[arg-type]
            fill(tar)
            tar.close()
        except BaseException:
            sink.abort()
            raise
        diff_id, size = sink.close()
        if sink.scanner.found is not None:
            sink.path.unlink(missing_ok=True)
            raise SecretInLayer(
                f"export layer '{self.secrets.mask(identifier)}'",
                f"it holds the value of secret '{sink.scanner.found}' (a buildpack copied it from "
                "/platform/secrets; read secrets there, never keep them in a layer or the app dir)",
            )
        tarred = TarredLayer(identifier, diff_id, sink.path, size)
        with self._lock:
            return self._tars.setdefault(identifier, tarred)

    def tars(self) -> list[TarredLayer]:
        """Every tar written so far (a launch cache links them in)."""
        with self._lock:
            return list(self._tars.values())

    def layer(self, tarred: TarredLayer) -> WrittenLayer:
        """A handle for the tar: a known blob with its diffID, else a freshly compressed one."""
        with self._lock:
            known = self._written.get(tarred.identifier)
        if known is not None:
            return known
        written = self._reuse(tarred) or self._compress(tarred)
        with self._lock:
            return self._written.setdefault(tarred.identifier, written)

    def write(self, identifier: str, fill: Fill, uid: int = 0, gid: int = 0) -> WrittenLayer:
        return self.layer(self.tar(identifier, fill, uid, gid))

    def _reuse(self, tarred: TarredLayer) -> WrittenLayer | None:
        for find in self.find:
            layer = find(tarred)
            if layer is not None and layer.diff_id == tarred.diff_id:
                return WrittenLayer(layer, reused=True)
        return None

    def _compress(self, tarred: TarredLayer) -> WrittenLayer:
        layer = blob_layer(compress_file(tarred.path, self.scratch))
        with self._lock:
            self.compressed.append(layer)
        return WrittenLayer(layer, reused=False)


def dir_fill(source: Path, dest: str, uid: int, gid: int) -> Fill:
    """Fill a layer with the tree at ``source`` as ``dest``, parents owned by ``uid:gid`` (EXP-5)."""

    def fill(tar: LayerTar) -> None:
        parts = PurePosixPath(dest).parts[1:]
        for n in range(1, len(parts)):
            tar.add_dir("/" + "/".join(parts[:n]), 0o755, uid=uid, gid=gid)
        tar.add_tree(source, dest)

    return fill
