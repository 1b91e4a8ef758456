"""Export to the cache: every cache=true layer, the cache SBOMs and the metadata (EXP-14).

Layers are keyed by diffID: one the cache holds already is kept, not written again. A
launch+cache layer is tarred once for the image and the cache (the exporter's
``LayerWriter``). A cache=true layer without a dir is skipped with a warning, as the
lifecycle does, and every cache failure is a warning: the image is already written.

A cache layer holding a build secret is the exception: ``tar_layers`` tars every cache layer
before the image is written (the writer keeps the tars for ``cache``), so its
``SecretInLayer`` fails the build while the previous image is still tagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.labels import BuildpackLayersLabel, LayerLabel, LayerSha
from lifecycle.cnb.layers import LayerToml, load_layer_toml
from lifecycle.errors import PybuildError
from lifecycle.phases.cache import CacheError, CacheLayer, CacheMetadata, LayerCache
from lifecycle.phases.export_layers import Fill, LayerWriter, SecretInLayer, TarredLayer, dir_fill

__all__ = ["CacheReport", "Cacher"]

Log = Callable[[str], None]
_SBOM_ID = "buildpacksio/lifecycle:cache.sbom"


@dataclass
class CacheReport:
    """Identifiers of the layers the cache kept as they were and of those it was given."""

    reused: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    saved: bool = False


@dataclass(frozen=True)
class Cacher:
    group: tuple[BuildpackDescriptor, ...]
    layers_dir: Path
    writer: LayerWriter
    uid: int
    gid: int
    log: Log
    warn: Log

    def cache(self, cache: LayerCache) -> CacheReport:
        report = CacheReport()
        added: list[CacheLayer] = []
        entries = [self._buildpack(bp, cache, report, added) for bp in self.group]
        sbom = self._sbom(cache, report, added)
        try:
            cache.save(CacheMetadata(sbom=sbom, buildpacks=tuple(entries)), added)
        except CacheError as exc:
            self.warn(f"failed to save {cache.name}: {exc}")
            return report
        report.saved = True
        return report

    def tar_layers(self) -> None:
        """Tar every cache layer now (see the module doc); other failures wait for ``cache``."""
        for bp in self.group:
            for name, _, fill in self._layers(bp, lambda message: None):
                self._tar_early(f"{bp.buildpack.id}:{name}", fill)
        source = self.layers_dir / "sbom" / "cache"
        if source.is_dir():
            self._tar_early(_SBOM_ID, dir_fill(source, "/layers/sbom/cache", self.uid, self.gid))

    def _tar_early(self, identifier: str, fill: Fill) -> None:
        try:
            self.writer.tar(identifier, fill, self.uid, self.gid)
        except SecretInLayer:
            raise
        except (OSError, PybuildError):
            pass  # ``cache`` meets it again and warns (EXP-14)

    def _layers(self, bp: BuildpackDescriptor, warn: Log) -> Iterator[tuple[str, LayerToml, Fill]]:
        """The buildpack's cache=true layers with contents: name, ``<layer>.toml`` and tar fill."""
        esc = escape_id(bp.buildpack.id)
        bp_dir = self.layers_dir / esc
        for path in sorted(bp_dir.glob("*.toml")) if bp_dir.is_dir() else ():
            name = path.stem
            if name in ("launch", "build", "store"):
                continue
            try:
                toml = load_layer_toml(path)
            except PybuildError as exc:
                warn(f"failed to cache layer '{bp.buildpack.id}:{name}': {exc}")
                continue
            if not toml.types.cache:
                continue
            if not (bp_dir / name).is_dir():
                warn(f"failed to cache layer '{bp.buildpack.id}:{name}': it has no contents dir")
                continue
            yield name, toml, dir_fill(bp_dir / name, f"/layers/{esc}/{name}", self.uid, self.gid)

    def _buildpack(
        self, bp: BuildpackDescriptor, cache: LayerCache, report: CacheReport, added: list[CacheLayer]
    ) -> BuildpackLayersLabel:
        layers = {}
        for name, toml, fill in self._layers(bp, self.warn):
            tarred = self.writer.tar(f"{bp.buildpack.id}:{name}", fill, self.uid, self.gid)
            self._offer(tarred, cache, report, added)
            layers[name] = LayerLabel(
                sha=tarred.diff_id,
                data=toml.metadata,
                build=toml.types.build,
                launch=toml.types.launch,
                cache=True,
            )
        return BuildpackLayersLabel(key=bp.buildpack.id, version=bp.buildpack.version, layers=layers)

    def _sbom(self, cache: LayerCache, report: CacheReport, added: list[CacheLayer]) -> LayerSha | None:
        """``<layers>/sbom/cache``: the SBOMs of cache layers, one layer (EXP-14)."""
        source = self.layers_dir / "sbom" / "cache"
        if not source.is_dir():
            return None
        fill = dir_fill(source, "/layers/sbom/cache", self.uid, self.gid)
        tarred = self.writer.tar(_SBOM_ID, fill, self.uid, self.gid)
        self._offer(tarred, cache, report, added)
        return LayerSha(sha=tarred.diff_id)

    def _offer(
        self, tarred: TarredLayer, cache: LayerCache, report: CacheReport, added: list[CacheLayer]
    ) -> None:
        if cache.has(tarred.diff_id):
            self.log(f"Reusing cache layer '{tarred.identifier}'")
            report.reused.append(tarred.identifier)
            return
        self.log(f"Adding cache layer '{tarred.identifier}'")
        report.added.append(tarred.identifier)
        added.append(CacheLayer(tarred.diff_id, tarred.path, lambda: self.writer.layer(tarred).layer))
