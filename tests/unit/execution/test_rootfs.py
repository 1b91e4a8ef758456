"""Rootfs extraction: layers in order, whiteouts, refusal of escaping entries."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from lifecycle.errors import ImageError
from lifecycle.execution.rootfs import MOUNT_POINTS, chain_id, extract_rootfs, rootfs_cache
from lifecycle.oci import ImageConfig, LayerTar, write_layer
from lifecycle.oci.compress import LayerSink, blob_layer
from lifecycle.oci.mutate import new_image


def _image(tmp_path: Path, *fills):  # type: ignore[no-untyped-def]
    layers = [write_layer(tmp_path / "blobs", fill) for fill in fills]
    return new_image(ImageConfig(), layers)


def test_upper_layer_whiteout_removes_lower_file(tmp_path: Path) -> None:
    def lower(tar: LayerTar) -> None:
        tar.add_dir("etc")
        tar.add_file("etc/keep", b"k")
        tar.add_file("etc/gone", b"g")
        tar.add_dir("opt/old")
        tar.add_file("opt/old/file", b"x")

    def upper(tar: LayerTar) -> None:
        tar.add_whiteout("etc/gone")
        tar.add_dir("opt/old")
        tar.add_file("opt/old/.wh..wh..opq", b"")
        tar.add_file("opt/old/new", b"n")

    dest = tmp_path / "root"
    extract_rootfs(_image(tmp_path, lower, upper), dest)
    assert (dest / "etc/keep").read_bytes() == b"k"
    assert not (dest / "etc/gone").exists()
    assert sorted(p.name for p in (dest / "opt/old").iterdir()) == ["new"]
    for mount_point in MOUNT_POINTS:
        assert (dest / mount_point).is_dir()


def test_upper_file_replaces_lower_symlink(tmp_path: Path) -> None:
    def lower(tar: LayerTar) -> None:
        tar.add_symlink("bin/tool", "/elsewhere")

    def upper(tar: LayerTar) -> None:
        tar.add_file("bin/tool", b"real", 0o755)

    dest = tmp_path / "root"
    extract_rootfs(_image(tmp_path, lower, upper), dest)
    assert (dest / "bin/tool").read_bytes() == b"real"
    assert not (dest / "bin/tool").is_symlink()


def test_entry_escaping_the_root_is_refused(tmp_path: Path) -> None:
    with LayerSink(tmp_path / "blobs") as sink, tarfile.TarFile(fileobj=sink, mode="w") as tar:  # type: ignore[arg-type]
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    image = new_image(ImageConfig(), [blob_layer(sink.close())])
    with pytest.raises(ImageError, match="extract layer 0"):
        extract_rootfs(image, tmp_path / "root")
    assert not (tmp_path / "escaped").exists()


def test_rootfs_cache_extracts_once_per_digest(tmp_path: Path) -> None:
    image = _image(tmp_path, lambda tar: tar.add_file("hello", b"hi"))
    first = rootfs_cache(image, tmp_path / "cache")
    (first / "marker").write_text("kept")
    second = rootfs_cache(image, tmp_path / "cache")
    assert first == second
    assert (second / "marker").read_text() == "kept"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]


def test_apps_on_one_base_share_its_extraction_without_changing_it(tmp_path: Path) -> None:
    def base(tar: LayerTar) -> None:
        tar.add_file("etc/release", b"v1")
        tar.add_file("etc/shared", b"same")

    def app_one(tar: LayerTar) -> None:
        tar.add_file("etc/release", b"changed by app")
        tar.add_whiteout("etc/shared")

    def app_two(tar: LayerTar) -> None:
        tar.add_file("workspace/app", b"two")

    base_layer = write_layer(tmp_path / "blobs", base)
    one = new_image(ImageConfig(), [base_layer, write_layer(tmp_path / "blobs", app_one)])
    two = new_image(ImageConfig(), [base_layer, write_layer(tmp_path / "blobs", app_two)])
    cache = tmp_path / "cache"
    root_one = rootfs_cache(one, cache, base_layers=1)
    root_two = rootfs_cache(two, cache, base_layers=1)
    root_base = cache / chain_id(one.layers[:1])
    assert (root_base / "etc/release").read_bytes() == b"v1"
    assert (root_base / "etc/shared").is_file()
    assert (root_one / "etc/release").read_bytes() == b"changed by app"
    assert not (root_one / "etc/shared").exists()
    assert (root_two / "etc/shared").stat().st_ino == (root_base / "etc/shared").stat().st_ino
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 3
