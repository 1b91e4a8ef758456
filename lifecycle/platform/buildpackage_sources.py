"""The buildpacks inside a buildpackage image (or builder-like image), as directories on this machine.

The labels say which buildpacks a package holds and which layer (by diffID) holds each
(``io.buildpacks.buildpack.layers``) and which one is the entrypoint
(``io.buildpacks.buildpackage.metadata``). Each layer is extracted once, with the same safe
extraction as root filesystems, into ``$PYBUILD_HOME/cache/buildpacks/<diffID hex>`` and reused by
every later build; a killed extraction leaves nothing under that name. Only the layers of
buildpacks asked for are read, so a registry package costs one download per new layer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lifecycle.cnb.buildpack import load_buildpack_toml
from lifecycle.cnb.ids import escape_id
from lifecycle.errors import ImageError
from lifecycle.execution.rootfs import extract_rootfs
from lifecycle.oci.digest import hex_part
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage_labels import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    BuildpackLayers,
    parse_layers,
    parse_metadata,
)

__all__ = ["PackagedBuildpack", "buildpack_cache", "extracted_layer", "labelled_sources", "package_sources"]


@dataclass(frozen=True)
class PackagedBuildpack(BuildpackSource):
    """A buildpack read from a package layer: ``layer`` is that layer's handle, so a package or
    builder made from it reuses the layer (no new tar, no new upload) instead of re-layering ``path``.
    A flattened package has several buildpacks in one layer; they share the handle."""

    layer: Layer


def buildpack_cache(home: Path) -> Path:
    """Where extracted buildpack layers are kept, by diffID."""
    return home / "cache" / "buildpacks"


def package_sources(image: Image, what: str, cache_dir: Path) -> list[PackagedBuildpack]:
    """Every buildpack of the package ``image``: the entrypoint first, then the rest in layer order."""
    labels = image.labels
    if BUILDPACK_LAYERS_LABEL not in labels:
        raise ImageError(
            f"read buildpackage {what}", f"it has no {BUILDPACK_LAYERS_LABEL} label (not a buildpackage)"
        )
    if BUILDPACKAGE_METADATA_LABEL not in labels:
        raise ImageError(
            f"read buildpackage {what}",
            f"it has no {BUILDPACKAGE_METADATA_LABEL} label (a builder? name its buildpacks by ID@VERSION)",
        )
    entry = parse_metadata(labels[BUILDPACKAGE_METADATA_LABEL], what)
    layers = parse_layers(labels[BUILDPACK_LAYERS_LABEL], what)
    if entry.version not in layers.get(entry.id, {}):
        raise ImageError(
            f"read buildpackage {what}",
            f"its entrypoint {entry.ref} is not in the {BUILDPACK_LAYERS_LABEL} label (repackage it)",
        )
    return [
        _source(image, bp_id, version, layers, what, cache_dir)
        for bp_id, version in _entries(image, layers, entry.ref)
    ]


def labelled_sources(image: Image, what: str, cache_dir: Path) -> list[PackagedBuildpack]:
    """Every buildpack the ``io.buildpacks.buildpack.layers`` label of ``image`` names (a builder
    image has no entrypoint), by the position of its layer."""
    layers = parse_layers(image.labels.get(BUILDPACK_LAYERS_LABEL, "{}"), what)
    position = {diff_id: i for i, diff_id in enumerate(image.diff_ids)}
    found = sorted(
        (position.get(info.layer_diff_id, len(position)), bp_id, version)
        for bp_id, versions in layers.items()
        for version, info in versions.items()
    )
    return [_source(image, bp_id, version, layers, what, cache_dir) for _, bp_id, version in found]


def _entries(image: Image, layers: BuildpackLayers, top: str) -> list[tuple[str, str]]:
    """(id, version) pairs: ``top`` first, the others by the position of their layer, then by name."""
    position = {diff_id: i for i, diff_id in enumerate(image.diff_ids)}
    others = [
        (position.get(info.layer_diff_id, len(position)), bp_id, version)
        for bp_id, versions in layers.items()
        for version, info in versions.items()
        if f"{bp_id}@{version}" != top
    ]
    top_id, _, top_version = top.partition("@")
    return [(top_id, top_version), *((bp_id, version) for _, bp_id, version in sorted(others))]


def _source(
    image: Image, bp_id: str, version: str, layers: BuildpackLayers, what: str, cache_dir: Path
) -> PackagedBuildpack:
    diff_id = layers[bp_id][version].layer_diff_id
    layer = image.layer_by_diff_id(diff_id)
    if layer is None:
        raise ImageError(
            f"read buildpackage {what}", f"{bp_id}@{version} names layer {diff_id}, which it lacks"
        )
    root = extracted_layer(layer, cache_dir) / "cnb" / "buildpacks"
    bp_dir = root / escape_id(bp_id) / version
    if not bp_dir.is_dir():  # some writers keep the "/" of the ID as a directory
        bp_dir = root / bp_id / version
    if not (bp_dir / "buildpack.toml").is_file():
        raise ImageError(
            f"read buildpackage {what}",
            f"layer {diff_id[:19]} has no /cnb/buildpacks/{escape_id(bp_id)}/{version}/buildpack.toml",
        )
    descriptor = load_buildpack_toml(bp_dir / "buildpack.toml")
    if descriptor.ref != f"{bp_id}@{version}":
        raise ImageError(
            f"read buildpackage {what}",
            f"the label names {bp_id}@{version} but its buildpack.toml says {descriptor.ref}",
        )
    return PackagedBuildpack(descriptor, bp_dir, layer)


def extracted_layer(layer: Layer, cache_dir: Path) -> Path:
    """The files of ``layer``, extracted on first use under ``cache_dir/<diffID hex>``."""
    final = cache_dir / hex_part(layer.diff_id)
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".extract-"))
    try:
        extract_rootfs([layer], scratch)
        os.replace(scratch, final)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not final.is_dir():  # not another process that finished the same extraction first
            raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return final
