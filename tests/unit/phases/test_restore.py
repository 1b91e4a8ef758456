"""Restore and export across rebuilds, row by row of the spec's layer types table (RES-1..5, EXP-3, EXP-7).

Each build runs analyze, restore, build, export and cache in this process: buildpacks are
Python functions (FakeRunner), the store is in memory, the cache a directory.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.backends.memory import MemoryStore
from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.cnb.plan import PlanToml
from lifecycle.errors import ImageNotFound
from lifecycle.execution.runner import ProcessRequest
from lifecycle.launcher import LaunchPlan
from lifecycle.oci.image import Image
from lifecycle.phases.analyze import Analysis, analyze
from lifecycle.phases.build import Builder, BuildInputs
from lifecycle.phases.cache import LayerCache, NoCache
from lifecycle.phases.cache_writer import Cacher
from lifecycle.phases.export import Exporter, ExportInputs
from lifecycle.phases.export_layers import FindLayer
from lifecycle.phases.launch import launch_files, previous_launch_plan
from lifecycle.phases.restore import RestoreInputs, Restorer, RestoreReport
from lifecycle.platform.cache_dir import DirectoryCache

from .fakes import FakeBuildpacks, base_env, descriptor, write

BP = "a/bp"
Script = Callable[[Path, int], None]  # (layers dir of the buildpack, build number)


@dataclass
class Build:
    image: Image
    restored: RestoreReport
    exporter: Exporter
    warnings: list[str]


@dataclass
class Rebuilds:
    """Builds of one app in a row, each over the image and cache the one before left."""

    tmp_path: Path
    script: Script
    cache: LayerCache = field(default_factory=NoCache)
    store: MemoryStore = field(default_factory=MemoryStore)
    run_image: Image = field(default_factory=lambda: random_image(layers=1, seed=3))
    info: dict[str, object] = field(default_factory=dict)  # more buildpack.toml [buildpack] keys
    find_layers: tuple[FindLayer, ...] = ()
    count: int = 0

    def previous(self) -> Image | None:
        try:
            return self.store.image("app")
        except ImageNotFound:
            return None

    def build(self, app_files: dict[str, str] | None = None) -> Build:
        self.count += 1
        number, warnings = self.count, []
        fakes = FakeBuildpacks(self.tmp_path / f"build{number}", {BP: self._run(number)})
        fakes.descriptors[BP] = descriptor(BP, **self.info)
        for name, text in (app_files or {"main.sh": "echo hi"}).items():
            write(fakes.workspace.app / name, text)
        layers, group = fakes.workspace.layers, fakes.group(BP)
        analysis = analyze(self.previous(), "app", warnings.append)
        restored = Restorer(
            RestoreInputs(group, layers, analysis.metadata, self.cache, analysis.image, warn=warnings.append)
        ).restore()
        metadata = Builder(BuildInputs(group, PlanToml(), layers, base_env()), fakes.executor).build()
        exporter = Exporter(self._inputs(fakes, metadata, analysis))
        image = exporter.export()
        self.store.write(image, ["app"])
        Cacher(group, layers, exporter.writer, 1000, 1000, lambda _: None, warnings.append).cache(self.cache)
        return Build(image, restored, exporter, warnings)

    def _run(self, number: int) -> Callable[[Path, ProcessRequest], int]:
        def run(layers: Path, _: ProcessRequest) -> int:
            self.script(layers, number)
            return 0

        return run

    def _inputs(self, fakes: FakeBuildpacks, metadata: ConfigMetadata, analysis: Analysis) -> ExportInputs:
        layers, group = fakes.workspace.layers, fakes.group(BP)

        @functools.cache
        def previous_plan() -> LaunchPlan | None:
            if analysis.image is None or analysis.metadata is None:
                return None
            return previous_launch_plan(analysis.image, analysis.metadata)

        return ExportInputs(
            run_image=self.run_image,
            run_image_name="run",
            run_image_reference="run@" + self.run_image.digest,
            group=group,
            metadata=metadata,
            layers_dir=layers,
            app_dir=fakes.workspace.app,
            scratch=layers.parent / "blobs",
            launch_files=lambda meta: launch_files(meta, layers, group, previous_plan),
            previous_image=analysis.image,
            previous_metadata=analysis.metadata,
            find_layers=self.find_layers,
        )


def _types(build: bool, cache: bool, launch: bool) -> str:
    flags = {"build": build, "cache": cache, "launch": launch}
    return "[types]\n" + "".join(f"{name} = {str(value).lower()}\n" for name, value in flags.items())


def _label(image: Image) -> dict:  # type: ignore[type-arg]
    return json.loads(image.labels[LIFECYCLE_METADATA_LABEL])  # type: ignore[no-any-return]


# The spec's table (buildpack.md "Layer Types"): build, cache, launch -> where the metadata comes
# back from, and whether the contents come back (always from the cache, never from the image).
LAYER_TYPES = [
    (True, True, True, "app image", True),
    (True, True, False, "cache", True),
    (True, False, True, None, False),
    (True, False, False, None, False),
    (False, True, True, "app image", True),
    (False, True, False, "cache", True),
    (False, False, True, "app image", False),
    (False, False, False, None, False),
]


@pytest.mark.parametrize(("build", "cache", "launch", "metadata_from", "contents"), LAYER_TYPES)
def test_layer_types_table_through_restore_and_export(
    tmp_path: Path, build: bool, cache: bool, launch: bool, metadata_from: str | None, contents: bool
) -> None:
    """RES-2, RES-3, RES-4 then EXP-3, EXP-7, EXP-14: a buildpack keeps what came back."""
    seen: dict[str, object] = {}

    def script(layers: Path, number: int) -> None:
        toml, layer = layers / "L.toml", layers / "L"
        if number == 2:
            seen.update(toml=toml.read_text() if toml.exists() else None, dir=layer.is_dir())
            seen["file"] = (layer / "f").read_text() if (layer / "f").exists() else None
        if number == 1 or (not layer.is_dir() and not (launch and toml.exists())):
            write(layer / "f", "contents")  # made afresh, as a buildpack would when nothing came back
        write(toml, _types(build, cache, launch) + '[metadata]\nv = "1"\n')

    rebuilds = Rebuilds(tmp_path, script, DirectoryCache(tmp_path / "cache", "app"))
    first = rebuilds.build()
    second = rebuilds.build()

    identifier = f"{BP}:L"
    if metadata_from is None:
        assert seen["toml"] is None and identifier not in second.restored.metadata
    else:
        assert seen["toml"] == '[metadata]\nv = "1"\n'  # RES-2: [metadata] only, never [types]
        assert tomllib.loads(str(seen["toml"])) == {"metadata": {"v": "1"}}
    assert seen["dir"] is contents and (seen["file"] == "contents") is contents  # RES-3, RES-4
    assert (identifier in second.restored.contents) is contents
    assert second.image.digest == first.image.digest  # same inputs, same image (EXP-6, EXP-7)
    assert second.warnings == []
    layers = _label(second.image)["buildpacks"][0]["layers"]
    if launch:
        assert layers["L"] == {
            "sha": layers["L"]["sha"],
            "data": {"v": "1"},
            "build": build,
            "launch": True,
            "cache": cache,
        }
        assert identifier in second.exporter.reused  # by reference when there was no dir
    else:
        assert "L" not in layers
    cached = rebuilds.cache.metadata().layers_of(BP)
    assert ("L" in cached) is cache


def test_launch_only_layer_is_reused_by_reference_with_its_launch_plan(tmp_path: Path) -> None:
    """EXP-3: no dir, the old layer by its SHA; its env reaches the new launch plan unread from disk."""

    def script(layers: Path, number: int) -> None:
        if number == 1:
            write(layers / "tool" / "env.launch" / "TOOL.override", "yes")
        write(layers / "tool.toml", _types(False, False, True))

    rebuilds = Rebuilds(tmp_path, script)
    first = rebuilds.build()
    reads = rebuilds.store.stats.layer_opens
    second = rebuilds.build()
    assert second.image.digest == first.image.digest
    assert f"{BP}:tool" in second.exporter.reused
    assert rebuilds.store.stats.layer_opens - reads == 1  # the config layer, for the old launch plan
    assert not (tmp_path / "build2" / "layers" / "a_bp" / "tool").exists()


def test_cache_sha_not_the_image_sha_removes_dir_and_toml(tmp_path: Path) -> None:
    """RES-3: the cache holds another version of a launch+cache layer than the image: both go."""

    def script(layers: Path, number: int) -> None:
        write(layers / "L" / "f", "one" if number == 1 else "two")
        write(layers / "L.toml", _types(False, True, True))

    cache = DirectoryCache(tmp_path / "cache", "app")
    rebuilds = Rebuilds(tmp_path, script, cache)
    rebuilds.build()
    stale = cache.metadata()
    rebuilds.build()  # image and cache now hold "two"
    cache.save(stale, [])  # the cache goes back to "one" (a concurrent build, a restored backup)
    third = rebuilds.build()
    assert third.restored.removed == [f"{BP}:L"] and third.restored.contents == []


def test_without_previous_image_launch_cache_layers_come_from_the_cache(tmp_path: Path) -> None:
    """PR#1346 (Platform >= 0.14): a new tag of the app hits the cache for its launch+cache layers."""
    seen = []

    def script(layers: Path, number: int) -> None:
        seen.append((layers / "L.toml").exists() and (layers / "L" / "f").exists())
        write(layers / "L" / "f", "contents")
        write(layers / "L.toml", _types(False, True, True))

    cache = DirectoryCache(tmp_path / "cache", "app")
    Rebuilds(tmp_path / "v1", script, cache).build()
    other_tag = Rebuilds(tmp_path / "v2", script, cache).build()
    assert seen == [False, True]
    assert other_tag.restored.contents == [f"{BP}:L"]


