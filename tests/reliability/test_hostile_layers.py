"""Hostile layer tars against every extractor: rootfs extraction, cache restore, .tgz buildpacks.

Every case of ``hostile.cases`` runs against each extractor inside a ``Jail``: the outcome is
a refusal with a one-line typed error, or an extraction with the danger neutralised; in both,
no file outside the target may change. See ``hostile.py`` for the corpus. Each of
``hostile.BOMBS`` (gzip layer bombs made as they are read) runs against each extractor too,
with ``PYBUILD_MAX_LAYER_BYTES`` at 1 MiB: refused before more than that is written or read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import BuildpackDescriptor, BuildpackInfo
from lifecycle.errors import ConfigError, DigestMismatch, ImageError, PybuildError
from lifecycle.execution.rootfs import extract_archive, extract_rootfs, rootfs_cache
from lifecycle.oci.layer import Layer
from lifecycle.oci.limits import MAX_LAYER_BYTES_ENV, MAX_LAYER_ENTRIES_ENV
from lifecycle.oci.media import OCI_LAYER_GZIP
from lifecycle.oci.models import Descriptor, ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.phases.cache import CACHE_METADATA_LABEL, CacheError
from lifecycle.phases.cache_extract import extract_layer
from lifecycle.phases.restore import RestoreInputs, Restorer
from lifecycle.platform.bpref import resolve_buildpack
from lifecycle.platform.cache_dir import DirectoryCache

from .figures import record
from .hostile import (
    BOMBS,
    CACHE_PREFIX,
    DIR,
    EXTRACTORS,
    Case,
    Entry,
    Jail,
    LazyStream,
    cases,
    gzipped,
    memory_layer,
    tar_bytes,
    zero_files,
)

_PLACEHOLDER = Path("/" + "p" * 60)  # case names do not depend on where a test runs


def _params() -> list[Any]:
    params: list[Any] = []
    for extractor in EXTRACTORS:
        for case in cases(_PLACEHOLDER, _PLACEHOLDER):
            params.append(pytest.param(extractor, case.name, id=f"{extractor}-{case.name}"))
    return params


def _case(name: str, base: Path, victim: Path = _PLACEHOLDER) -> Case:
    return next(case for case in cases(base, victim) if case.name == name)


def _rootfs(case_name: str, jail: Jail) -> Path:
    cache_dir = jail.target("rootfs-cache")
    case = _case(case_name, cache_dir / ".extract-xxxxxxxx", jail.victim)
    layers = [memory_layer(tar_bytes(entries, jail.victim)) for entries in case.layers]
    image = new_image(ImageConfig(), layers)
    try:
        return rootfs_cache(image, cache_dir)
    except PybuildError:
        assert not [p.name for p in cache_dir.iterdir()], "a refused extraction left files in the cache"
        raise


def _cache(case_name: str, jail: Jail) -> Path:
    target = jail.target("layer")
    case = _case(case_name, target, jail.victim)
    prefix_dirs = [Entry(CACHE_PREFIX.rsplit("/", n)[0], DIR, raw=True) for n in (2, 1, 0)]
    entries = [entry for layer in case.layers for entry in layer]
    raw = tar_bytes([*prefix_dirs, *entries], jail.victim, prefix=CACHE_PREFIX)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    extract_layer(io.BytesIO(raw), "/" + CACHE_PREFIX, target, diff_id)
    return target


_BUILDPACK_TOML = b'api = "0.10"\n[buildpack]\nid = "test/hostile"\nversion = "1"\n'


def _buildpack(case_name: str, jail: Jail, archives: Path) -> Path:
    """``--buildpack x.tgz`` (and builder.toml uris): bpref's archive source."""
    into = jail.target("builder")
    case = _case(case_name, into / "bp-xxxxxxxx", jail.victim)
    entries = [
        Entry("buildpack.toml", data=_BUILDPACK_TOML),
        *(entry for layer in case.layers for entry in layer),
    ]
    archive = archives / f"{case_name}.tgz"
    archive.write_bytes(gzip.compress(tar_bytes(entries, jail.victim), mtime=0))
    (source,) = resolve_buildpack(str(archive), base=archives, scratch=into)
    return source.path


def _extract(extractor: str, case_name: str, jail: Jail, tmp_path: Path) -> Path:
    if extractor == "rootfs":
        return _rootfs(case_name, jail)
    if extractor == "cache":
        return _cache(case_name, jail)
    archives = tmp_path / "archives"
    archives.mkdir(exist_ok=True)
    return _buildpack(case_name, jail, archives)


