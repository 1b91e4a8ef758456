"""Fast rebuilds through the CLI on the tiny stack (ANA-*, RES-*, EXP-3, EXP-7, EXP-14).

The app is steered (tests/fixtures/buildpacks/steer): its build.sh behaves like the python
buildpack, keeping a launch+cache `deps` layer when the restored metadata has the hash of
`deps.txt` and the layer dir came back, and installing it afresh otherwise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, pybuild
from support.registry import Registry

from lifecycle.backends.store import LocalStore

STEER = str(ROOT / "tests" / "fixtures" / "buildpacks" / "steer")
BUILD_SH = r"""set -euo pipefail
layers=$1
want=$(sha256sum deps.txt | cut -d ' ' -f 1)
if [[ -f $layers/deps.toml ]] && grep -q "$want" "$layers/deps.toml" && [[ -d $layers/deps ]]; then
  echo "Reusing cached dependencies"
else
  echo "Installing dependencies"
  rm -rf "$layers/deps"
  mkdir -p "$layers/deps/bin"
  printf '#!/bin/sh\necho "deps: %s"\n' "$(cat deps.txt)" >"$layers/deps/bin/deps"
  chmod 755 "$layers/deps/bin/deps"
fi
printf '[types]\nlaunch = true\ncache = true\n\n[metadata]\ndeps_sha256 = "%s"\n' "$want" >"$layers/deps.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["sh", "main.sh"]\ndefault = true\n' >"$layers/launch.toml"
"""


def _app(tmp_path: Path, deps: str = "left-pad==1.0\n") -> Path:
    app = tmp_path / "app"
    (app / ".steer").mkdir(parents=True)
    (app / ".steer" / "build.sh").write_text(BUILD_SH)
    (app / "deps.txt").write_text(deps)
    (app / "main.sh").write_text("deps\necho main v1\n")
    return app


def _build(image: str, app: Path, *flags: str, check: bool = True):  # type: ignore[no-untyped-def]
    return pybuild(
        "build",
        image,
        "--path",
        str(app),
        "--builder",
        TINY_BUILDER,
        "--buildpack",
        STEER,
        *flags,
        check=check,
    )


def _blobs(home: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (home / "store" / "blobs" / "sha256").iterdir()}


def _layers(home: Path, image: str) -> list[str]:
    return [layer.digest for layer in LocalStore(home).image(image).layers]


def test_unchanged_rebuild_is_the_same_image_and_one_edit_changes_only_the_app_layer(
    home: Path, tmp_path: Path
) -> None:
    app = _app(tmp_path)
    first = _build("app", app)
    assert "Installing dependencies" in first.stdout
    blobs = _blobs(home)

    again = _build("app", app, "--rerun")  # the buildpacks run though nothing changed
    assert "Reusing cached dependencies" in again.stdout  # the buildpack skipped its work
    assert "Restoring metadata for 'test/steer:deps' from app image" in again.stdout
    assert "Restoring data for 'test/steer:deps' from cache" in again.stdout
    for line in (
        "Reusing layer 'test/steer:deps'",
        "Reusing 1/1 app layer(s)",
        "Reused 5 of 5 layers, compressed 0",
    ):
        assert line in again.stdout
    assert last_line(again) == last_line(first)
    assert _blobs(home) == blobs  # nothing compressed, copied or linked into the store

    before = _layers(home, "app")
    (app / "main.sh").write_text("deps\necho main v2\n")
    edited = _build("app", app)
    assert "Adding 1/1 app layer(s)" in edited.stdout and "compressed 1" in edited.stdout
    after = _layers(home, "app")
    assert [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [len(before) - 4]
    out = pybuild("run", "app").stdout
    assert "deps: left-pad==1.0" in out and "main v2" in out


def test_a_new_tag_of_the_same_app_hits_the_cache(home: Path, tmp_path: Path) -> None:
    """The cache is keyed by the name without tag; with no previous image, PR#1346 restores from it."""
    app = _app(tmp_path)
    v1 = _build("app:v1", app)
    v2 = _build("app:v2", app)
    assert "Reusing cached dependencies" in v2.stdout
    assert "Restoring metadata for 'test/steer:deps' from cache" in v2.stdout
    assert "compressed 0" in v2.stdout  # the blob index: every blob was compressed for v1
    assert last_line(v2) == last_line(v1)
    other = _build("other", app)
    assert "Installing dependencies" in other.stdout  # another name, another cache
    shared = _build("third", app, "--cache", "app")
    assert "Reusing cached dependencies" in shared.stdout


LAYER_TYPES = {  # name: (build, cache, launch), the rows of the spec's table
    "bcl": (True, True, True),
    "bc_": (True, True, False),
    "b_l": (True, False, True),
    "b__": (True, False, False),
    "_cl": (False, True, True),
    "_c_": (False, True, False),
    "__l": (False, False, True),
    "___": (False, False, False),
}


