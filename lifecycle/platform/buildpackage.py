"""``pybuild buildpack package``: a buildpackage per the CNB Distribution spec, from a package.toml.

The image has ONE layer per buildpack, holding it at ``/cnb/buildpacks/<escaped id>/<version>/``
(a ``/`` in the ID becomes ``_``), with its files' modes kept, owned 0:0, mtime
1980-01-01T00:00:01Z; dependencies come first in the order they are listed, the entrypoint last.
Its config has the os/architecture of ``[platform]``, a constant ``created`` and two labels
(``buildpackage_labels``). The same package.toml and buildpack files give the same digest, as an
image in any target (``open_target``) or as a ``.cnb`` file (``buildpackage_file``).

A buildpack that itself came from a package (a ``.cnb`` or an image named in package.toml) keeps
that package's layer handle: no new tar, no recompression, and a registry push mounts or skips
the blob. A composite's order must be satisfied by the package's own buildpacks, so the package
works in any builder (Distribution spec: every buildpack a composite names is in the package).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor, Stack
from lifecycle.cnb.ids import escape_id
from lifecycle.errors import ConfigError, PybuildError
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.models import ContainerConfig, History, ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.bpref import resolve_buildpack
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage_config import PackageConfig, load_package_toml
from lifecycle.platform.buildpackage_file import write_cnb
from lifecycle.platform.buildpackage_labels import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    BuildpackLayerInfo,
    layer_info,
    layers_json,
    package_metadata,
)
from lifecycle.platform.buildpackage_sources import PackagedBuildpack
from lifecycle.platform.targets import open_target

__all__ = [
    "CREATED",
    "build_package_image",
    "buildpack_layer",
    "buildpack_layer_path",
    "check_output",
    "package_buildpack",
    "write_buildpackage",
]

CREATED = "1980-01-01T00:00:01Z"
_WORKERS = 4


def buildpack_layer_path(descriptor: BuildpackDescriptor) -> str:
    """Where a buildpack lives in a package or builder layer: ``/cnb/buildpacks/<escaped id>/<version>``."""
    return f"/cnb/buildpacks/{escape_id(descriptor.buildpack.id)}/{descriptor.buildpack.version}"


def package_buildpack(config: Path, *, scratch: Path, home: Path | None = None) -> Image:
    """The buildpackage ``config`` (a package.toml) describes.

    Layer blobs and extracted archives go to ``scratch``, which must outlive writing the
    image; packages and ``.cnb`` files named as buildpacks are extracted into the cache of
    ``home`` (default ``$PYBUILD_HOME``).
    """
    package = load_package_toml(config)
    sources = _collect(package, config, scratch, home)
    _check_orders(sources, config)
    top, *dependencies = sources
    return build_package_image(
        top,
        dependencies,
        scratch / "layers",
        os=package.platform.os,
        architecture=package.platform.architecture,
    )


def build_package_image(
    top: BuildpackSource,
    dependencies: Sequence[BuildpackSource],
    layer_dir: Path,
    *,
    os: str = "linux",
    architecture: str = "amd64",
) -> Image:
    """The package image of ``top`` and ``dependencies``: one layer each (new blobs in ``layer_dir``)."""
    ordered = [*dependencies, top]
    layers = _buildpack_layers(ordered, layer_dir)
    infos: dict[str, dict[str, BuildpackLayerInfo]] = {}
    held: dict[str, tuple[Layer, list[str]]] = {}  # diffID -> layer, the buildpacks in it (flattened: many)
    for source, layer in zip(ordered, layers, strict=True):
        info = source.descriptor.buildpack
        infos.setdefault(info.id, {})[info.version] = layer_info(source.descriptor, layer.diff_id)
        held.setdefault(layer.diff_id, (layer, []))[1].append(source.descriptor.ref)
    metadata = package_metadata(top.descriptor, _common_stacks([s.descriptor for s in ordered]))
    config = ImageConfig(
        created=CREATED,
        os=os,
        architecture=architecture,
        config=ContainerConfig(
            labels={
                BUILDPACKAGE_METADATA_LABEL: metadata.to_json(),
                BUILDPACK_LAYERS_LABEL: layers_json(infos),
            }
        ),
        history=[
            History(created=CREATED, created_by=f"buildpack {', '.join(refs)}") for _, refs in held.values()
        ],
    )
    return new_image(config, [layer for layer, _ in held.values()])


def _collect(package: PackageConfig, config: Path, scratch: Path, home: Path | None) -> list[BuildpackSource]:
    """Every buildpack of the package, the entrypoint first, each ``id@version`` once."""
    refs = [("buildpack.uri", package.buildpack.uri)]
    refs += [
        (f"dependencies[{i}].{'uri' if d.uri else 'image'}", d.reference)
        for i, d in enumerate(package.dependencies)
    ]
    found: dict[str, BuildpackSource] = {}
    for field, ref in refs:
        try:
            sources = resolve_buildpack(ref, base=config.parent, scratch=scratch, home=home)
        except PybuildError as exc:
            raise _field_error(config, field, ref, exc) from exc
        for source in sources:
            found.setdefault(source.descriptor.ref, source)
    return list(found.values())


def _field_error(config: Path, field: str, ref: str, exc: PybuildError) -> ConfigError:
    """``exc`` as a problem of ``field`` of the package.toml, keeping its exit code (12 for a bad api)."""
    cause, quoted = str(exc.cause), f'"{ref}"'
    detail = f"{field} {cause}" if cause.startswith(quoted) else f"{field} {quoted}: {cause}"
    return ConfigError(f"read {config.name}", f"{config}: {detail}", exit_code=exc.exit_code)


def _check_orders(sources: Sequence[BuildpackSource], config: Path) -> None:
    """Each composite's order names only buildpacks of the package."""
    present = {source.descriptor.ref for source in sources}
    for source in sources:
        for group in source.descriptor.order:
            for entry in group.group:
                if entry.ref not in present:
                    raise ConfigError(
                        f"read {config.name}",
                        f"{config}: {source.descriptor.ref} has {entry.ref} in its order, "
                        "but no [[dependencies]] entry provides it (add it)",
                    )


