"""Lazy layer handles: bytes move only when read, and every stream opened is closed."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest
from support.images import random_layer

from lifecycle.errors import BlobNotFound
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.layer import FileBlobs, Layer, LocalBlobs, MemoryBlobs
from lifecycle.oci.media import OCI_LAYER, OCI_LAYER_GZIP
from lifecycle.oci.models import Descriptor


class RecordingFiles:
    """A blob source over real files that remembers each stream it handed out."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self.streams: list[BinaryIO] = []

    def open_blob(self, digest: str) -> BinaryIO:
        stream = self.paths[digest].open("rb")
        self.streams.append(stream)
        return stream


def tar_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def file_layer(directory: Path, raw: bytes, media_type: str = OCI_LAYER_GZIP) -> tuple[Layer, RecordingFiles]:
    blob = gzip.compress(raw, mtime=0) if media_type == OCI_LAYER_GZIP else raw
    path = directory / "blob"
    path.write_bytes(blob)
    source = RecordingFiles({sha256_digest(blob): path})
    descriptor = Descriptor(media_type=media_type, digest=sha256_digest(blob), size=len(blob))
    return Layer(descriptor, sha256_digest(raw), source), source


def test_uncompressed_gunzips_a_gzip_layer(tmp_path: Path) -> None:
    raw = tar_of("a", b"hello")
    layer, _ = file_layer(tmp_path, raw)
    with layer.uncompressed() as stream:
        assert stream.read() == raw


def test_closing_the_uncompressed_stream_closes_the_blob_stream(tmp_path: Path) -> None:
    layer, source = file_layer(tmp_path, tar_of("a", b"hello"))
    with layer.uncompressed() as stream:
        stream.read()
    (blob_stream,) = source.streams
    assert blob_stream.closed


def test_uncompressed_of_a_plain_tar_layer_is_the_blob_itself(tmp_path: Path) -> None:
    raw = tar_of("a", b"plain")
    layer, source = file_layer(tmp_path, raw, OCI_LAYER)
    with layer.uncompressed() as stream:
        assert stream.read() == raw
    assert source.streams[0].closed


def test_making_a_handle_reads_nothing(tmp_path: Path) -> None:
    layer, source = file_layer(tmp_path, tar_of("a", b"x"))
    assert (layer.digest, layer.size, layer.media_type) == (
        layer.descriptor.digest,
        layer.descriptor.size,
        OCI_LAYER_GZIP,
    )
    assert source.streams == []


def test_file_blobs_offer_their_path_as_a_local_capability(tmp_path: Path) -> None:
    layer = random_layer(directory=tmp_path)
    assert isinstance(layer.source, LocalBlobs)
    path = layer.local_path()
    assert path is not None and path.parent == tmp_path
    assert sha256_digest(path.read_bytes()) == layer.digest


def test_memory_blobs_have_no_local_path() -> None:
    assert random_layer().local_path() is None


def test_layer_equality_ignores_where_the_bytes_come_from(tmp_path: Path) -> None:
    assert random_layer(seed=3) == random_layer(seed=3, directory=tmp_path)
    assert random_layer(seed=3) != random_layer(seed=4)


def test_file_blobs_refuse_an_unknown_digest() -> None:
    with pytest.raises(BlobNotFound, match=r"sha256:0+ is not known"):
        FileBlobs().open_blob("sha256:" + "0" * 64)


def test_memory_blobs_refuse_an_unknown_digest() -> None:
    with pytest.raises(BlobNotFound):
        MemoryBlobs().open_blob("sha256:" + "0" * 64)


def test_file_blobs_add_makes_a_blob_known(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"bytes")
    blobs = FileBlobs()
    blobs.add(sha256_digest(b"bytes"), tmp_path / "b")
    with blobs.open_blob(sha256_digest(b"bytes")) as stream:
        assert stream.read() == b"bytes"
