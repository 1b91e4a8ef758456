"""The fingerprint of a build's inputs (``build_inputs``) and the stat cache behind it (``stat_cache``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.backends import base, store
from lifecycle.platform import build_inputs, builders, cache_dir, stat_cache, workspace
from lifecycle.platform.build_inputs import BuildRequest, Reuse
from lifecycle.platform.stat_cache import RACY_NS, StatCache, package_signature


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the stat cache reads, in order."""
    read: list[str] = []
    original = stat_cache._sha256_file

    def counting(path: str) -> str:
        read.append(path)
        return original(path)

    monkeypatch.setattr(stat_cache, "_sha256_file", counting)
    return read


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Hashing happens ``seconds`` after now: what the stat cache records as the hash time."""
    now = stat_cache.time.time_ns()
    monkeypatch.setattr(stat_cache.time, "time_ns", lambda: now + int(seconds * 1e9))


def test_a_file_changed_within_the_racy_window_is_hashed_again(
    tmp_path: Path, hashes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's racy rule: a write in the same timestamp tick as the hash would not change the stat."""
    app = tmp_path / "app.txt"
    app.write_text("v1")
    cache = StatCache(tmp_path / "stat-cache.json")
    first = cache.path_sha256(app)
    assert cache.path_sha256(app) == first
    assert hashes == [str(app), str(app)]  # written just now: racy, so never trusted

    _later(monkeypatch, RACY_NS / 1e9 + 1)
    cache.path_sha256(app)  # hashed long after the last change: trusted from now on
    assert len(hashes) == 3
    assert cache.path_sha256(app) == first and len(hashes) == 3


def test_a_trusted_entry_survives_a_save_and_a_change_of_content_is_seen(
    tmp_path: Path, hashes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app.txt"
    app.write_text("v1")
    _later(monkeypatch, 5)
    cache = StatCache(tmp_path / "stat-cache.json")
    first = cache.path_sha256(app)
    cache.save()
    reloaded = StatCache(tmp_path / "stat-cache.json")
    assert reloaded.path_sha256(app) == first and hashes == [str(app)]

    app.write_text("v2")  # same size: the mtime, ctime or inode tells
    assert reloaded.path_sha256(app) == hashlib.sha256(b"v2").hexdigest() != first
    assert hashes == [str(app), str(app)]


def test_a_damaged_stat_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "stat-cache.json").write_text("{not json")
    app = tmp_path / "app.txt"
    app.write_text("v1")
    assert StatCache(tmp_path / "stat-cache.json").path_sha256(app) == hashlib.sha256(b"v1").hexdigest()


def _tree(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "www").mkdir(parents=True)
    (app / "Procfile").write_text("web: run\n")
    (app / "www" / "index.html").write_text("<p>hi</p>\n")
    (app / "link").symlink_to("www/index.html")
    return app


@pytest.mark.parametrize(
    "change",
    [
        lambda app: (app / "www" / "index.html").write_text("<p>ho</p>\n"),
        lambda app: (app / "Procfile").chmod(0o755),
        lambda app: (app / "new.txt").write_text(""),
        lambda app: (app / "www" / "index.html").unlink(),
        lambda app: (app / "www" / "index.html").rename(app / "www" / "other.html"),
        lambda app: ((app / "link").unlink(), (app / "link").symlink_to("Procfile")),
        lambda app: (app / "empty").mkdir(),
    ],
    ids=["content", "mode", "added", "removed", "renamed", "link-target", "new-dir"],
)
def test_every_change_to_the_app_changes_its_hash(tmp_path: Path, change: object) -> None:
    app = _tree(tmp_path)
    cache = StatCache(tmp_path / "stat-cache.json")
    before = cache.tree_sha256(app)
    assert callable(change)
    change(app)
    assert cache.tree_sha256(app) != before


def test_the_app_hash_ignores_mtimes_and_git_which_the_app_copy_leaves_out(tmp_path: Path) -> None:
    app = _tree(tmp_path)
    cache = StatCache(tmp_path / "stat-cache.json")
    before = cache.tree_sha256(app)
    os.utime(app / "Procfile", ns=(1, 1))
    (app / ".git").mkdir()
    (app / ".git" / "index").write_text("changes with every git status")
    assert cache.tree_sha256(app) == before
    assert set(workspace._ALWAYS_EXCLUDED) == stat_cache.SKIPPED_NAMES