def test_store_toml_comes_back_even_when_layers_are_skipped(tmp_path: Path) -> None:
    """RES-1, RES-5 (--clear-cache restores store.toml but no layers)."""
    seen = []

    def script(layers: Path, number: int) -> None:
        store = layers / "store.toml"
        seen.append((sorted(p.name for p in layers.iterdir()), store.read_text() if store.exists() else ""))
        write(store, f'[metadata]\nbuilds = "{number}"\n')
        write(layers / "L" / "f", "x")
        write(layers / "L.toml", _types(False, False, True))

    rebuilds = Rebuilds(tmp_path, script)
    rebuilds.build()
    rebuilds.build()
    assert seen[1] == (["L.toml", "store.toml"], '[metadata]\nbuilds = "1"\n')  # BLD-15 through the label
    previous = analyze(rebuilds.previous(), "app", lambda _: None)
    layers = tmp_path / "skip" / "a_bp"
    layers.parent.mkdir()
    group = FakeBuildpacks(tmp_path / "fake", {BP: lambda *_: 0}).group(BP)
    Restorer(RestoreInputs(group, layers.parent, previous.metadata, skip_layers=True)).restore()
    assert (layers / "store.toml").read_text() == '[metadata]\nbuilds = "2"\n'
    assert sorted(p.name for p in layers.iterdir()) == ["store.toml"]


def test_layer_sbom_of_a_reused_launch_layer_comes_back(tmp_path: Path) -> None:
    """RES-4: launch-only layers get their toml and their layer SBOM, not launch-level SBOMs."""
    seen = []

    def script(layers: Path, number: int) -> None:
        seen.append(sorted(p.name for p in layers.iterdir()))
        if number == 1:
            write(layers / "L" / "f", "x")
            write(layers / "L.sbom.cdx.json", '{"layer": 1}')
            write(layers / "launch.sbom.cdx.json", '{"launch": 1}')
        write(layers / "L.toml", _types(False, False, True))

    rebuilds = Rebuilds(tmp_path, script, info={"sbom-formats": ["application/vnd.cyclonedx+json"]})
    rebuilds.build()
    assert rebuilds.build().warnings == []
    assert seen[1] == ["L.sbom.cdx.json", "L.toml"]