@pytest.mark.parametrize(("extractor", "case_name"), _params())
def test_hostile_entries_are_refused_or_neutralised_and_nothing_leaves_the_target(
    extractor: str, case_name: str, tmp_path: Path
) -> None:
    jail = Jail(tmp_path / "jail").arm()
    case = _case(case_name, _PLACEHOLDER)
    expected = case.outcome(extractor)
    record("hostile_inputs", "layer_cases", 1)
    try:
        extracted: Path | None = _extract(extractor, case_name, jail, tmp_path)
        refusal = None
    except PybuildError as exc:
        extracted, refusal = None, str(exc)
    except Exception as exc:  # the point: nothing but our typed errors may escape
        jail.check()
        pytest.fail(f"untyped {type(exc).__name__}: {exc}")
    jail.check()  # first: whatever else went wrong, nothing may have changed outside
    if refusal is not None:
        assert "\n" not in refusal and refusal.startswith("failed to "), refusal
        assert expected in ("refuse", "either"), f"refused a case that may be neutralised: {refusal}"
        if case.message:
            assert re.search(case.message, refusal), refusal
    else:
        assert expected in ("neutral", "either"), f"extracted a case that must be refused: {case.why}"
        if case.check is not None and extractor == "rootfs" and extracted is not None:
            case.check(extracted)


def test_layer_whose_content_does_not_match_its_diffid_is_refused_and_not_cached(tmp_path: Path) -> None:
    """The rootfs cache is keyed by diffIDs: an image claiming another's diffIDs must not poison it."""
    honest = tar_bytes([Entry("bin/tool", data=b"honest")], tmp_path)
    forged = memory_layer(
        tar_bytes([Entry("bin/tool", data=b"backdoor")], tmp_path), diff_id=memory_layer(honest).diff_id
    )
    cache_dir = tmp_path / "rootfs"
    with pytest.raises(DigestMismatch, match="diffID"):
        rootfs_cache(new_image(ImageConfig(), [forged]), cache_dir)
    assert list(cache_dir.iterdir()) == []
    good = rootfs_cache(new_image(ImageConfig(), [memory_layer(honest)]), cache_dir)
    assert (good / "bin/tool").read_bytes() == b"honest"


def test_cache_layer_whose_content_does_not_match_its_diffid_is_refused(tmp_path: Path) -> None:
    raw = tar_bytes([Entry(CACHE_PREFIX.rsplit("/", n)[0], DIR) for n in (2, 1, 0)], tmp_path)
    with pytest.raises(CacheError, match="hashes to"):
        extract_layer(io.BytesIO(raw), "/" + CACHE_PREFIX, tmp_path / "dest", "sha256:" + "0" * 64)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "gzip-garbage"])
def test_malformed_layer_streams_give_typed_errors(tmp_path: Path, how: str) -> None:
    good = tar_bytes([Entry("a", data=b"x" * 5000)], tmp_path)
    raw = {
        "garbage": os.urandom(4096),
        "truncated": good[:1500],
        "empty": b"",
        "gzip-garbage": b"\x1f\x8b\x08\x00" + os.urandom(100),
    }[how]
    with pytest.raises(ImageError):
        extract_rootfs([memory_layer(raw)], tmp_path / "root")
    with pytest.raises(CacheError):
        extract_layer(io.BytesIO(raw), "/" + CACHE_PREFIX, tmp_path / "layer", "sha256:" + "0" * 64)


def test_legitimate_symlinked_parents_still_extract_like_a_runtime(tmp_path: Path) -> None:
    """Merged /usr and absolute links (``var/run -> /run``) resolve inside the root, as in a chroot."""
    lower = tar_bytes(
        [
            Entry("usr/bin", DIR),
            Entry("bin", tarfile.SYMTYPE, link="usr/bin"),
            Entry("run", DIR),
            Entry("var", DIR),
            Entry("var/run", tarfile.SYMTYPE, link="/run"),
            Entry("usr/bin/sh", data=b"shell", mode=0o755),
        ],
        tmp_path,
    )
    upper = tar_bytes(
        [
            Entry("bin/tool", data=b"tool"),
            Entry("var/run/pid", data=b"1"),
            Entry("bin/hard", tarfile.LNKTYPE, link="bin/sh"),
        ],
        tmp_path,
    )
    root = tmp_path / "root"
    extract_rootfs([memory_layer(lower), memory_layer(upper)], root)
    assert (root / "usr/bin/tool").read_bytes() == b"tool"
    assert (root / "run/pid").read_bytes() == b"1"
    assert (root / "usr/bin/hard").stat().st_ino == (root / "usr/bin/sh").stat().st_ino
    assert (root / "bin").is_symlink() and (root / "var/run").is_symlink()


