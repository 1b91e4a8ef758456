"""Caches: directory, image, blob index, and what a damaged cache does (RES-6, EXP-14)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.backends.layout import Layout
from lifecycle.backends.memory import MemoryStore
from lifecycle.cnb.labels import BuildpackLayersLabel, LayerLabel
from lifecycle.oci.compress import write_layer
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.tarball import LayerTar
from lifecycle.phases.cache import CACHE_METADATA_LABEL, CacheError, CacheLayer, CacheMetadata
from lifecycle.phases.cache_extract import extract_layer
from lifecycle.phases.export_layers import LayerWriter, TarredLayer, dir_fill
from lifecycle.platform.cache_blobs import BlobIndex
from lifecycle.platform.cache_dir import DirectoryCache, cache_name_for, list_caches
from lifecycle.platform.cache_image import ImageCache

from .fakes import write
from .test_restore import BP, Rebuilds

PREFIX = "/layers/a_bp/L"


def _tarred(tmp_path: Path, content: str = "x", name: str = "L") -> TarredLayer:
    write(tmp_path / "src" / name / "f", content)
    writer = LayerWriter(tmp_path / "scratch")
    return writer.tar(f"{BP}:{name}", dir_fill(tmp_path / "src" / name, f"/layers/a_bp/{name}", 1000, 1000))


def _metadata(*shas: str) -> CacheMetadata:
    layers = {f"L{n}": LayerLabel(sha=sha, cache=True) for n, sha in enumerate(shas)}
    return CacheMetadata(buildpacks=(BuildpackLayersLabel(key=BP, version="1.0", layers=layers),))


def _cache_layer(tarred: TarredLayer, tmp_path: Path) -> CacheLayer:
    return CacheLayer(
        tarred.diff_id, tarred.path, lambda: LayerWriter(tmp_path / "blobs").layer(tarred).layer
    )


def test_directory_cache_links_tars_in_and_keeps_only_what_the_metadata_names(tmp_path: Path) -> None:
    """RES-6 layout: committed/<diffID>.tar and the metadata file; a tar is linked, not copied."""
    cache = DirectoryCache(tmp_path / "caches", "myapp")
    one, two = _tarred(tmp_path / "a", "one"), _tarred(tmp_path / "b", "two")
    cache.save(_metadata(one.diff_id), [_cache_layer(one, tmp_path)])
    stored = cache.committed / f"{one.diff_id}.tar"
    assert stored.stat().st_ino == one.path.stat().st_ino
    assert (cache.committed / CACHE_METADATA_LABEL).is_file()
    cache.save(_metadata(two.diff_id), [_cache_layer(two, tmp_path)])
    assert not stored.exists() and cache.has(two.diff_id) and not cache.has(one.diff_id)
    assert cache.metadata() == _metadata(two.diff_id)
    with cache.open_layer(two.diff_id) as stream:
        extract_layer(stream, PREFIX, tmp_path / "out", two.diff_id)
    assert (tmp_path / "out" / "f").read_text() == "two"


def test_caches_are_named_by_image_without_tag_and_listed(tmp_path: Path) -> None:
    assert cache_name_for("myapp:v1") == cache_name_for("myapp:v2") == cache_name_for("myapp") == "myapp"
    assert cache_name_for("localhost:5000/team/app:1") == "localhost:5000/team/app"
    for name in ("myapp", "team/app", "x" * 300):
        DirectoryCache(tmp_path, name).save(CacheMetadata(), [])
    assert [c.cache_name for c in list_caches(tmp_path)] == ["myapp", "team/app", "x" * 300]
    assert all(len(c.root.name) <= 200 for c in list_caches(tmp_path))


def test_prune_and_clear(tmp_path: Path) -> None:
    cache = DirectoryCache(tmp_path / "caches", "app")
    kept, orphan = _tarred(tmp_path / "a", "kept"), _tarred(tmp_path / "b", "orphan")
    cache.save(_metadata(kept.diff_id), [_cache_layer(kept, tmp_path)])
    os.link(orphan.path, cache.committed / f"{orphan.diff_id}.tar")  # left by an interrupted save
    assert cache.prune() == orphan.size
    assert cache.has(kept.diff_id) and not cache.has(orphan.diff_id)
    cache.clear()
    assert cache.metadata() == CacheMetadata() and not cache.has(kept.diff_id)


@pytest.mark.parametrize("store_kind", ["memory", "layout"])
def test_cache_image_round_trip_and_unchanged_save_writes_nothing(tmp_path: Path, store_kind: str) -> None:
    """--cache-image through the ImageStore interface: layers by diffID, metadata in a label."""
    store = MemoryStore() if store_kind == "memory" else Layout(tmp_path / "oci", create=True)
    tarred = _tarred(tmp_path, "cached")
    cache = ImageCache(store, "cache:latest", "cache:latest", base=random_image(layers=1))
    assert cache.metadata() == CacheMetadata() and not cache.has(tarred.diff_id)
    cache.save(_metadata(tarred.diff_id), [_cache_layer(tarred, tmp_path)])
    image = store.image("cache:latest")
    assert image.diff_ids == [tarred.diff_id]
    assert CacheMetadata.parse(image.labels[CACHE_METADATA_LABEL], "label") == _metadata(tarred.diff_id)
    again = ImageCache(store, "cache:latest", "cache:latest", base=random_image(layers=1))
    assert again.has(tarred.diff_id)
    with again.open_layer(tarred.diff_id) as stream:
        extract_layer(stream, PREFIX, tmp_path / "out", tarred.diff_id)
    assert (tmp_path / "out" / "f").read_text() == "cached"
    again.save(_metadata(tarred.diff_id), [])  # nothing new: the same image, not written again
    assert store.image("cache:latest").digest == image.digest


def test_image_without_the_cache_label_is_not_a_cache(tmp_path: Path) -> None:
    store = MemoryStore()
    store.write(random_image(layers=1), ["notacache"])
    with pytest.raises(CacheError, match=r"no io\.buildpacks\.lifecycle\.cache\.metadata label"):
        ImageCache(store, "notacache", "notacache").metadata()


def test_blob_index_finds_a_stored_blob_by_diffid_and_checks_its_trailer(tmp_path: Path) -> None:
    """An unchanged layer is never compressed twice on this machine."""
    layout = Layout(tmp_path / "store", create=True)
    tarred = _tarred(tmp_path, "indexed")
    blob = LayerWriter(tmp_path / "blobs").layer(tarred).layer
    layout.put_layer(blob)
    index = BlobIndex(tmp_path / "index")
    find = index.finder([layout])
    assert find(tarred) is None
    index.record([blob])
    found = find(tarred)
    assert found is not None and found.digest == blob.digest and found.diff_id == tarred.diff_id
    writer = LayerWriter(tmp_path / "again", find=[find])
    assert writer.layer(writer.tar(tarred.identifier, lambda tar: _same(tar, tarred))).reused
    assert writer.compressed == []
    wrong_size = TarredLayer(tarred.identifier, tarred.diff_id, tarred.path, tarred.size + 1)
    assert find(wrong_size) is None  # the gzip trailer does not give this tar's length
    (index.root / f"{tarred.diff_id[7:]}.json").write_text("{not json")
    assert find(tarred) is None and index.prune(layout.has_blob) == 1


def _same(tar: LayerTar, tarred: TarredLayer) -> None:
    with tarfile.open(tarred.path) as source:
        for member in source:
            tar.add_member(member, source.extractfile(member) if member.isreg() else None)


def test_tar_first_then_compress_gives_the_one_pass_digest(tmp_path: Path) -> None:
    """EXP-6: the blob of a spilled tar is byte for byte what write_layer makes."""
    write(tmp_path / "src" / "big", "".join(f"{n}\n" for n in range(300_000)))
    fill = dir_fill(tmp_path / "src", "/layers/a_bp/L", 1000, 1000)
    writer = LayerWriter(tmp_path / "spill")
    two_pass = writer.layer(writer.tar("L", fill)).layer
    one_pass = write_layer(tmp_path / "direct", fill)
    assert (two_pass.digest, two_pass.diff_id) == (one_pass.digest, one_pass.diff_id)


def _tar(entries: list[tuple[str, bytes | None, str]]) -> tuple[bytes, str]:
    """A tar of (name, data or None for a dir, symlink target) entries, and its diffID."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue(), sha256_digest(out.getvalue())


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([("/layers/a_bp/L", None, ""), ("/layers/a_bp/other/f", b"x", "")], "outside"),
        ([("/layers/a_bp/L", None, ""), ("/layers/a_bp/L/../../../etc/x", b"x", "")], "not a plain path"),
        (
            [
                ("/layers/a_bp/L", None, ""),
                ("/layers/a_bp/L/s", None, "/etc"),
                ("/layers/a_bp/L/s/x", b"x", ""),
            ],
            "below",
        ),
        ([("/layers/a_bp/L/f", b"x", "")], "below"),
    ],
)
def test_extract_refuses_entries_that_would_escape_the_layer(
    tmp_path: Path, entries: list[tuple[str, bytes | None, str]], problem: str
) -> None:
    data, diff_id = _tar(entries)
    with pytest.raises(CacheError, match=problem):
        extract_layer(io.BytesIO(data), PREFIX, tmp_path / "L", diff_id)
    assert not (tmp_path / "L").exists()


