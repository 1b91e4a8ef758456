"""The two labels of a buildpackage (Distribution spec, "Buildpackage"), in pack's JSON shapes.

- ``io.buildpacks.buildpackage.metadata``: the entrypoint buildpack,
  ``{"id", "name"?, "version", "description"?, "homepage"?, "stacks"?, "targets"?}``;
- ``io.buildpacks.buildpack.layers``: every packaged buildpack by id, then version,
  ``{"<id>": {"<version>": {"api", "stacks"?, "targets"?, "order"?, "layerDiffID", "homepage"?,
  "name"?}}}``, the key order pack (Go's encoding/json) writes: struct fields in declaration
  order, map keys sorted. Keys marked ``?`` are left out when empty, as Go's ``omitempty``.

Builders carry the same ``io.buildpacks.buildpack.layers`` label, so these models serve them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from lifecycle.cnb.buildpack import BuildpackDescriptor, Stack, Target
from lifecycle.cnb.order import OrderGroup
from lifecycle.errors import ImageError

__all__ = [
    "BUILDPACKAGE_METADATA_LABEL",
    "BUILDPACK_LAYERS_LABEL",
    "BuildpackLayerInfo",
    "BuildpackLayers",
    "LabelDistro",
    "LabelOrderGroup",
    "LabelOrderRef",
    "LabelStack",
    "LabelTarget",
    "PackageMetadata",
    "layer_info",
    "layers_json",
    "package_metadata",
    "parse_layers",
    "parse_metadata",
]

BUILDPACKAGE_METADATA_LABEL = "io.buildpacks.buildpackage.metadata"
BUILDPACK_LAYERS_LABEL = "io.buildpacks.buildpack.layers"


class _LabelModel(BaseModel):
    """Explicit aliases; unknown keys kept; ``None`` means "left out" (``to_json`` drops it)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="allow")

    def to_json(self) -> str:
        """Compact JSON in field order, empty optional keys left out."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


class LabelStack(_LabelModel):
    """A legacy stack: ``{"id", "mixins"?}``."""

    id: str
    mixins: tuple[str, ...] | None = None


class LabelDistro(_LabelModel):
    """A target's distribution: ``{"name"?, "version"?}``."""

    name: str | None = None
    version: str | None = None


class LabelTarget(_LabelModel):
    """pack's ``dist.Target``: ``os`` and ``arch`` are always written, even empty."""

    os: str = ""
    arch: str = ""
    variant: str | None = None
    distros: tuple[LabelDistro, ...] | None = None


class LabelOrderRef(_LabelModel):
    """A composite's order entry: ``{"id", "version", "optional"?}``."""

    id: str
    version: str
    optional: bool | None = None


class LabelOrderGroup(_LabelModel):
    """One ``[[order]]`` group: ``{"group": [...]}``."""

    group: tuple[LabelOrderRef, ...] = ()


class BuildpackLayerInfo(_LabelModel):
    """One buildpack of ``io.buildpacks.buildpack.layers``: where its layer is and what it declares."""

    api: str
    stacks: tuple[LabelStack, ...] | None = None
    targets: tuple[LabelTarget, ...] | None = None
    order: tuple[LabelOrderGroup, ...] | None = None
    layer_diff_id: str = Field(alias="layerDiffID")
    homepage: str | None = None
    name: str | None = None


class PackageMetadata(_LabelModel):
    """``io.buildpacks.buildpackage.metadata``: the entrypoint buildpack of the package."""

    id: str
    name: str | None = None
    version: str
    description: str | None = None
    homepage: str | None = None
    stacks: tuple[LabelStack, ...] | None = None
    targets: tuple[LabelTarget, ...] | None = None

    @property
    def ref(self) -> str:
        """``id@version``."""
        return f"{self.id}@{self.version}"


BuildpackLayers = dict[str, dict[str, BuildpackLayerInfo]]
"""``id -> version -> layer info``."""

_LAYERS = TypeAdapter(BuildpackLayers)


def _stacks(stacks: Iterable[Stack]) -> tuple[LabelStack, ...] | None:
    converted = tuple(LabelStack(id=s.id, mixins=s.mixins or None) for s in stacks)
    return converted or None


def _targets(targets: Iterable[Target]) -> tuple[LabelTarget, ...] | None:
    converted = tuple(
        LabelTarget(
            os=t.os or "",
            arch=t.arch or "",
            variant=t.variant,
            distros=tuple(LabelDistro(name=d.name, version=d.version) for d in t.distros) or None,
        )
        for t in targets
    )
    return converted or None


def _order(order: Iterable[OrderGroup]) -> tuple[LabelOrderGroup, ...] | None:
    groups = tuple(
        LabelOrderGroup(
            group=tuple(
                LabelOrderRef(id=e.id, version=e.version, optional=e.optional or None) for e in g.group
            )
        )
        for g in order
    )
    return groups or None


def layer_info(descriptor: BuildpackDescriptor, diff_id: str) -> BuildpackLayerInfo:
    """The layers-label entry of one buildpack whose layer has ``diff_id``."""
    info = descriptor.buildpack
    return BuildpackLayerInfo(
        api=str(descriptor.api),
        stacks=_stacks(descriptor.stacks),
        targets=_targets(descriptor.targets),
        order=_order(descriptor.order),
        layer_diff_id=diff_id,
        homepage=info.homepage or None,
        name=info.name or None,
    )


def package_metadata(top: BuildpackDescriptor, stacks: Iterable[Stack]) -> PackageMetadata:
    """The metadata label for entrypoint ``top``; ``stacks`` are those every buildpack supports."""
    info = top.buildpack
    return PackageMetadata(
        id=info.id,
        name=info.name or None,
        version=info.version,
        description=info.description or None,
        homepage=info.homepage or None,
        stacks=_stacks(stacks),
        targets=None if top.is_composite else _targets(top.targets),
    )


def layers_json(layers: Mapping[str, Mapping[str, BuildpackLayerInfo]]) -> str:
    """The layers label: ids, then versions, in sorted order (Go sorts map keys)."""
    parts = []
    for bp_id in sorted(layers):
        versions = layers[bp_id]
        inner = ",".join(f"{_key(v)}:{versions[v].to_json()}" for v in sorted(versions))
        parts.append(f"{_key(bp_id)}:{{{inner}}}")
    return "{" + ",".join(parts) + "}"


def _key(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def parse_metadata(text: str, what: str) -> PackageMetadata:
    """The metadata label of ``what``; a one-line ImageError when it is not the spec's shape."""
    try:
        return PackageMetadata.model_validate_json(text)
    except ValidationError as exc:
        raise ImageError(f"read {what}", f"label {BUILDPACKAGE_METADATA_LABEL}: {_first(exc)}") from None


def parse_layers(text: str, what: str) -> BuildpackLayers:
    """The layers label of ``what``; a one-line ImageError when it is not the spec's shape."""
    try:
        return _LAYERS.validate_json(text)
    except ValidationError as exc:
        raise ImageError(f"read {what}", f"label {BUILDPACK_LAYERS_LABEL}: {_first(exc)}") from None


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