def _evil_buildpack() -> BuildpackDescriptor:
    return BuildpackDescriptor(api=ApiVersion(0, 10), buildpack=BuildpackInfo(id="acme/evil", version="1"))


@pytest.mark.parametrize(
    "case_name",
    ["symlink-absolute-then-file-through-it", "hardlink-absolute", "path-max-symlink-chain", "device-nodes"],
)
def test_restore_from_a_hostile_directory_cache_warns_and_writes_nothing_outside(
    tmp_path: Path, case_name: str
) -> None:
    """The whole restore phase (RES-3) over a cache whose tar is hostile: a warning, a cache miss."""
    jail = Jail(tmp_path / "jail").arm()
    layers = jail.target("layers")
    layers.mkdir()
    case = _case(case_name, layers / "acme_evil" / "cached", jail.victim)
    prefix_dirs = [Entry(CACHE_PREFIX.rsplit("/", n)[0], DIR, raw=True) for n in (2, 1, 0)]
    raw = tar_bytes(
        [*prefix_dirs, *(e for layer in case.layers for e in layer)], jail.victim, prefix=CACHE_PREFIX
    )
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    cache = DirectoryCache(tmp_path / "caches", "app")
    cache.committed.mkdir(parents=True)
    (cache.committed / f"{diff_id}.tar").write_bytes(raw)
    layer = {"sha": diff_id, "cache": True, "build": True, "launch": False}
    metadata = {
        "buildpacks": [
            {"key": "acme/evil", "version": "1", "layers": {"cached": layer, "../../../victim": layer}}
        ]
    }
    (cache.committed / CACHE_METADATA_LABEL).write_text(json.dumps(metadata))
    warnings: list[str] = []
    inputs = RestoreInputs(
        group=(_evil_buildpack(),), layers_dir=layers, previous=None, cache=cache, warn=warnings.append
    )
    report = Restorer(inputs).restore()
    jail.check()
    assert "acme/evil:cached" not in report.contents and len(warnings) == 2, warnings
    assert not (layers / "acme_evil" / "cached").exists()


# -- layer bombs: caps on what one tar stream unpacks to ------------------------------------------

_CAP = 1 << 20  # PYBUILD_MAX_LAYER_BYTES for these tests: a bomb is refused within a MiB
_ENTRY_CAP = 500  # PYBUILD_MAX_LAYER_ENTRIES
_GUARD = 64 << 20  # a bomb fails the test once this much of it is made (a few MiB are read ahead)
_FAKE = "sha256:" + "0" * 64
_ENV = {"bytes": MAX_LAYER_BYTES_ENV, "entries": MAX_LAYER_ENTRIES_ENV}


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_LAYER_BYTES_ENV, "1M")
    monkeypatch.setenv(MAX_LAYER_ENTRIES_ENV, str(_ENTRY_CAP))


class _Source:
    """A blob source that hands out one lazily made bomb."""

    def __init__(self, stream: LazyStream) -> None:
        self.stream = stream

    def open_blob(self, digest: str) -> BinaryIO:
        return self.stream  # type: ignore[return-value]


class _Counted:
    """Counts the uncompressed bytes an extractor pulls from a stream."""

    def __init__(self, stream: gzip.GzipFile) -> None:
        self._stream, self.pulled = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.pulled += len(data)
        return data


