"""Image extensions in a builder: builder.toml `[[extensions]]` and `[[order-extensions]]` (DET-16).

`pybuild builder create` copies each extension `uri` (a directory with extension.toml) into the
builder dir at `extensions/<id>/<version>`, fills in order-extensions versions (every entry is
optional), and records both in builder.json. The builder image gets one layer per extension at
`/cnb/extensions/<escaped id>/<version>`, pack's `io.buildpacks.extension.layers` and
`io.buildpacks.buildpack.order-extensions` labels, and a `/cnb/order.toml` with both
`[[order]]` and `[[order-extensions]]`, as a platform running the lifecycle reads them.
A builder that is only an image gets its extensions back from those labels
(`labelled_extensions`): each extension's layer is extracted once into the buildpack cache.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle.cnb._files import dump_toml
from lifecycle.cnb.builder import BuilderConfig
from lifecycle.cnb.extension import ExtensionDir, load_extension_dir
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.order import OrderEntry, OrderGroup, OrderToml
from lifecycle.errors import ConfigError, ImageError
from lifecycle.oci import mutate
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import LayerTar

__all__ = [
    "EXTENSION_LAYERS",
    "EXTENSION_ORDER",
    "add_extensions",
    "copy_extensions",
    "extension_dir_path",
    "extension_record",
    "labelled_extensions",
    "load_extensions",
    "resolve_order_extensions",
]

EXTENSION_LAYERS = "io.buildpacks.extension.layers"
EXTENSION_ORDER = "io.buildpacks.buildpack.order-extensions"


def extension_dir_path(extension: ExtensionDir) -> str:
    """Where an extension lives in a builder image: `/cnb/extensions/<escaped id>/<version>`."""
    info = extension.descriptor.extension
    return f"/cnb/extensions/{escape_id(info.id)}/{info.version}"


def copy_extensions(config: BuilderConfig, base: Path, staging: Path) -> dict[str, ExtensionDir]:
    """Each `[[extensions]]` uri copied to `staging/extensions/<id>/<version>`."""
    extensions: dict[str, ExtensionDir] = {}
    for number, entry in enumerate(config.extensions):
        if not entry.uri:
            raise ConfigError(
                "create builder",
                f"extensions[{number}] ({entry.id}) has no uri (set the extension's directory)",
            )
        source = (base / entry.uri.removeprefix("file://")).resolve()
        if not source.is_dir():
            raise ConfigError(
                "create builder", f"extensions[{number}]: {entry.uri} is not a directory (check the uri)"
            )
        found = load_extension_dir(source)
        copy = staging / "extensions" / found.ref.replace("@", "/", 1)
        shutil.copytree(source, copy, symlinks=True, dirs_exist_ok=True)
        extensions[found.ref] = ExtensionDir(found.descriptor, copy)
    return extensions


def resolve_order_extensions(
    config: BuilderConfig, extensions: Mapping[str, ExtensionDir], source: Path
) -> tuple[OrderGroup, ...]:
    """`[[order-extensions]]` with versions filled in; every entry optional (DET-16)."""
    groups = []
    for number, group in enumerate(config.order_extensions):
        entries = []
        for entry in group.group:
            versions = [
                e.descriptor.extension.version
                for e in extensions.values()
                if e.descriptor.extension.id == entry.id
            ]
            version = entry.version or (versions[0] if versions else None)
            if version is None or f"{entry.id}@{version}" not in extensions:
                raise ConfigError(
                    "create builder",
                    f"{source}: order-extensions[{number}] names {entry.id}@{entry.version or '*'}, "
                    "which no [[extensions]] entry provides (add it)",
                )
            entries.append(OrderEntry(id=entry.id, version=version, optional=True))
        groups.append(OrderGroup(group=tuple(entries)))
    return tuple(groups)


def extension_record(extensions: Mapping[str, ExtensionDir], order: Sequence[OrderGroup]) -> dict[str, Any]:
    """What builder.json keeps of the extensions."""
    return {
        "extensions": sorted(extensions),
        "order_extensions": [[e.model_dump() for e in g.group] for g in order],
    }


def load_extensions(
    record: Mapping[str, Any], builder_dir: Path
) -> tuple[dict[str, ExtensionDir], tuple[OrderGroup, ...]]:
    """The extensions and order-extensions of a builder.json (none for builders made without)."""
    root = builder_dir / "extensions"
    extensions = {}
    for ref in record.get("extensions", []):
        found = load_extension_dir(root / ref.replace("@", "/", 1))
        extensions[found.ref] = found
    order = tuple(
        OrderGroup(group=tuple(OrderEntry.model_validate(e) for e in g))
        for g in record.get("order_extensions", [])
    )
    return extensions, order


def add_extensions(
    image: Image,
    extensions: Mapping[str, ExtensionDir],
    order: Sequence[OrderGroup],
    order_extensions: Sequence[OrderGroup],
    scratch: Path,
) -> Image:
    """The builder image with its extensions' layers and labels, and order.toml with both orders."""
    if not extensions:
        return image
    layers: list[Layer] = []
    infos: dict[str, dict[str, dict[str, str]]] = {}
    for ref in sorted(extensions):
        extension = extensions[ref]
        layer = _extension_layer(extension, scratch)
        layers.append(layer)
        info = extension.descriptor.extension
        entry = {"api": str(extension.descriptor.api), "layerDiffID": layer.diff_id}
        entry.update({k: v for k, v in (("homepage", info.homepage), ("name", info.name)) if v})
        infos.setdefault(info.id, {})[info.version] = entry
    order_toml = dump_toml(OrderToml(order=tuple(order), order_extensions=tuple(order_extensions))).encode()

    def fill(tar: LayerTar) -> None:
        tar.add_parents("/cnb/order.toml")
        tar.add_file("/cnb/order.toml", order_toml)

    layers.append(write_layer(scratch, fill))
    image = mutate.append_layers(image, layers, created_by=())
    groups = [
        {"group": [{"id": e.id, "version": e.version, "optional": True} for e in g.group]}
        for g in order_extensions
    ]
    labels = {
        EXTENSION_LAYERS: json.dumps(infos, separators=(",", ":"), sort_keys=True),
        EXTENSION_ORDER: json.dumps(groups, separators=(",", ":")),
    }
    return mutate.set_labels(image, labels)