def test_extract_checks_the_diffid_and_a_truncated_tar(tmp_path: Path) -> None:
    """RES-3: contents that do not hash to the recorded diffID are not restored."""
    data, diff_id = _tar([("/layers/a_bp/L", None, ""), ("/layers/a_bp/L/f", b"x" * 2000, "")])
    with pytest.raises(CacheError, match="expected"):
        extract_layer(io.BytesIO(data), PREFIX, tmp_path / "L", "sha256:" + "0" * 64)
    with pytest.raises(CacheError):
        extract_layer(io.BytesIO(data[:1500]), PREFIX, tmp_path / "L", diff_id)
    assert not (tmp_path / "L").exists()
    extract_layer(io.BytesIO(data), PREFIX, tmp_path / "L", diff_id)
    assert (tmp_path / "L" / "f").read_bytes() == b"x" * 2000


def _damage(cache: DirectoryCache, how: str) -> None:
    meta = cache.committed / CACHE_METADATA_LABEL
    tar = next(cache.committed.glob("*.tar"))
    if how == "truncated blob":
        tar.write_bytes(tar.read_bytes()[:700])
    elif how == "wrong diffID":
        data, _ = _tar([("/layers/a_bp/L", None, ""), ("/layers/a_bp/L/f", b"evil", "")])
        tar.write_bytes(data)
    elif how == "missing blob":
        tar.unlink()
    else:
        meta.write_text('{"buildpacks": [{"key": 1')


@pytest.mark.parametrize("how", ["truncated blob", "wrong diffID", "missing blob", "unreadable metadata"])
def test_damaged_cache_warns_and_the_build_is_correct(tmp_path: Path, how: str) -> None:
    """RES-3, RES-6: a warning, the layer made afresh, the same image as a clean build."""
    made = []

    def script(layers: Path, number: int) -> None:
        if not (layers / "L" / "f").is_file():
            made.append(number)
            write(layers / "L" / "f", "good")
        write(layers / "L.toml", "[types]\ncache = true\n")

    cache = DirectoryCache(tmp_path / "cache", "app")
    rebuilds = Rebuilds(tmp_path / "damaged", script, cache)
    first = rebuilds.build()
    _damage(cache, how)
    second = rebuilds.build()
    assert made == [1, 2]
    assert len(second.warnings) == 1 and cache.name in second.warnings[0]
    assert second.image.digest == first.image.digest
    assert second.restored.contents == []
    with cache.open_layer(cache.metadata().layers_of(BP)["L"].sha) as stream:  # the cache is whole again
        extract_layer(stream, PREFIX, tmp_path / "check", cache.metadata().layers_of(BP)["L"].sha)
    assert (tmp_path / "check" / "f").read_text() == "good"
