"""Phases on the host never follow a symbolic link a buildpack left in the layers dir (BLD-13, RES-1..4).

``sbom.collect_sbom`` after build, ``Restorer`` after detect (which runs first, /layers writable)
and ``restore_sboms`` over an unpacked SBOM layer: a link is refused, replaced or skipped, and
the host dir it points to stays as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from lifecycle.cnb.layers import LayerTypes
from lifecycle.errors import ExitCode, PybuildError
from lifecycle.phases.cache import CACHE_METADATA_LABEL
from lifecycle.phases.restore import RestoreInputs, Restorer
from lifecycle.phases.restore_sbom import restore_sboms
from lifecycle.phases.sbom import SbomError, collect_sbom
from lifecycle.platform.cache_dir import DirectoryCache

from .fakes import descriptor

CDX = "application/vnd.cyclonedx+json"
BUILDPACK = descriptor("acme/evil", sbom_formats=[CDX])


@pytest.fixture
def host(tmp_path: Path) -> Path:
    victim = tmp_path / "host"
    (victim / "dir").mkdir(parents=True)
    (victim / "keep.txt").write_text("the host's file")
    (victim / "dir" / "sbom.cdx.json").write_text("the host's SBOM")
    return victim


def _state(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p): (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
        for p in sorted(root.rglob("*"))
    }


def _layers(tmp_path: Path) -> tuple[Path, Path]:
    layers = tmp_path / "layers"
    bp_dir = layers / "acme_evil"
    bp_dir.mkdir(parents=True)
    return layers, bp_dir


# -- collect_sbom (BLD-13) -----------------------------------------------------------------


def test_an_sbom_that_is_a_link_is_refused(tmp_path: Path, host: Path) -> None:
    layers, bp_dir = _layers(tmp_path)
    (bp_dir / "launch.sbom.cdx.json").symlink_to(host / "keep.txt")
    with pytest.raises(SbomError, match=r"launch\.sbom\.cdx\.json is a symbolic link"):
        collect_sbom(bp_dir, layers, BUILDPACK, {})
    assert not (layers / "sbom" / "launch" / "acme_evil" / "sbom.cdx.json").exists()


def test_a_link_where_the_copy_goes_is_replaced_not_written_through(tmp_path: Path, host: Path) -> None:
    before = _state(host)
    layers, bp_dir = _layers(tmp_path)
    (bp_dir / "evil.sbom.cdx.json").write_text('{"evil": "sbom"}')
    planted = layers / "sbom" / "launch" / "acme_evil" / "evil" / "sbom.cdx.json"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(host / "keep.txt")
    made = collect_sbom(bp_dir, layers, BUILDPACK, {"evil": LayerTypes(launch=True)})
    assert made == [planted] and not planted.is_symlink() and planted.read_text() == '{"evil": "sbom"}'
    assert _state(host) == before


def test_a_linked_dir_on_the_way_to_a_copy_is_refused(tmp_path: Path, host: Path) -> None:
    before = _state(host)
    layers, bp_dir = _layers(tmp_path)
    (bp_dir / "launch.sbom.cdx.json").write_text("{}")
    (layers / "sbom").mkdir()
    (layers / "sbom" / "launch").symlink_to(host)
    with pytest.raises(SbomError, match=r"sbom/launch is a symbolic link"):
        collect_sbom(bp_dir, layers, BUILDPACK, {})
    assert _state(host) == before


# -- restore (RES-1..3) ----------------------------------------------------------------------


def _cache_with_layer(tmp_path: Path) -> DirectoryCache:
    """A directory cache holding acme/evil's ``cached`` layer (build + cache) with one file."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in ("layers", "layers/acme_evil", "layers/acme_evil/cached"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("layers/acme_evil/cached/file")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"cached"))
    data = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    cache = DirectoryCache(tmp_path / "caches", "app")
    cache.committed.mkdir(parents=True)
    (cache.committed / f"{diff_id}.tar").write_bytes(data)
    layer = {"sha": diff_id, "cache": True, "build": True, "launch": False, "data": {"v": 1}}
    entry = {
        "key": "acme/evil",
        "version": "1.0",
        "layers": {"cached": layer},
        "store": {"metadata": {"k": 1}},
    }
    (cache.committed / CACHE_METADATA_LABEL).write_text(json.dumps({"buildpacks": [entry]}))
    return cache


def test_restore_replaces_links_detect_planted_where_it_writes(tmp_path: Path, host: Path) -> None:
    before = _state(host)
    layers, bp_dir = _layers(tmp_path)
    (bp_dir / "cached").symlink_to(host / "dir")
    (bp_dir / "cached.toml").symlink_to(host / "keep.txt")
    cache = _cache_with_layer(tmp_path)
    report = Restorer(
        RestoreInputs(group=(BUILDPACK,), layers_dir=layers, previous=None, cache=cache)
    ).restore()
    assert report.contents == ["acme/evil:cached"]
    assert not (bp_dir / "cached").is_symlink() and (bp_dir / "cached" / "file").read_text() == "cached"
    assert not (bp_dir / "cached.toml").is_symlink() and "v = 1" in (bp_dir / "cached.toml").read_text()
    assert _state(host) == before


def test_restore_refuses_a_buildpack_layers_dir_that_is_a_link(tmp_path: Path, host: Path) -> None:
    before = _state(host)
    layers, bp_dir = _layers(tmp_path)
    bp_dir.rmdir()
    bp_dir.symlink_to(host)
    inputs = RestoreInputs(
        group=(BUILDPACK,), layers_dir=layers, previous=None, cache=_cache_with_layer(tmp_path)
    )
    with pytest.raises(PybuildError, match=r"acme_evil is a symbolic link") as info:
        Restorer(inputs).restore()
    assert info.value.exit_code == ExitCode.RESTORE and "\n" not in str(info.value)
    assert _state(host) == before


# -- restore_sboms (RES-4) -------------------------------------------------------------------


def test_restored_sboms_never_come_through_a_link_in_the_unpacked_layer(tmp_path: Path, host: Path) -> None:
    """A previous image's SBOM layer whose ``<id>/<layer>`` dir links to a host dir gives no SBOM."""
    before = _state(host)
    layers, bp_dir = _layers(tmp_path)
    (layers / "sbom").symlink_to(host)  # planted by detect: removed, never unpacked into

    def unpack_launch(dest: Path) -> None:
        (dest / "acme_evil").mkdir(parents=True)
        (dest / "acme_evil" / "linked").symlink_to(host / "dir")
        (dest / "acme_evil" / "plain").mkdir()
        (dest / "acme_evil" / "plain" / "sbom.cdx.json").write_text("{}")
        (dest / "acme_evil" / "plain" / "sbom.spdx.json").symlink_to(host / "keep.txt")

    (bp_dir / "plain.sbom.syft.json").symlink_to(host / "keep.txt")  # something there: not overwritten
    restore_sboms(layers, [(BUILDPACK, "linked"), (BUILDPACK, "plain")], {"launch": unpack_launch})
    assert sorted(os.listdir(bp_dir)) == ["plain.sbom.cdx.json", "plain.sbom.syft.json"]
    assert (bp_dir / "plain.sbom.cdx.json").read_text() == "{}"
    assert not os.path.lexists(layers / "sbom")
    assert _state(host) == before
