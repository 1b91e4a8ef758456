"""The compressed-blob index: an unchanged layer is never compressed twice on this machine.

``$PYBUILD_HOME/cache/blobs/<hex of diffID>.json`` holds the descriptor (media type, digest,
size) of the gzip blob this machine made for that tar. Before compressing a layer the
exporter asks ``finder``: when the index knows the tar's diffID and a store at hand still has
the blob, with the right size and the tar's length in its gzip trailer, that blob is used as
it is, so nothing is compressed or copied (DESIGN.md "fast layers"). Failing that, a target that
can say whether it already holds a blob (the ``HoldsBlobs`` capability: a registry's HEAD) is
asked: a layer published before, whose blob is on no store here, is then neither compressed nor
uploaded again. Entries are recorded only after the image that holds the blob is stored; an
unreadable entry is ignored.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from pydantic import ValidationError

from lifecycle.backends.base import HoldsBlobs
from lifecycle.errors import ImageError
from lifecycle.oci.digest import hex_part, is_digest
from lifecycle.oci.files import create_temp
from lifecycle.oci.layer import Layer
from lifecycle.oci.media import is_gzip_layer
from lifecycle.oci.models import Descriptor
from lifecycle.phases.export_layers import FindLayer, TarredLayer

__all__ = ["BlobIndex", "BlobStore"]


@runtime_checkable
class BlobStore(Protocol):
    """What the index needs of a store: blobs by digest on this machine (an OCI layout)."""

    root: Path

    def has_blob(self, digest: str) -> bool: ...

    def blob_path(self, digest: str) -> Path | None: ...

    def open_blob(self, digest: str) -> BinaryIO: ...


class BlobIndex:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _entry(self, diff_id: str) -> Path:
        return self.root / f"{hex_part(diff_id)}.json"

    def lookup(self, diff_id: str) -> Descriptor | None:
        """The blob recorded for ``diff_id``, if any (a damaged entry counts as none)."""
        if not is_digest(diff_id):
            return None
        try:
            descriptor = Descriptor.model_validate_json(self._entry(diff_id).read_bytes())
        except (OSError, ValidationError):
            return None
        return descriptor if is_digest(descriptor.digest) and is_gzip_layer(descriptor.media_type) else None

    def record(self, layers: Iterable[Layer]) -> None:
        """Remember the blobs of ``layers`` (call once they are stored)."""
        for layer in layers:
            if not is_gzip_layer(layer.media_type) or self.lookup(layer.diff_id) == layer.descriptor:
                continue
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                _atomic_write(self._entry(layer.diff_id), layer.descriptor.to_bytes(), self.root)
            except OSError:
                continue  # the index only saves work; a failed entry costs a compression later

    def finder(
        self, stores: Sequence[BlobStore], targets: Sequence[tuple[HoldsBlobs, str]] = ()
    ) -> FindLayer:
        """Look a tar up: a handle on a blob one of ``stores`` holds for its diffID, else on one that
        a ``(store, ref)`` of ``targets`` already holds (asked only when no local store has it)."""

        def find(tarred: TarredLayer) -> Layer | None:
            descriptor = self.lookup(tarred.diff_id)
            if descriptor is None:
                return None
            for store in stores:
                if _holds(store, descriptor, tarred.size):
                    return Layer(descriptor, tarred.diff_id, store)
            for target, ref in targets:
                try:
                    source = target.known_blob(ref, descriptor.digest, descriptor.size)
                except ImageError:
                    source = None  # the index only saves work: a failed look-up costs a compression
                if source is not None:
                    return Layer(descriptor, tarred.diff_id, source)
            return None

        return find

    def prune(self, has_blob: Callable[[str], bool]) -> int:
        """Drop entries whose blob ``has_blob`` no longer finds, and damaged ones; how many."""
        dropped = 0
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            descriptor = self.lookup("sha256:" + path.stem) if len(path.stem) == 64 else None
            if descriptor is None or not has_blob(descriptor.digest):
                path.unlink(missing_ok=True)
                dropped += 1
        return dropped


def _holds(store: BlobStore, descriptor: Descriptor, tar_size: int) -> bool:
    """The blob is there, of the recorded size, and its gzip trailer gives the tar's length."""
    if not store.has_blob(descriptor.digest):
        return False
    path = store.blob_path(descriptor.digest)
    if path is None:
        return True
    try:
        with path.open("rb") as blob:
            size = os.fstat(blob.fileno()).st_size
            blob.seek(-4, os.SEEK_END)
            (isize,) = struct.unpack("<I", blob.read(4))
    except (OSError, struct.error):
        return False
    return size == descriptor.size and isize == tar_size & 0xFFFFFFFF


def _atomic_write(dest: Path, data: bytes, scratch: Path) -> None:
    fd, tmp = create_temp(scratch, ".entry-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