def test_the_package_signature_sees_any_file_touched_but_not_bytecode(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    before = package_signature(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert package_signature(package) == before
    os.utime(package / "Procfile", ns=(1, 1))
    assert package_signature(package) != before


@pytest.mark.parametrize(
    "name", ["app", "app:v1", "team/api:v2", "localhost:5000/app", "host:5000/a/b@sha256:" + "0" * 64]
)
def test_names_are_spelled_as_the_build_spells_them(name: str, tmp_path: Path) -> None:
    assert build_inputs.normalize_tag(name) == base.normalize_tag(name)
    assert build_inputs.repository_of(name) == base.repository_of(name)
    cache_name = build_inputs.repository_of(name)
    assert build_inputs.cache_dir_name(cache_name) == cache_dir._dir_name(cache_name)
    assert build_inputs.builder_dir(tmp_path, name) == builders.builder_dir(name, tmp_path)


@pytest.mark.parametrize("name", [".", "..", "a" * 300, "x/" * 120])
def test_odd_cache_names_get_the_cache_directory_name(name: str) -> None:
    assert build_inputs.cache_dir_name(name) == cache_dir._dir_name(name)


def test_the_home_is_the_stores_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYBUILD_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert build_inputs.pybuild_home() == store.pybuild_home()
    monkeypatch.setenv("PYBUILD_HOME", str(tmp_path / "home"))
    assert build_inputs.pybuild_home() == store.pybuild_home()


@pytest.mark.parametrize(
    "changes",
    [
        {"image": "oci:/tmp/layout:v1"},
        {"image": "docker://localhost:5000/app:v1"},
        {"image": "docker-daemon:app"},
        {"executor": "host"},
        {"secrets": True},
        {"cache_image": "app:cache"},
        {"creation_time": "now"},
    ],
)
def test_builds_that_are_never_reused_get_no_fingerprint(tmp_path: Path, changes: dict[str, object]) -> None:
    request = BuildRequest(**{"image": "app", "path": _tree(tmp_path), **changes})  # type: ignore[arg-type]
    assert Reuse.open(request, tmp_path / "home") is None


def _fingerprint(tmp_path: Path, **changes: object) -> str:
    request = BuildRequest(**{"image": "app", "path": tmp_path / "app", **changes})  # type: ignore[arg-type]
    reuse = Reuse.open(request, tmp_path / "home")
    assert reuse is not None
    return reuse.fingerprint


def test_every_option_is_part_of_the_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    plain = _fingerprint(tmp_path)
    assert _fingerprint(tmp_path) == plain
    others = [
        _fingerprint(tmp_path, image="app:v2"),
        _fingerprint(tmp_path, env={"A": "1"}),
        _fingerprint(tmp_path, builder="other"),
        _fingerprint(tmp_path, run_image="pybuild/run:tiny-2"),
        _fingerprint(tmp_path, buildpacks=("bp",)),
        _fingerprint(tmp_path, network="none"),
        _fingerprint(tmp_path, ca_bundle=False),
        _fingerprint(tmp_path, creation_time="0"),
        _fingerprint(tmp_path, default_process="worker"),
        _fingerprint(tmp_path, cache_name="shared"),
        _fingerprint(tmp_path, previous_image="base"),
    ]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    others.append(_fingerprint(tmp_path))
    monkeypatch.setenv("CNB_EXPERIMENTAL_MODE", "warn")
    others.append(_fingerprint(tmp_path))
    assert len({plain, *others}) == len(others) + 1


def test_a_descriptor_outside_the_app_is_hashed(tmp_path: Path) -> None:
    _tree(tmp_path)
    descriptor = tmp_path / "project.toml"
    descriptor.write_text("[_]\n")
    before = _fingerprint(tmp_path, descriptor=descriptor)
    descriptor.write_text("[_]\nschema-version = '0.2'\n")
    assert _fingerprint(tmp_path, descriptor=descriptor) != before


def _store_image(home: Path, tag: str, layer: bytes = b"layer") -> str:
    """A tagged manifest with a config and a layer blob, laid out as the local store lays them out."""
    blobs = home / "store" / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    manifest = {"schemaVersion": 2, "config": {"digest": blob(b"{}")}, "layers": [{"digest": blob(layer)}]}
    digest = blob(json.dumps(manifest).encode())
    index_path = home / "store" / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m["annotations"][base.REF_NAME] != tag]
    index["manifests"].append({"digest": digest, "annotations": {base.REF_NAME: tag}})
    index_path.write_text(json.dumps(index))
    return digest


def _recorded(tmp_path: Path) -> str:
    """Record a build of ``app`` in ``tmp_path/home`` with one dependency of each kind."""
    home = tmp_path / "home"
    app = _tree(tmp_path)
    digest = _store_image(home, "app:latest", b"app layer")
    run = _store_image(home, "pybuild/run:tiny", b"run layer")
    reuse = Reuse.open(BuildRequest("app", app), home)
    assert reuse is not None and reuse.reusable() is None  # nothing recorded yet
    buildpack = tmp_path / "bp"
    buildpack.mkdir()
    (buildpack / "buildpack.toml").write_text("api = '0.10'\n")
    dependencies = [
        reuse.tree(buildpack),
        reuse.in_store("pybuild/run:tiny", run),
        reuse.absent(tmp_path / "no-such-dir"),
    ]
    assert None not in dependencies and reuse.in_store("pybuild/run:tiny", digest) is None
    assert reuse.in_store("oci:/layout:tiny", run) is None and reuse.stored("nope") is None
    reuse.record(digest, [dep for dep in dependencies if dep])
    return digest


def _again(tmp_path: Path) -> str | None:
    again = Reuse.open(BuildRequest("app", tmp_path / "app"), tmp_path / "home")
    assert again is not None
    return again.reusable()


def test_a_recorded_build_is_reused_while_its_tag_blobs_and_dependencies_hold(tmp_path: Path) -> None:
    digest = _recorded(tmp_path)
    assert _again(tmp_path) == digest
    assert _again(tmp_path) == digest


def _unlink_blob(home: Path, data: bytes) -> None:
    (home / "store" / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).unlink()


@pytest.mark.parametrize(
    "change",
    [
        lambda tmp, home: (tmp / "app" / "Procfile").write_text("web: other\n"),
        lambda tmp, home: _store_image(home, "app:latest", b"another build"),
        lambda tmp, home: (home / "store" / "index.json").write_text('{"manifests": []}'),
        lambda tmp, home: _unlink_blob(home, b"app layer"),
        lambda tmp, home: (tmp / "bp" / "buildpack.toml").write_text("api = '0.11'\n"),
        lambda tmp, home: _store_image(home, "pybuild/run:tiny", b"patched run layer"),
        lambda tmp, home: (tmp / "no-such-dir").mkdir(),
        lambda tmp, home: next((home / "cache" / "build" / "app" / "reuse").glob("build-*")).write_text("{"),
    ],
    ids=["app", "tag-moved", "tag-removed", "blob", "buildpack-dir", "run-image", "absent-path", "record"],
)
def test_any_change_means_a_build(tmp_path: Path, change: object) -> None:
    _recorded(tmp_path)
    assert callable(change)
    change(tmp_path, tmp_path / "home")
    assert _again(tmp_path) is None


def test_the_fast_path_loads_no_model_client_or_progress_library(tmp_path: Path) -> None:
    """``pybuild build`` checks for reuse before it imports the build: only the standard library."""
    probe = (
        "import sys, json\n"
        "import lifecycle.cli.build, lifecycle.platform.build_inputs\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    heavy = {"pydantic", "httpx", "rich", "docker", "lifecycle.platform.build", "lifecycle.oci.image"}
    assert heavy & loaded == set()


def test_an_app_edited_during_the_build_is_not_recorded(tmp_path: Path) -> None:
    """The image may hold the edit, the fingerprint does not: reverting the edit must not reuse it."""
    home = tmp_path / "home"
    digest = _store_image(home, "app:latest", b"app layer")
    reuse = Reuse.open(BuildRequest("app", _tree(tmp_path)), home)
    assert reuse is not None
    (tmp_path / "app" / "Procfile").write_text("web: edited while building\n")
    assert reuse.record(digest, []) is False and not reuse.record_path.exists()
    (tmp_path / "app" / "Procfile").write_text("web: run\n")
    assert reuse.record(digest, []) is True and _again(tmp_path) == digest