def _written(root: Path) -> int:
    """Bytes of the regular files under ``root`` (nothing there: 0)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


@pytest.mark.usefixtures("small_caps")
@pytest.mark.parametrize(("extractor", "bomb"), [(e, b) for e in EXTRACTORS for b in sorted(BOMBS)])
def test_a_layer_bomb_is_refused_before_it_writes_more_than_the_cap(
    extractor: str, bomb: str, tmp_path: Path
) -> None:
    """A few KiB of gzip that unpack to 64 GiB, or never end: refused at the cap, typed, one line."""
    make, cap, may_end = BOMBS[bomb]
    jail = Jail(tmp_path / "jail").arm()
    target = jail.target(extractor)
    compressed = LazyStream(gzipped(make(CACHE_PREFIX if extractor == "cache" else ""), guard=_GUARD))
    pulled = _Counted(gzip.GzipFile(fileobj=compressed, mode="rb"))  # the cache is given it unpacked
    record("hostile_inputs", "layer_bombs", 1)
    try:
        if extractor == "rootfs":
            descriptor = Descriptor(media_type=OCI_LAYER_GZIP, digest=_FAKE, size=1)
            extract_rootfs([Layer(descriptor, _FAKE, _Source(compressed))], target)
        elif extractor == "cache":
            extract_layer(pulled, "/" + CACHE_PREFIX, target, _FAKE)  # type: ignore[arg-type]
        else:
            extract_archive(compressed, target)  # type: ignore[arg-type]
        refusal = None
    except PybuildError as exc:
        refusal = str(exc)
    jail.check()
    assert _written(target) <= _CAP
    assert pulled.pulled <= _CAP + (1 << 20) + tarfile.RECORDSIZE  # the cache's hashing reads a MiB
    assert compressed.served < 1 << 20, f"{compressed.served} compressed bytes read"
    if may_end and extractor == "buildpack":
        assert refusal is None, "an archive is read only to its end"
        return
    assert refusal is not None, "a layer bomb was extracted"
    assert "\n" not in refusal and refusal.startswith("failed to "), refusal
    assert f"the most {_ENV[cap]} allows (raise it" in refusal, refusal
    if extractor == "rootfs":
        assert refusal.startswith(f"failed to extract layer 0 ({_FAKE[:19]})"), refusal


def test_a_buildpack_archive_bomb_is_a_config_error_naming_the_variable(
    tmp_path: Path, small_caps: None
) -> None:
    """``--buildpack bomb.tgz``: 64 MiB of zeros in 64 KiB on disk, written as it is compressed."""
    archive = tmp_path / "bomb.tgz"
    with archive.open("wb") as out:
        entries = itertools.chain(zero_files(["buildpack.toml"], 64 << 20), [bytes(1024)])
        for chunk in gzipped(entries):
            out.write(chunk)
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(ConfigError, match=rf"bomb.tgz.*past {_CAP} bytes.*{MAX_LAYER_BYTES_ENV}"):
        resolve_buildpack(str(archive), base=tmp_path, scratch=tmp_path / "scratch")
    assert _written(tmp_path / "scratch") == 0  # refused from the entry's header


def test_restore_warns_about_a_cached_layer_with_too_many_entries_and_moves_on(
    tmp_path: Path, small_caps: None
) -> None:
    """RES-3 over a directory cache holding an entry bomb: a warning naming the cap, a cache miss."""
    prefix_dirs = [Entry(CACHE_PREFIX.rsplit("/", n)[0], DIR, raw=True) for n in (2, 1, 0)]
    files = [Entry(f"e{n}") for n in range(_ENTRY_CAP)]
    raw = tar_bytes([*prefix_dirs, *files], tmp_path, prefix=CACHE_PREFIX)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    layers = tmp_path / "layers"
    layers.mkdir()
    cache = DirectoryCache(tmp_path / "caches", "app")
    cache.committed.mkdir(parents=True)
    (cache.committed / f"{diff_id}.tar").write_bytes(raw)
    layer = {"sha": diff_id, "cache": True, "build": True, "launch": False}
    metadata = {"buildpacks": [{"key": "acme/evil", "version": "1", "layers": {"cached": layer}}]}
    (cache.committed / CACHE_METADATA_LABEL).write_text(json.dumps(metadata))
    warnings: list[str] = []
    inputs = RestoreInputs(
        group=(_evil_buildpack(),), layers_dir=layers, previous=None, cache=cache, warn=warnings.append
    )
    report = Restorer(inputs).restore()
    assert "acme/evil:cached" not in report.contents
    assert len(warnings) == 1 and MAX_LAYER_ENTRIES_ENV in warnings[0], warnings
    assert not (layers / "acme_evil" / "cached").exists()


def test_a_layer_under_the_caps_still_extracts(tmp_path: Path, small_caps: None) -> None:
    raw = tar_bytes([Entry(f"f{n}", data=b"x" * 1000) for n in range(100)], tmp_path)
    root = tmp_path / "root"
    extract_rootfs([memory_layer(raw)], root)
    assert _written(root) == 100_000
