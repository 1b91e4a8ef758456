"""The restore phase: store.toml, layer metadata and cached layer contents (RES-1..5).

Per layer it follows the spec's layer types table (buildpack.md, "Layer Types"):

| build | cache | launch | `<layer>.toml` `[metadata]` from | contents from      |
|-------|-------|--------|----------------------------------|--------------------|
| true  | true  | true   | the previous image *             | the cache *        |
| true  | true  | false  | the cache                        | the cache          |
| true  | false | true   | -                                | -                  |
| true  | false | false  | -                                | -                  |
| false | true  | true   | the previous image *             | the cache *        |
| false | true  | false  | the cache                        | the cache          |
| false | false | true   | the previous image               | - (reused at export, EXP-3) |
| false | false | false  | -                                | -                  |

\\* only if the cache still has the layer (RES-2), and its contents only if the cache's SHA
is the one the image recorded (RES-3): otherwise the dir and the toml go. With no previous
image at all, launch+cache layers come back from the cache (lifecycle PR#1346, Platform
≥0.14), so a new tag of an app hits its cache. Restored tomls never carry ``[types]``: a
buildpack that keeps a layer says so again (RES-2). A cache that cannot be read only warns.

Restore writes on the host into a layers dir that `bin/detect` could write into before it: a
symbolic link there is replaced or removed, never followed (`lifecycle.fsutil`), and a
buildpack's layers dir that is a link is refused (exit 42).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from lifecycle.appimage import AppImage
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import check_layer_name, escape_id
from lifecycle.cnb.labels import BuildpackLayersLabel, LayerLabel, LifecycleMetadata
from lifecycle.errors import ExitCode, ImageError, PybuildError
from lifecycle.fsutil import make_dirs, remove_tree, write_replacing
from lifecycle.oci.image import Image
from lifecycle.phases.cache import CacheError, CacheMetadata, LayerCache, NoCache, read_cache_metadata
from lifecycle.phases.cache_extract import extract_layer
from lifecycle.phases.restore_sbom import restore_sboms

__all__ = ["RestoreInputs", "RestoreReport", "Restorer"]

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: say nothing."""


@dataclass(frozen=True)
class RestoreInputs:
    group: tuple[BuildpackDescriptor, ...]
    layers_dir: Path
    previous: LifecycleMetadata | None  # the previous image's label; None when there is none
    cache: LayerCache = field(default_factory=NoCache)
    previous_image: Image | None = None  # for the layer SBOMs of its launch layers (RES-4)
    skip_layers: bool = False  # RES-5: only store.toml (--clear-cache)
    launch_cache_without_image: bool = True  # Platform >= 0.14 (PR#1346)
    log: Log = _quiet
    warn: Log = _quiet


@dataclass
class RestoreReport:
    """Identifiers (``<buildpack id>:<layer>``) by what restore did with them."""

    metadata: list[str] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Layer:
    buildpack: BuildpackDescriptor
    name: str
    recorded: LayerLabel  # the label that brought its metadata back, with its SHA
    source: str  # "app image" or "cache"

    @property
    def identifier(self) -> str:
        return f"{self.buildpack.buildpack.id}:{self.name}"