def _extension_layer(extension: ExtensionDir, scratch: Path) -> Layer:
    def fill(tar: LayerTar) -> None:
        tar.add_tree(extension.path, extension_dir_path(extension))

    return write_layer(scratch, fill)


def labelled_extensions(
    image: Image, what: str, cache_dir: Path
) -> tuple[dict[str, ExtensionDir], tuple[OrderGroup, ...]]:
    """The extensions and order-extensions of a builder image, from its labels (none without them)."""
    from lifecycle.platform.buildpackage_sources import extracted_layer

    labels = image.labels
    try:
        infos = json.loads(labels.get(EXTENSION_LAYERS, "{}"))
        groups = json.loads(labels.get(EXTENSION_ORDER, "[]"))
        order = tuple(
            OrderGroup(group=tuple(OrderEntry.model_validate(e) for e in g.get("group", []))) for g in groups
        )
        wanted = [
            (ext_id, version, entry["layerDiffID"])
            for ext_id, v in infos.items()
            for version, entry in v.items()
        ]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ImageError(f"read builder {what}", f"its extension labels do not parse ({exc})") from None
    extensions: dict[str, ExtensionDir] = {}
    for ext_id, version, diff_id in sorted(wanted):
        layer = image.layer_by_diff_id(str(diff_id))
        if layer is None:
            raise ImageError(
                f"read builder {what}", f"{ext_id}@{version} names layer {diff_id}, which it lacks"
            )
        root = extracted_layer(layer, cache_dir) / "cnb" / "extensions"
        found = load_extension_dir(root / escape_id(ext_id) / version)
        if found.ref != f"{ext_id}@{version}":
            raise ImageError(
                f"read builder {what}",
                f"the label names {ext_id}@{version} but its extension.toml says {found.ref}",
            )
        extensions[found.ref] = found
    return extensions, order