def _buildpack_layers(sources: Sequence[BuildpackSource], layer_dir: Path) -> list[Layer]:
    """One layer per buildpack (made in parallel threads), in the order of ``sources``."""
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        return list(pool.map(lambda source: buildpack_layer(source, layer_dir), sources))


def buildpack_layer(source: BuildpackSource, layer_dir: Path) -> Layer:
    """The layer of one buildpack: the package layer it came in, else a new reproducible one.

    A new layer holds ``source.path`` at ``buildpack_layer_path``, owned 0:0, modes kept, constant
    mtime, its blob written to ``layer_dir``.
    """
    if isinstance(source, PackagedBuildpack):
        return source.layer

    def fill(tar: LayerTar) -> None:
        tar.add_tree(source.path, buildpack_layer_path(source.descriptor))

    return write_layer(layer_dir, fill)


def _common_stacks(descriptors: Sequence[BuildpackDescriptor]) -> tuple[Stack, ...]:
    """The stacks every buildpack that names stacks supports (``*`` supports any); mixins merged."""
    common: list[Stack] | None = None
    for descriptor in descriptors:
        by_id = {stack.id: stack for stack in descriptor.stacks}
        if descriptor.is_composite or not by_id or "*" in by_id:
            continue
        if common is None:
            common = list(descriptor.stacks)
            continue
        common = [
            Stack(id=s.id, mixins=tuple(sorted({*s.mixins, *by_id[s.id].mixins})))
            for s in common
            if s.id in by_id
        ]
    if common is None:
        return (Stack(id="*"),) if any(d.stacks for d in descriptors) else ()
    if not common:
        raise ConfigError(
            "package buildpack", "its buildpacks have no stack in common (check their [[stacks]])"
        )
    return tuple(common)


def check_output(*, as_file: bool, publish: bool) -> None:
    """Refuse output flags that do not go together, before any work is done."""
    if as_file and publish:
        raise ConfigError("write buildpackage", "--publish is for images (drop it, or use --format image)")


def write_buildpackage(
    image: Image, name: str, *, as_file: bool = False, publish: bool = False, home: Path | None = None
) -> str:
    """Write the package as a ``.cnb`` file (``as_file``) or an image to ``name``'s target; returns where."""
    check_output(as_file=as_file, publish=publish)
    if as_file:
        write_cnb(image, Path(name))
        return name
    target = open_target(name, create=True, publish=publish, home=home)
    target.store.write(image, [target.name])
    return target.display