class Restorer:
    def __init__(self, inputs: RestoreInputs, workers: int = 4) -> None:
        self.inputs = inputs
        self.workers = workers
        self.report = RestoreReport()

    def restore(self) -> RestoreReport:
        ins = self.inputs
        cache_meta = CacheMetadata() if ins.skip_layers else read_cache_metadata(ins.cache, ins.warn)
        restored: list[_Layer] = []
        contents: list[tuple[_Layer, str]] = []
        for bp in ins.group:
            self._store_toml(bp)
            if ins.skip_layers:
                continue
            for layer in self._plan(bp, cache_meta):
                if self._write_toml(layer):
                    restored.append(layer)
                    contents += self._contents(layer, cache_meta)
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(lambda job: self._restore_contents(*job), contents))
        kept = [(r.buildpack, r.name) for r in restored if r.identifier in self.report.metadata]
        if not ins.skip_layers:
            restore_sboms(ins.layers_dir, kept, self._sbom_sources(cache_meta))
        return self.report

    # -- RES-1 ---------------------------------------------------------------------
    def _store_toml(self, bp: BuildpackDescriptor) -> None:
        entry = self._previous_entry(bp.buildpack.id)
        store = entry.store if entry is not None else None
        if store is not None and store.metadata:
            try:
                text = tomli_w.dumps({"metadata": store.metadata})
            except (TypeError, ValueError) as exc:
                self.inputs.warn(f"not restoring store.toml of {bp.buildpack.id}: {exc}")
                return
            self._write(bp, "store.toml", text)

    # -- RES-2 ---------------------------------------------------------------------
    def _plan(self, bp: BuildpackDescriptor, cache_meta: CacheMetadata) -> list[_Layer]:
        """The layers whose metadata comes back, from the image first, then from the cache."""
        cached = cache_meta.layers_of(bp.buildpack.id)
        entry = self._previous_entry(bp.buildpack.id)
        planned = {}
        for name, label in sorted(entry.layers.items()) if entry is not None else ():
            if not label.launch or (label.build and not label.cache):
                continue
            if label.cache and not (name in cached and cached[name].cache):
                continue
            planned[name] = _Layer(bp, name, label, "app image")
        for name, label in sorted(cached.items()):
            if not label.cache or name in planned:
                continue
            if label.launch and not self._launch_from_cache():
                continue
            planned[name] = _Layer(bp, name, label, "cache")
        return list(planned.values())

    def _launch_from_cache(self) -> bool:
        """PR#1346: with no previous image, launch+cache layers come back from the cache."""
        return self.inputs.previous is None and self.inputs.launch_cache_without_image

    def _write_toml(self, layer: _Layer) -> bool:
        """``<layer>.toml`` with ``[metadata]`` only, never ``[types]`` (RES-2)."""
        try:
            check_layer_name(layer.name)
            data = layer.recorded.data
            text = tomli_w.dumps({"metadata": data}) if isinstance(data, dict) and data else ""
        except (TypeError, ValueError) as exc:
            self.inputs.warn(f"not restoring metadata for '{layer.identifier}': {exc}")
            return False
        self._write(layer.buildpack, f"{layer.name}.toml", text)
        self.inputs.log(f"Restoring metadata for '{layer.identifier}' from {layer.source}")
        self.report.metadata.append(layer.identifier)
        return True

    # -- RES-3, RES-4 ----------------------------------------------------------------
    def _contents(self, layer: _Layer, cache_meta: CacheMetadata) -> list[tuple[_Layer, str]]:
        """The cached contents to restore for ``layer``: none for launch-only layers (RES-4)."""
        cached = cache_meta.layers_of(layer.buildpack.buildpack.id).get(layer.name)
        if cached is None or not cached.cache:
            return []
        if cached.sha != layer.recorded.sha or not cached.sha:
            self.inputs.log(f"Removing '{layer.identifier}', wrong sha")
            self._remove(layer)
            return []
        self.inputs.log(f"Restoring data for '{layer.identifier}' from cache")
        return [(layer, cached.sha)]

    def _restore_contents(self, layer: _Layer, diff_id: str) -> None:
        esc = escape_id(layer.buildpack.buildpack.id)
        dest = self.inputs.layers_dir / esc / layer.name
        remove_tree(dest)
        try:
            with self.inputs.cache.open_layer(diff_id) as stream:
                extract_layer(stream, f"/layers/{esc}/{layer.name}", dest, diff_id)
        except CacheError as exc:
            self.inputs.warn(f"not restoring '{layer.identifier}' from {self.inputs.cache.name}: {exc}")
            self.inputs.cache.discard(diff_id)
            self._remove(layer)
            return
        self.report.contents.append(layer.identifier)

    def _remove(self, layer: _Layer) -> None:
        """RES-3: without its contents a cached layer goes entirely, dir and toml."""
        bp_dir = self._bp_dir(layer.buildpack)
        remove_tree(bp_dir / layer.name)
        (bp_dir / f"{layer.name}.toml").unlink(missing_ok=True)
        self.report.removed.append(layer.identifier)
        if layer.identifier in self.report.metadata:
            self.report.metadata.remove(layer.identifier)

    # -- SBOMs (RES-4) -----------------------------------------------------------------
    def _sbom_sources(self, cache_meta: CacheMetadata) -> dict[str, Callable[[Path], None]]:
        """Unpackers of the previous image's launch SBOM layer and the cache's SBOM layer."""
        sources: dict[str, Callable[[Path], None]] = {}
        previous, image = self.inputs.previous, self.inputs.previous_image
        if previous is not None and previous.sbom is not None and image is not None:
            sha = previous.sbom.sha
            sources["launch"] = lambda dest: self._unpack_image_layer(image, sha, "/layers/sbom/launch", dest)
        if cache_meta.sbom is not None:
            sha = cache_meta.sbom.sha
            sources["cache"] = lambda dest: self._unpack_cache_layer(sha, "/layers/sbom/cache", dest)
        return sources

    def _unpack_image_layer(self, image: Image, sha: str, prefix: str, dest: Path) -> None:
        try:
            with AppImage(image).layer(sha).uncompressed() as stream:
                extract_layer(stream, prefix, dest, sha)
        except (ImageError, CacheError, OSError) as exc:
            self.inputs.warn(f"not restoring layer SBOMs from the previous image: {exc}")

    def _unpack_cache_layer(self, sha: str, prefix: str, dest: Path) -> None:
        try:
            with self.inputs.cache.open_layer(sha) as stream:
                extract_layer(stream, prefix, dest, sha)
        except (CacheError, OSError) as exc:
            self.inputs.warn(f"not restoring layer SBOMs from the cache: {exc}")
            self.inputs.cache.discard(sha)

    # -- helpers -----------------------------------------------------------------------
    def _write(self, bp: BuildpackDescriptor, name: str, text: str) -> None:
        """Replace ``<layers>/<id>/<name>`` (a link left there too), never writing through a link."""
        try:
            bp_dir = make_dirs(self.inputs.layers_dir, escape_id(bp.buildpack.id))
            write_replacing(bp_dir / name, text.encode())
        except OSError as exc:
            raise PybuildError(
                f"restore {name} of {bp.buildpack.id}", exc, exit_code=ExitCode.RESTORE
            ) from None

    def _bp_dir(self, bp: BuildpackDescriptor) -> Path:
        return self.inputs.layers_dir / escape_id(bp.buildpack.id)

    def _previous_entry(self, buildpack_id: str) -> BuildpackLayersLabel | None:
        for entry in self.inputs.previous.buildpacks if self.inputs.previous else ():
            if entry.key == buildpack_id:
                return entry
        return None
