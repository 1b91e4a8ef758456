"""One-pass layer compression: the sink's digests and sizes equal a plain recompute."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest

from lifecycle.oci.compress import LayerSink, blob_layer, compress_file, write_layer
from lifecycle.oci.media import OCI_LAYER_GZIP
from lifecycle.oci.models import ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import LayerTar
from lifecycle.oci.validate import validate


def sample_tar(size: int = 3 * 1024 * 1024, seed: int = 7) -> bytes:
    """A tar of semi-compressible content bigger than the sink's internal chunk."""
    rng = random.Random(seed)
    words = [rng.randbytes(8).hex().encode() for _ in range(500)]
    text = b" ".join(rng.choice(words) for _ in range(size // 17))
    buffer = io.BytesIO()
    tar = LayerTar(buffer)
    tar.add_file("/data/text", text)
    tar.add_file("/data/noise", rng.randbytes(size // 4))
    tar.close()
    return buffer.getvalue()


def sink_of(directory: Path, data: bytes, piece: int, level: int = 1) -> tuple[bytes, object]:
    with LayerSink(directory, level) as sink:
        for start in range(0, len(data), piece):
            sink.write(data[start : start + piece])
    blob = sink.close()
    return blob.path.read_bytes(), blob


def test_sink_digests_and_sizes_equal_a_hashlib_and_gzip_recompute(tmp_path: Path) -> None:
    tar = sample_tar()
    with LayerSink(tmp_path) as sink:
        sink.write(tar)
    blob = sink.close()
    written = blob.path.read_bytes()
    assert blob.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert blob.uncompressed_size == len(tar)
    assert blob.digest == "sha256:" + hashlib.sha256(written).hexdigest()
    assert blob.size == len(written) == blob.path.stat().st_size
    assert gzip.decompress(written) == tar


def test_sink_output_is_a_single_gzip_member_without_timestamp(tmp_path: Path) -> None:
    written, _ = sink_of(tmp_path, sample_tar(200_000), piece=65536)
    assert written[:4] == b"\x1f\x8b\x08\x00"
    assert written[4:8] == b"\0\0\0\0"  # MTIME zero: reproducible
    with gzip.GzipFile(fileobj=io.BytesIO(written)) as member:
        member.read()
        assert member.mtime == 0


@pytest.mark.parametrize("piece", [1, 511, 4096, 1 << 20, (1 << 20) + 1, 8 << 20])
def test_sink_result_does_not_depend_on_how_writes_are_split(tmp_path: Path, piece: int) -> None:
    tar = sample_tar(2 * 1024 * 1024) if piece > 1 else sample_tar(20_000)
    written, _ = sink_of(tmp_path / "one", tar, piece=len(tar))
    split, _ = sink_of(tmp_path / "split", tar, piece=piece)
    assert split == written


def test_sink_output_is_reproducible(tmp_path: Path) -> None:
    tar = sample_tar()
    assert sink_of(tmp_path / "a", tar, 1 << 16)[0] == sink_of(tmp_path / "b", tar, 1 << 16)[0]


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_every_isal_level_gives_gzip_that_decompresses_to_the_tar(tmp_path: Path, level: int) -> None:
    tar = sample_tar(500_000)
    written, _ = sink_of(tmp_path, tar, 1 << 16, level=level)
    assert gzip.decompress(written) == tar


def test_higher_level_compresses_better_on_text(tmp_path: Path) -> None:
    tar = sample_tar()
    fast, _ = sink_of(tmp_path / "0", tar, 1 << 20, level=0)
    best, _ = sink_of(tmp_path / "3", tar, 1 << 20, level=3)
    assert len(best) < len(fast) < len(tar)


def test_tell_counts_uncompressed_bytes_accepted(tmp_path: Path) -> None:
    with LayerSink(tmp_path) as sink:
        assert sink.tell() == 0
        sink.write(b"x" * 1000)
        sink.write(b"y" * (2 << 20))
        assert sink.tell() == 1000 + (2 << 20)


def test_sink_writes_a_hidden_temp_file_in_the_given_directory(tmp_path: Path) -> None:
    with LayerSink(tmp_path / "scratch") as sink:
        sink.write(b"abc")
    blob = sink.close()
    assert blob.path.parent == tmp_path / "scratch"
    assert blob.path.name.startswith(".layer-")


def test_sink_blob_is_readable_by_others_like_any_layout_blob(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with LayerSink(tmp_path) as sink:
            sink.write(b"abc")
    finally:
        os.umask(old)
    assert stat.S_IMODE(sink.close().path.stat().st_mode) == 0o644


def test_an_error_inside_the_sink_removes_its_temp_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), LayerSink(tmp_path) as sink:
        sink.write(b"partial")
        raise RuntimeError("tar failed")
    assert list(tmp_path.iterdir()) == []


def test_close_twice_returns_the_same_blob(tmp_path: Path) -> None:
    sink = LayerSink(tmp_path)
    sink.write(b"abc")
    assert sink.close() is sink.close()


def test_compress_file_matches_the_tar_on_disk(tmp_path: Path) -> None:
    tar = sample_tar()
    source = tmp_path / "rootfs.tar"
    source.write_bytes(tar)
    blob = compress_file(source, tmp_path / "out")
    assert blob.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert gzip.decompress(blob.path.read_bytes()) == tar


def test_blob_layer_is_a_gzip_layer_backed_by_the_blob_file(tmp_path: Path) -> None:
    blob = compress_file(_write(tmp_path / "x.tar", sample_tar(10_000)), tmp_path)
    layer = blob_layer(blob)
    assert (layer.media_type, layer.digest, layer.size, layer.diff_id) == (
        OCI_LAYER_GZIP,
        blob.digest,
        blob.size,
        blob.diff_id,
    )
    assert layer.local_path() == blob.path


def test_write_layer_gives_a_valid_layer_of_what_fill_added(tmp_path: Path) -> None:
    layer = write_layer(tmp_path, lambda tar: tar.add_file("/hello.txt", b"hello"), uid=1000, gid=1000)
    with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        (member,) = list(tar)
        assert (member.name, member.uid, member.gid, member.size) == ("/hello.txt", 1000, 1000, 5)
    validate(new_image(ImageConfig(), [layer]))


def test_write_layer_is_reproducible(tmp_path: Path) -> None:
    def fill(tar: LayerTar) -> None:
        tar.add_parents("/a/b")
        tar.add_file("/a/b", b"content")

    first = write_layer(tmp_path / "1", fill)
    second = write_layer(tmp_path / "2", fill)
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)


def test_an_error_in_fill_leaves_no_temp_file(tmp_path: Path) -> None:
    def fill(tar: LayerTar) -> None:
        tar.add_file("/a", b"a")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_layer(tmp_path, fill)
    assert list(tmp_path.iterdir()) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
