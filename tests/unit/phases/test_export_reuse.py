"""Export reuse: unchanged layers by reference, never compressed or stored twice (EXP-3, EXP-7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.oci.layer import Layer
from lifecycle.phases.export import ExportFailed
from lifecycle.phases.export_layers import TarredLayer

from .fakes import write
from .test_restore import BP, Rebuilds

APP = {"main.sh": "echo hi", "static/index.html": "<p>hi</p>"}


def _venv_like(layers: Path, number: int) -> None:
    """Keeps its launch+cache layer when the restored metadata matches, as the python buildpack does."""
    if not ((layers / "deps.toml").is_file() and (layers / "deps" / "lib").is_dir()):
        write(layers / "deps" / "lib" / "dep.py", "VERSION = 1")
    write(layers / "deps.toml", '[types]\nlaunch = true\ncache = true\n[metadata]\nhash = "abc"\n')
    write(
        layers / "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["sh", "main.sh"]\ndefault = true\n'
    )


def test_unchanged_rebuild_reuses_every_layer_reads_and_compresses_nothing(tmp_path: Path) -> None:
    """The acceptance case: same digest, no layer compressed, none read or stored again."""
    rebuilds = Rebuilds(tmp_path, _venv_like)
    first = rebuilds.build(APP)
    stats = rebuilds.store.stats
    before = (stats.layer_opens, stats.layer_bytes_read, len(rebuilds.store.blobs))
    second = rebuilds.build(APP)
    assert second.image.digest == first.image.digest
    assert second.exporter.writer.compressed == [] and second.exporter.added == []
    assert second.exporter.reused == [
        f"{BP}:deps",
        "app:0",
        "buildpacksio/lifecycle:launcher",
        "buildpacksio/lifecycle:config",
        "buildpacksio/lifecycle:process-types",
    ]
    assert (stats.layer_opens, stats.layer_bytes_read, len(rebuilds.store.blobs)) == before


def test_one_changed_source_file_changes_only_the_app_layer(tmp_path: Path) -> None:
    rebuilds = Rebuilds(tmp_path, _venv_like)
    first = rebuilds.build(APP)
    second = rebuilds.build({**APP, "main.sh": "echo changed"})
    changed = [
        n for n, (a, b) in enumerate(zip(first.image.layers, second.image.layers, strict=True)) if a != b
    ]
    assert changed == [2]  # run image (1), deps, then the app layer
    assert second.exporter.added == ["app:0"] and len(second.exporter.writer.compressed) == 1


def test_slices_reuse_the_unchanged_ones(tmp_path: Path) -> None:
    """EXP-4 + EXP-7: with a slice for static/, a change in main.sh leaves the static layer as it was."""

    def sliced(layers: Path, number: int) -> None:
        _venv_like(layers, number)
        write(
            layers / "launch.toml", (layers / "launch.toml").read_text() + '[[slices]]\npaths = ["static"]\n'
        )

    rebuilds = Rebuilds(tmp_path, sliced)
    rebuilds.build(APP)
    second = rebuilds.build({**APP, "main.sh": "echo changed"})
    assert second.exporter.added == ["app:1"] and "app:0" in second.exporter.reused


def test_launch_layer_without_dir_needs_a_previous_layer(tmp_path: Path) -> None:
    """EXP-3: no dir and nothing to reuse fails the export (exit 62)."""

    def no_dir(layers: Path, number: int) -> None:
        write(layers / "gone.toml", "[types]\nlaunch = true\n")

    with pytest.raises(ExportFailed, match="no layer a/bp:gone to reuse") as caught:
        Rebuilds(tmp_path, no_dir).build()
    assert caught.value.exit_code == 62


def test_launch_cache_layer_without_dir_is_an_error(tmp_path: Path) -> None:
    """EXP-3 [L]: a launch+cache layer must have contents, even with a previous image."""

    def script(layers: Path, number: int) -> None:
        if number == 1:
            write(layers / "L" / "f", "x")
        write(layers / "L.toml", "[types]\nlaunch = true\ncache = true\n")

    rebuilds = Rebuilds(tmp_path, script)
    rebuilds.build()
    with pytest.raises(ExportFailed, match="cache=true but has no contents"):
        rebuilds.build()


def test_a_blob_known_elsewhere_is_used_without_compressing(tmp_path: Path) -> None:
    """The blob index's seam: a finder that knows the diffID spares the compression."""
    rebuilds = Rebuilds(tmp_path / "one", _venv_like)
    known = {layer.diff_id: layer for layer in rebuilds.build(APP).image.layers}
    found: list[str] = []

    def finder(tarred: TarredLayer) -> Layer | None:
        found.append(tarred.identifier)
        return known.get(tarred.diff_id)

    build = Rebuilds(tmp_path / "two", _venv_like, find_layers=(finder,)).build(APP)  # no previous image
    assert build.exporter.writer.compressed == []
    assert sorted(found) == sorted(build.exporter.reused)
