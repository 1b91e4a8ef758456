"""``.cnb`` files: a buildpackage as an OCI image layout in an uncompressed tar (Distribution spec).

Written reproducibly: entries sorted by name (``blobs/``, ``blobs/sha256/``, every blob,
``index.json``, ``oci-layout``), mtime 1980-01-01T00:00:01Z, owner 0:0 with empty names, modes
0755/0644, and an ``index.json`` naming the one manifest, so the same image gives the same bytes.
The file appears under its name in one rename. ``skopeo inspect oci-archive:FILE.cnb`` reads it.

Read lazily: the tar is indexed once and a blob is a window into the file, so nothing is
extracted until a layer is read. Member names may be relative or absolute (pack writes ``/blobs``),
and ``index.json`` may name an image or an index of them (linux/amd64, else the first, is taken).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from lifecycle.errors import BlobNotFound, ImageError
from lifecycle.oci.digest import check_digest, hex_part
from lifecycle.oci.files import create_temp
from lifecycle.oci.image import Image
from lifecycle.oci.media import OCI_INDEX, is_index
from lifecycle.oci.models import (
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Index,
    Manifest,
    json_object,
    parse_model,
)
from lifecycle.oci.tarball import DEFAULT_MTIME

__all__ = ["CnbArchive", "open_cnb", "write_cnb"]

_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
_MAX_INDEX_DEPTH = 8


def write_cnb(image: Image, path: Path) -> None:
    """Write ``image`` as a ``.cnb`` file at ``path`` (replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(path.parent, f".{path.name}-")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _write_entries(tar, image)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_entries(tar: tarfile.TarFile, image: Image) -> None:
    small = {image.digest: image.raw_manifest, image.config_descriptor.digest: image.raw_config}
    layers = {layer.digest: layer for layer in image.layers}
    _add_dir(tar, "blobs")
    _add_dir(tar, "blobs/sha256")
    for digest in sorted(small.keys() | layers.keys()):
        name = f"blobs/sha256/{hex_part(digest)}"
        if digest in small:
            _add_file(tar, name, small[digest])
            continue
        with layers[digest].compressed() as stream:
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, layers[digest].size), stream)
    index = Index(schema_version=2, media_type=OCI_INDEX, manifests=[image.descriptor()])
    _add_file(tar, "index.json", index.to_bytes())
    _add_file(tar, "oci-layout", _LAYOUT_FILE)


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = DEFAULT_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, tarfile.DIRTYPE, 0o755))


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


class _Window(io.RawIOBase):
    """``size`` bytes of a file from ``offset``: one blob inside the tar."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = self._file.readinto(view)
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class CnbArchive:
    """The blobs of a ``.cnb`` file, by digest (a ``BlobSource``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._members = _index_members(path)

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self._members.get(name)
        if member is None:
            raise BlobNotFound(f"read {self.path}", f"{name} is missing from the archive (not a .cnb file?)")
        return member

    def read(self, name: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small member (index.json, a manifest, a config) as bytes; larger than ``limit`` is refused."""
        member = self._member(name)
        if member.size > limit:
            raise ImageError(
                f"read {self.path}", f"{name} is {member.size} bytes, more than the {limit} bytes allowed"
            )
        with self._open(member) as stream:
            return stream.read()

    def _open(self, member: tarfile.TarInfo) -> BinaryIO:
        return io.BufferedReader(_Window(self.path, member.offset_data, member.size))

    def open_blob(self, digest: str) -> BinaryIO:
        return self._open(self._member(f"blobs/sha256/{hex_part(digest)}"))

    def image(self) -> Image:
        """The image ``index.json`` names (through a nested index, linux/amd64 first)."""
        index = parse_model(Index, self.read("index.json"), f"index.json of {self.path}")
        desc = _pick(index, str(self.path))
        raw = self._blob(desc)
        depth = 0
        while is_index(desc.media_type) or self._is_index_document(raw):
            depth += 1
            if depth > _MAX_INDEX_DEPTH:
                raise ImageError(f"read {self.path}", f"its indexes nest more than {_MAX_INDEX_DEPTH} deep")
            desc = _pick(parse_model(Index, raw, f"index in {self.path}"), str(self.path))
            raw = self._blob(desc)
        manifest = parse_model(Manifest, raw, f"manifest in {self.path}")
        return Image.from_raw(raw, self._blob(manifest.config, MAX_CONFIG_BYTES), self, str(self.path))

    def _is_index_document(self, raw: bytes) -> bool:
        """An index without a mediaType is told from a manifest by its ``manifests`` key."""
        document = json_object(
            raw, f"read {self.path}", what="image manifest or index", limit=MAX_MANIFEST_BYTES
        )
        return "manifests" in document and "config" not in document

    def _blob(self, desc: Descriptor, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        data = self.read(f"blobs/sha256/{hex_part(desc.digest)}", limit)
        check_digest(data, desc.digest, f"blob {desc.digest} of {self.path}")
        return data


def open_cnb(path: Path) -> Image:
    """The buildpackage image in the ``.cnb`` file at ``path``; layers are read from the file on demand."""
    return CnbArchive(path).image()


def _index_members(path: Path) -> dict[str, tarfile.TarInfo]:
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = tar.getmembers()
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"read {path}", f"not a .cnb file (an uncompressed tar): {exc}") from None
    return {os.path.normpath(m.name.lstrip("/")): m for m in members if m.isreg()}


def _pick(index: Index, what: str) -> Descriptor:
    for desc in index.manifests:
        if desc.platform and (desc.platform.os, desc.platform.architecture) == ("linux", "amd64"):
            return desc
    if not index.manifests:
        raise ImageError(f"read {what}", "its index.json lists no image")
    return index.manifests[0]
