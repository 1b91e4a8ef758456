"""OCI image-layout directories: read, write, tag, delete, collect garbage.

Writes are atomic: a blob appears under its digest only when complete, and
``index.json`` is replaced in one rename after every blob it names exists, so
a killed write leaves the previous tags intact (DESIGN.md "atomic writes").
Tags are ``org.opencontainers.image.ref.name`` annotations, as skopeo and
umoci read them (``oci:DIR:NAME``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from lifecycle.backends.base import REF_NAME, BlobStats, CountingReader
from lifecycle.errors import BlobNotFound, DigestMismatch, ImageError, ImageNotFound, StoreCorrupt
from lifecycle.oci.digest import check_digest, hex_part, is_digest, sha256_digest
from lifecycle.oci.files import create_temp
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
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

__all__ = ["Layout"]

_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
_STALE_TMP_SECONDS = 24 * 3600
_CHUNK = 1 << 20
_DOCUMENT = "blob (a manifest or an index)"
_MAX_INDEX_DEPTH = 8  # an index of indexes is legal; a chain deep enough to exhaust the stack is not


class Layout:
    """One OCI image-layout directory."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root
        self.stats = BlobStats()
        if create:
            self._init()
        elif not (root / "oci-layout").is_file():
            raise ImageNotFound("open image layout", f"{root} is not an OCI layout (no oci-layout file)")

    def _init(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self.scratch.mkdir(exist_ok=True)
        if not (self.root / "oci-layout").exists():
            _atomic_write(self.root / "oci-layout", _LAYOUT_FILE)
        if not (self.root / "index.json").exists():
            _atomic_write(self.root / "index.json", Index(schema_version=2, media_type=OCI_INDEX).to_bytes())

    @property
    def scratch(self) -> Path:
        """Where half-written blobs live; same filesystem, so finishing one is a rename."""
        return self.root / ".tmp"

    # -- blobs ---------------------------------------------------------------
    def _blob_file(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / hex_part(digest)

    def blob_path(self, digest: str) -> Path | None:
        path = self._blob_file(digest)
        return path if path.is_file() else None

    def has_blob(self, digest: str) -> bool:
        return self._blob_file(digest).is_file()

    def open_blob(self, digest: str) -> BinaryIO:
        path = self._blob_file(digest)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound("read blob", f"{path} is missing (re-pull or rebuild the image)") from None
        self.stats.layer_opens += 1
        self.stats.opened.append(digest)
        return CountingReader(stream, self.stats)  # type: ignore[return-value]

    def read_blob(self, digest: str, what: str, limit: int | None = None) -> bytes:
        """A small blob (manifest, config) in memory, checked against its digest; ``limit`` caps its size."""
        path = self._blob_file(digest)
        try:
            if limit is not None and path.stat().st_size > limit:
                raise ImageError(f"read {what}", f"{path} is more than the {limit} bytes allowed")
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"read {what}", f"{path} is missing (re-pull or rebuild the image)") from None
        check_digest(data, digest, f"{what} ({path})")
        return data

    def write_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has_blob(digest):
            self.scratch.mkdir(exist_ok=True)
            _atomic_write(self._blob_file(digest), data, self.scratch)
        return digest

    def put_layer(self, layer: Layer) -> None:
        """Store a layer blob: nothing if present, a hard link if local, else a verified copy.

        A blob of another layout (``oci:DIR``, which anyone may have written) is hashed before
        it is linked: a file there named by a digest it does not match would otherwise become
        this store's copy of that digest for every later image. Fresh layers are hashed as
        they are written.
        """
        dest = self._blob_file(layer.digest)
        if dest.is_file():
            return
        self.scratch.mkdir(exist_ok=True)
        local = layer.local_path()
        if local is not None and isinstance(layer.source, Layout):
            _check_file(local, layer.digest)
        if local is not None and _link_into(local, dest, self.scratch):
            return
        with layer.compressed() as src:
            _copy_verified(src, dest, layer.digest, self.scratch)

    # -- index ---------------------------------------------------------------
    def read_index(self) -> Index:
        path = self.root / "index.json"
        try:
            raw = path.read_bytes()
            json.loads(raw)
        except FileNotFoundError:
            raise StoreCorrupt("read image layout", f"{path} is missing (not an OCI layout)") from None
        except (ValueError, RecursionError) as exc:
            raise StoreCorrupt(
                "read image layout", f"{path} is not valid JSON ({exc}); restore it or remove the layout"
            ) from None
        try:
            return parse_model(Index, raw, str(path))
        except ImageError as exc:
            raise StoreCorrupt(
                "read image layout",
                f"{path} is not an image index ({exc.cause}); restore it or remove the layout",
            ) from exc

    def _write_index(self, index: Index) -> None:
        _atomic_write(self.root / "index.json", index.to_bytes(), self.scratch)

    @contextlib.contextmanager
    def _locked(self, name: str, mode: int) -> Iterator[None]:
        with (self.root / name).open("a") as fh:
            fcntl.flock(fh, mode)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _find(self, ref: str) -> Descriptor | None:
        for desc in self.read_index().manifests:
            if (desc.annotations or {}).get(REF_NAME) == ref or desc.digest == ref:
                return desc
        return None

    def resolve(self, ref: str) -> str | None:
        desc = self._find(ref)
        return desc.digest if desc else None

    def tags(self) -> list[str]:
        names = ((d.annotations or {}).get(REF_NAME) for d in self.read_index().manifests)
        return sorted(n for n in names if n)

    # -- images --------------------------------------------------------------
    def image(self, ref: str) -> Image:
        desc = self._find(ref)
        if desc is None and is_digest(ref) and self.has_blob(ref):
            desc = Descriptor(media_type="", digest=ref, size=0)
        if desc is None:
            raise ImageNotFound(f"find image {ref}", f"no such image in {self.root}")
        return self._image_at(desc, ref)

    def _image_at(self, desc: Descriptor, ref: str, depth: int = 0) -> Image:
        raw = self.read_blob(desc.digest, f"manifest of {ref}", MAX_MANIFEST_BYTES)
        document = json_object(raw, f"read {ref}", what=_DOCUMENT, limit=MAX_MANIFEST_BYTES)
        if is_index(desc.media_type) or is_index(str(document.get("mediaType", ""))):
            if depth >= _MAX_INDEX_DEPTH:
                raise ImageError(f"read {ref}", f"indexes nest more than {_MAX_INDEX_DEPTH} deep")
            chosen = _pick_platform(parse_model(Index, raw, f"index of {ref}"), ref)
            return self._image_at(chosen, ref, depth + 1)
        manifest = parse_model(Manifest, raw, f"manifest of {ref}")
        raw_config = self.read_blob(manifest.config.digest, f"config of {ref}", MAX_CONFIG_BYTES)
        return Image.from_raw(raw, raw_config, self, ref)

    def write(self, image: Image, tags: Sequence[str]) -> str:
        """Every blob first, then the manifest, then ``index.json`` in one rename."""
        self._write(image, tags, None)
        return image.digest

    def write_if(self, image: Image, tag: str, expected: str | None) -> bool:
        """Compare and swap: move ``tag`` to ``image`` only if it still names ``expected``."""
        return self._write(image, [tag], (tag, expected))

    def _write(self, image: Image, tags: Sequence[str], expect: tuple[str, str | None] | None) -> bool:
        with self._locked(".gc.lock", fcntl.LOCK_SH):
            for layer in image.layers:
                self.put_layer(layer)
            self.write_blob(image.raw_config)
            self.write_blob(image.raw_manifest)
            with self._locked(".lock", fcntl.LOCK_EX):
                if expect is not None and self.resolve(expect[0]) != expect[1]:
                    return False
                self._point_tags(image, tags)
        return True

    def _point_tags(self, image: Image, tags: Sequence[str]) -> None:
        index = self.read_index()
        kept = [d for d in index.manifests if (d.annotations or {}).get(REF_NAME) not in set(tags)]
        added = [image.descriptor({REF_NAME: tag}) for tag in tags]
        self._write_index(index.model_copy(update={"manifests": kept + added}))

    def delete(self, ref: str) -> None:
        with self._locked(".lock", fcntl.LOCK_EX):
            index = self.read_index()
            kept = [d for d in index.manifests if (d.annotations or {}).get(REF_NAME) != ref]
            if len(kept) == len(index.manifests):
                raise ImageNotFound(f"delete {ref}", f"no such image in {self.root}")
            self._write_index(index.model_copy(update={"manifests": kept}))

    def gc(self) -> int:
        """Delete blobs no tag reaches, and stale half-written files; returns bytes freed."""
        with self._locked(".gc.lock", fcntl.LOCK_EX), self._locked(".lock", fcntl.LOCK_EX):
            live = self._reachable()
            freed = 0
            for path in (self.root / "blobs" / "sha256").iterdir():
                if "sha256:" + path.name not in live:
                    freed += path.stat().st_size
                    path.unlink()
            return freed + _sweep_stale(self.scratch)

    def _reachable(self) -> set[str]:
        live: set[str] = set()
        pending = [d.digest for d in self.read_index().manifests]
        while pending:
            digest = pending.pop()
            if digest in live or not self.has_blob(digest):
                continue
            live.add(digest)
            raw = self._blob_file(digest).read_bytes()
            document = json_object(raw, f"read {digest}", what=_DOCUMENT, limit=MAX_MANIFEST_BYTES)
            if "config" in document:
                manifest = parse_model(Manifest, raw, f"manifest {digest}")
                live.add(manifest.config.digest)
                live.update(layer.digest for layer in manifest.layers)
            pending.extend(d.digest for d in parse_model(Index, raw, f"index {digest}").manifests)
        return live


def _pick_platform(index: Index, ref: str) -> Descriptor:
    for desc in index.manifests:
        platform = desc.platform
        if platform and platform.os == "linux" and platform.architecture == "amd64":
            return desc
    if not index.manifests:
        raise ImageNotFound(f"find image {ref}", "the image index lists no manifests")
    return index.manifests[0]


def _atomic_write(dest: Path, data: bytes, scratch: Path | None = None) -> None:
    fd, tmp = create_temp(scratch or dest.parent, ".write-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_into(src: Path, dest: Path, scratch: Path) -> bool:
    # A fresh name per call: threads writing the same layer must not share a temp link.
    fd, tmp = create_temp(scratch, ".link-")
    os.close(fd)
    tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        return False
    os.replace(tmp, dest)
    # rename(2) does nothing when both names are links to one file (another thread won): drop ours.
    tmp.unlink(missing_ok=True)
    return True


def _check_file(path: Path, digest: str) -> None:
    hasher = hashlib.sha256()
    with path.open("rb") as blob:
        while chunk := blob.read(_CHUNK):
            hasher.update(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        raise DigestMismatch("copy blob", f"{path} hashes to sha256:{hasher.hexdigest()}, not {digest}")


def _copy_verified(src: BinaryIO, dest: Path, digest: str, scratch: Path) -> None:
    fd, tmp = create_temp(scratch, ".blob-")
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if "sha256:" + hasher.hexdigest() != digest:
            raise DigestMismatch("copy blob", f"content of {digest} hashed to sha256:{hasher.hexdigest()}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sweep_stale(scratch: Path) -> int:
    freed = 0
    if scratch.is_dir():
        cutoff = time.time() - _STALE_TMP_SECONDS
        for path in scratch.iterdir():
            st = path.stat()
            if st.st_mtime < cutoff:
                freed += st.st_size
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return freed