def _steer_layers(app: Path, with_dirs: bool) -> None:
    layers = app / ".steer" / "layers"
    shutil.rmtree(layers, ignore_errors=True)
    layers.mkdir(parents=True)
    for name, (build, cache, launch) in LAYER_TYPES.items():
        flags = (
            f"build = {str(build).lower()}\ncache = {str(cache).lower()}\nlaunch = {str(launch).lower()}\n"
        )
        (layers / f"{name}.toml").write_text(f'[types]\n{flags}\n[metadata]\nrow = "{name}"\n')
        if with_dirs:
            (layers / name).mkdir()
            (layers / name / "file").write_text(name)


def test_every_layer_type_through_restore_and_export(home: Path, tmp_path: Path) -> None:
    """RES-2, RES-3, RES-4, EXP-3, EXP-7, EXP-14: each row of the spec's layer types table."""
    app = tmp_path / "app"
    (app / ".steer").mkdir(parents=True)
    (app / ".steer" / "build.sh").write_text(
        'cd "$1" && echo "present: $(ls -d */ | tr -d / | tr "\\n" " ")"\n'
    )
    _steer_layers(app, with_dirs=True)
    _build("table", app)
    first = _metadata(home, "table")
    _steer_layers(app, with_dirs=False)  # keep each layer as restored: tomls with types, no dirs
    second = _build("table", app)

    for name, source in (("bcl", "app image"), ("bc_", "cache"), ("_cl", "app image"), ("_c_", "cache")):
        assert f"Restoring metadata for 'test/steer:{name}' from {source}" in second.stdout
        assert f"Restoring data for 'test/steer:{name}' from cache" in second.stdout
    assert "Restoring metadata for 'test/steer:__l' from app image" in second.stdout
    assert "Restoring data for 'test/steer:__l'" not in second.stdout  # RES-4: never contents
    for name in ("b_l", "b__", "___"):
        assert f"'test/steer:{name}'" not in second.stdout.split("===> BUILDING")[0]
    assert "present: _c_ _cl bc_ bcl \n" in second.stdout  # dirs back before build: cached ones only
    assert 'test/steer build: restored __l.toml:\n[metadata]\nrow = "__l"\n' in second.stdout

    layers = _metadata(home, "table")["buildpacks"][0]["layers"]
    assert layers == first["buildpacks"][0]["layers"]  # the same SHAs: every launch layer reused
    assert sorted(layers) == ["__l", "_cl", "b_l", "bcl"]
    assert (
        "Reusing layer 'test/steer:__l'" in second.stdout
        and "Reusing layer 'test/steer:b_l'" in second.stdout
    )
    cache = json.loads((home / "cache" / "build" / "table" / "committed" / _META).read_text())
    assert sorted(cache["buildpacks"][0]["layers"]) == ["_c_", "_cl", "bc_", "bcl"]


_META = "io.buildpacks.lifecycle.cache.metadata"


def _metadata(home: Path, image: str) -> dict:  # type: ignore[type-arg]
    return json.loads(LocalStore(home).image(image).labels["io.buildpacks.lifecycle.metadata"])  # type: ignore[no-any-return]


