"""The build cache as the restore and export phases see it (RES-2, RES-3, RES-6, EXP-14).

A cache holds cache=true layers as uncompressed tars keyed by diffID, plus one metadata
document in the lifecycle's format (RES-6)::

    {"sbom": {"sha": ...}, "buildpacks": [{"key", "version", "layers": {name: {sha, data, ...}}}]}

``LayerCache`` is the seam: the platform picks a directory on the host or an image in any
``ImageStore``; ``NoCache`` stands in when there is none. Every cache problem is a
``CacheError``, which the phases turn into a warning and a cache miss, never a failed build
or a wrong image (RES-6, EXP-14).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from lifecycle.cnb.labels import BuildpackLayersLabel, LayerLabel, LayerSha
from lifecycle.errors import PybuildError
from lifecycle.oci.layer import Layer

__all__ = [
    "CACHE_METADATA_LABEL",
    "CacheError",
    "CacheLayer",
    "CacheMetadata",
    "LayerCache",
    "NoCache",
    "read_cache_metadata",
]

CACHE_METADATA_LABEL = "io.buildpacks.lifecycle.cache.metadata"
"""The metadata's file name in a directory cache and its label on a cache image (RES-6)."""


class CacheError(PybuildError):
    """A cache that cannot be read or written; callers warn and carry on without it."""


class CacheMetadata(BaseModel):
    """What the cache holds: every cache=true layer of the last build, by buildpack (RES-6)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    sbom: LayerSha | None = None
    buildpacks: tuple[BuildpackLayersLabel, ...] = ()

    def layers_of(self, buildpack_id: str) -> Mapping[str, LayerLabel]:
        """The cached layers of one buildpack, by layer name."""
        for entry in self.buildpacks:
            if entry.key == buildpack_id:
                return entry.layers
        return {}

    def diff_ids(self) -> list[str]:
        """Every layer the metadata refers to, each once, in metadata order (SBOM last)."""
        shas = [layer.sha for entry in self.buildpacks for layer in entry.layers.values()]
        if self.sbom is not None:
            shas.append(self.sbom.sha)
        return list(dict.fromkeys(sha for sha in shas if sha))

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def parse(cls, raw: str | bytes, where: str) -> CacheMetadata:
        """Parse the metadata JSON; a ``CacheError`` naming ``where`` if it is not valid."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            place = ".".join(str(p) for p in first["loc"]) or "document"
            raise CacheError("read cache metadata", f"{where}: {place}: {first['msg']}") from None


@dataclass(frozen=True)
class CacheLayer:
    """A layer the exporter hands to a cache: the tar on disk and, on demand, its gzip blob."""

    diff_id: str
    tar: Path
    compressed: Callable[[], Layer]


class LayerCache(Protocol):
    """Where cache=true layers live between builds."""

    @property
    def name(self) -> str:
        """How messages name this cache."""
        ...

    def metadata(self) -> CacheMetadata:
        """The last build's metadata (empty when the cache is new); ``CacheError`` if unreadable."""
        ...

    def has(self, diff_id: str) -> bool:
        """Whether the cache holds the layer with this diffID."""
        ...

    def open_layer(self, diff_id: str) -> BinaryIO:
        """The layer's uncompressed tar; ``CacheError`` if it cannot be opened."""
        ...

    def discard(self, diff_id: str) -> None:
        """Stop trusting a layer that failed to restore: the next save writes it afresh."""
        ...

    def save(self, metadata: CacheMetadata, added: Sequence[CacheLayer]) -> None:
        """Commit: keep the layers ``metadata`` names (held, or in ``added``), drop the rest."""
        ...


class NoCache:
    """No cache: nothing is restored, nothing is kept."""

    name = "no cache"

    def metadata(self) -> CacheMetadata:
        return CacheMetadata()

    def has(self, diff_id: str) -> bool:
        return False

    def open_layer(self, diff_id: str) -> BinaryIO:
        raise CacheError("read cached layer", f"{diff_id}: there is no cache")

    def discard(self, diff_id: str) -> None:
        return None

    def save(self, metadata: CacheMetadata, added: Sequence[CacheLayer]) -> None:
        return None


def read_cache_metadata(cache: LayerCache, warn: Callable[[str], None]) -> CacheMetadata:
    """The cache's metadata, or empty metadata and a warning when it cannot be read (RES-6)."""
    try:
        return cache.metadata()
    except CacheError as exc:
        warn(f"ignoring the cache {cache.name}: {exc}")
        return CacheMetadata()