def test_two_homes_give_byte_identical_images_and_source_date_epoch_changes_only_created(
    home: Path, tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXP-6: the same source in two stores, cold and with a cache, is the same image."""
    app = _app(tmp_path)
    cold = last_line(_build("app", app))
    warm = last_line(_build("app", app, "--rerun"))
    other = tmp_path / "other-home"
    shutil.copytree(tiny_home, other, symlinks=True, ignore=shutil.ignore_patterns("rootfs"))
    monkeypatch.setenv("PYBUILD_HOME", str(other))
    elsewhere = last_line(_build("app", app))
    assert cold == warm == elsewhere
    image = LocalStore(other).image("app")
    for layer in image.layers:  # byte for byte: every blob of one store is in the other, same bytes
        assert (home / "store" / "blobs" / "sha256" / layer.digest[7:]).read_bytes() == (
            other / "store" / "blobs" / "sha256" / layer.digest[7:]
        ).read_bytes()

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dated = _build("app", app)
    assert "Reused 5 of 5 layers" in dated.stdout
    new = LocalStore(other).image("app")
    assert new.digest != image.digest and new.layers == image.layers
    old_config, new_config = image.config.model_dump(), new.config.model_dump()
    assert new_config["created"] == "2023-11-14T22:13:20Z"
    assert {h["created"] for h in new_config["history"][-5:]} == {"2023-11-14T22:13:20Z"}
    for config in (old_config, new_config):
        config.pop("created")
        config["history"] = [{k: v for k, v in h.items() if k != "created"} for h in config["history"]]
    assert new_config == old_config


def _damage(home: Path, how: str) -> None:
    committed = home / "cache" / "build" / "app" / "committed"
    if how == "truncated":
        tar = next(committed.glob("*.tar"))
        tar.write_bytes(tar.read_bytes()[:1000])
    else:
        (committed / _META).write_text("{garbage")


@pytest.mark.parametrize(
    ("how", "warning"), [("truncated", "not restoring"), ("metadata", "ignoring the cache")]
)
def test_a_damaged_cache_warns_and_builds_the_right_image(
    home: Path, tmp_path: Path, how: str, warning: str
) -> None:
    """RES-3, RES-6: never a failed build, never a wrong image."""
    app = _app(tmp_path)
    first = last_line(_build("app", app))
    _damage(home, how)
    again = _build("app", app, "--rerun")  # the cache is no input: unchanged inputs would reuse
    assert f"Warning: {warning}" in again.stderr
    assert "Installing dependencies" in again.stdout
    assert last_line(again) == first
    healed = _build("app", app, "--rerun")  # the cache was written whole again
    assert "Reusing cached dependencies" in healed.stdout and not healed.stderr.strip()


def test_cache_image_in_a_layout_or_the_store_and_clear_cache(home: Path, tmp_path: Path) -> None:
    """--cache-image works without --publish, through any image store; --clear-cache starts afresh."""
    app = _app(tmp_path)
    for ref in (f"oci:{tmp_path / 'cache-layout'}:build-cache", "appcache:build"):
        _build("one", app, "--cache-image", ref)
        other = _build("two", app, "--cache-image", ref)  # a new name: only the cache image can help
        assert "Reusing cached dependencies" in other.stdout, ref
        pybuild("rmi", "two")
    layout = json.loads((tmp_path / "cache-layout" / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in layout["manifests"]] == [
        "build-cache"
    ]
    assert _META in LocalStore(home).image("appcache:build").labels
    assert not (home / "cache" / "build" / "one").exists()  # no directory cache was used

    cleared = _build("one", app, "--cache-image", "appcache:build", "--clear-cache")
    assert "Installing dependencies" in cleared.stdout and "Restoring" not in cleared.stdout
    again = _build("one", app, "--cache-image", "appcache:build")
    assert "Reusing cached dependencies" in again.stdout


def test_previous_image_flag_reuses_layers_of_another_image(home: Path, tmp_path: Path) -> None:
    """--previous-image: launch-only layers of that image are kept by reference (EXP-3)."""
    app = tmp_path / "app"
    tool = app / ".steer" / "layers"
    (tool / "tool").mkdir(parents=True)
    (tool / "tool" / "file").write_text("tool")
    (tool / "tool.toml").write_text('[types]\nlaunch = true\n[metadata]\nversion = "1"\n')
    _build("base", app)
    shutil.rmtree(tool / "tool")  # from now on the buildpack only keeps the restored metadata
    plain = _build("derived", app, check=False)
    assert plain.returncode == 62 and "to reuse" in plain.stderr
    derived = _build("derived", app, "--previous-image", "base")
    assert "Restoring metadata for 'test/steer:tool' from app image" in derived.stdout
    assert "Reusing layer 'test/steer:tool'" in derived.stdout
    assert _layers(home, "derived")[-5] == _layers(home, "base")[-5]


def test_cache_commands_list_remove_and_prune(home: Path, tmp_path: Path) -> None:
    app = _app(tmp_path)
    _build("app:v1", app)
    _build("team/api", app)
    rows = json.loads(pybuild("cache", "ls", "-o", "json").stdout)
    assert [(r["name"], r["layers"]) for r in rows] == [("app", 1), ("team/api", 1)]
    assert "team/api" in pybuild("cache", "ls").stdout
    (home / "cache" / "build" / "app" / "committed" / ("sha256:" + "0" * 64 + ".tar")).write_bytes(b"x" * 10)
    assert "Freed 10 B" in pybuild("cache", "prune").stdout
    pybuild("cache", "rm", "app:v1")
    assert [r["name"] for r in json.loads(pybuild("cache", "ls", "-o", "json").stdout)] == ["team/api"]
    assert "Removed cache team/api" in pybuild("cache", "prune", "--older-than", "0s").stdout
    missing = pybuild("cache", "rm", "nope", check=False)
    assert missing.returncode == 3 and "no cache 'nope'" in missing.stderr


def test_cache_image_in_the_registry_with_publish(home: Path, tmp_path: Path, registry: Registry) -> None:
    """With --publish the cache image sits in the registry too, and a new tag uploads no layer."""
    app = _app(tmp_path)
    cache = f"{registry.host}/e2e-rebuild/app:cache"
    _build(f"{registry.host}/e2e-rebuild/app:v1", app, "--publish", "--cache-image", cache)
    mark = registry.log_mark()
    v2 = _build(f"{registry.host}/e2e-rebuild/app:v2", app, "--publish", "--cache-image", cache)
    assert "Reusing cached dependencies" in v2.stdout, v2.stdout + v2.stderr
    uploads = [e for e in registry.access_log(since=mark) if e.method == "PATCH" or e.method == "POST"]
    assert all("mount" in e.query for e in uploads if e.method == "POST"), uploads
    assert [e for e in uploads if e.method == "PATCH"] == []
    info = json.loads(pybuild("inspect", f"docker://{cache}", "-o", "json").stdout)
    assert _META in json.dumps(info)
