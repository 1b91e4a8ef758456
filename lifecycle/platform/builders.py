"""Builders: a build image, buildpacks, an order and run images (pack's builder.toml).

``pybuild builder create NAME --config builder.toml`` makes the builder image
(``builder_image``) and writes it where NAME says, as ``pybuild build`` writes an app
image (``targets.open_target``): the local store, ``oci:DIR[:TAG]``, a registry
(``--publish``) or the Docker daemon (``--daemon``). For a store name it also resolves
every buildpack ``uri`` into ``$PYBUILD_HOME/builders/<name>/``, so later builds read a
fixed copy. A builder that is only an image (any reference ``open_target`` reads) is
loaded from its labels: the buildpacks' layers (``io.buildpacks.buildpack.layers``) are
extracted once each into the buildpack cache, and the image itself is the build image.
The default builder (stacks/bookworm and buildpacks/*) is created on first use.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.backends.store import pybuild_home
from lifecycle.cnb.builder import BuilderConfig, BuilderEnv, load_builder_toml
from lifecycle.cnb.buildpack import BuildpackDescriptor, load_buildpack_toml
from lifecycle.cnb.extension import ExtensionDir
from lifecycle.cnb.images import RunImageRef
from lifecycle.cnb.order import OrderEntry, OrderGroup, SystemOrder, SystemToml
from lifecycle.env import EnvOp, EnvOperation
from lifecycle.errors import ConfigError, ImageNotFound

if TYPE_CHECKING:
    from lifecycle.backends.store import LocalStore
    from lifecycle.oci.image import Image
    from lifecycle.platform.targets import Target

__all__ = [
    "DEFAULT_BUILDER",
    "Builder",
    "BuildpackSource",
    "CreatedBuilder",
    "builder_dir",
    "create_builder",
    "load_builder",
    "source_root",
]

DEFAULT_BUILDER = "pybuild/builder:bookworm"


def source_root() -> Path:
    """Where this checkout keeps stacks/, buildpacks/ and samples/."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuildpackSource:
    descriptor: BuildpackDescriptor
    path: Path


@dataclass(frozen=True)
class Builder:
    name: str
    build_image: str
    run_images: tuple[RunImageRef, ...]
    order: tuple[OrderGroup, ...]
    buildpacks: dict[str, BuildpackSource]  # "id@version" -> source
    env: tuple[EnvOperation, ...] = ()  # operator env (BLD-8): no suffix means default
    system: SystemToml = field(default_factory=SystemToml)
    image: Image | None = field(default=None, compare=False, repr=False)  # an image-only builder
    extensions: dict[str, ExtensionDir] = field(default_factory=dict)  # "id@version" -> extension
    order_extensions: tuple[OrderGroup, ...] = ()  # DET-16

    def base_image(self, store: LocalStore) -> Image:
        """The image buildpacks run in: the builder image itself, or its build image in ``store``."""
        return self.image if self.image is not None else store.image(self.build_image)


@dataclass(frozen=True)
class CreatedBuilder:
    """What ``create_builder`` wrote: where, its digest, its buildpacks and whether pybuild is in it."""

    name: str
    digest: str
    buildpacks: tuple[str, ...]
    lifecycle: bool


def builder_dir(name: str, home: Path | None) -> Path:
    """Where the builder dir of store name ``name`` lives."""
    return (home or pybuild_home()) / "builders" / name.replace("/", "_").replace(":", "_")


def _descriptors(root: Path) -> list[BuildpackSource]:
    """The buildpack at ``root`` and, for a packaged tree, those under it."""
    if (root / "buildpack.toml").is_file():
        return [BuildpackSource(load_buildpack_toml(root / "buildpack.toml"), root)]
    found = sorted(root.glob("*/*/buildpack.toml")) + sorted(root.glob("*/buildpack.toml"))
    if not found:
        raise ConfigError("resolve buildpack", f"{root}: no buildpack.toml found (check the uri)")
    return [BuildpackSource(load_buildpack_toml(p), p.parent) for p in found]


def create_builder(
    name: str,
    config_path: Path,
    home: Path | None = None,
    *,
    publish: bool = False,
    daemon: bool = False,
    info: Callable[[str], None] | None = None,
) -> CreatedBuilder:
    """Write the builder image of ``config_path`` to ``name``'s target; a store name also gets
    the builder dir (every buildpack copied) that builds read."""
    from lifecycle.platform.targets import open_target

    if publish and daemon:
        raise ConfigError("create builder", "--publish and --daemon exclude each other (drop one)")
    config = load_builder_toml(config_path)
    target = open_target(name, create=True, home=home, publish=publish, daemon=daemon)
    dest = builder_dir(name, home)
    staging = Path(tempfile.mkdtemp(prefix=".builder-", dir=dest.parent if _mkdir(dest.parent) else None))
    try:
        return _create(name, config, config_path, staging, target, home, info or (lambda _: None))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _create(
    name: str,
    config: BuilderConfig,
    config_path: Path,
    staging: Path,
    target: Target,
    home: Path | None,
    info: Callable[[str], None],
) -> CreatedBuilder:
    dest = builder_dir(name, home)
    buildpacks: dict[str, BuildpackSource] = {}
    for entry in config.buildpacks:
        if not entry.uri:
            continue
        for source in _resolved(entry.uri, config_path.parent, staging, home):
            copy = staging / "buildpacks" / source.descriptor.ref.replace("@", "/", 1)
            shutil.copytree(source.path, copy, symlinks=True, dirs_exist_ok=True)
            buildpacks[source.descriptor.ref] = BuildpackSource(source.descriptor, copy)
    order = _resolve_order(config, buildpacks, config_path)
    from lifecycle.platform import builder_extensions as ext

    extensions = ext.copy_extensions(config, config_path.parent, staging)
    order_extensions = ext.resolve_order_extensions(config, extensions, config_path)
    record = {
        "name": name,
        "build_image": config.build.image,
        "run_images": [r.model_dump() for r in config.run.images],
        "order": [[e.model_dump() for e in g.group] for g in order],
        "buildpacks": sorted(buildpacks),
        "env": [e.model_dump() for e in config.build.env],
        "system": config.system.model_dump(),
        **ext.extension_record(extensions, order_extensions),
    }
    (staging / "builder.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    image = _image(config, config_path, buildpacks, order, staging, home, info)
    image = ext.add_extensions(image, extensions, order, order_extensions, staging / "blobs")
    digest = target.store.write(image, [name if target.kind == "store" else target.name])
    created = CreatedBuilder(
        target.display if target.kind != "store" else name,
        digest,
        tuple(sorted(buildpacks)),
        bool(json.loads(image.labels[_CONFIG_LABEL]).get("lifecycle")),
    )
    if target.kind != "store":
        return created
    for leftover in [*staging.glob("bp-*"), staging / "blobs"]:
        shutil.rmtree(leftover, ignore_errors=True)
    from lifecycle.platform.builder_source import RECORD, Source

    (staging / RECORD).write_text(Source.of(config_path).dumps())
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return created


_CONFIG_LABEL = "io.pybuild.builder.config"


def _image(
    config: BuilderConfig,
    config_path: Path,
    buildpacks: dict[str, BuildpackSource],
    order: tuple[OrderGroup, ...],
    staging: Path,
    home: Path | None,
    info: Callable[[str], None],
) -> Image:
    """The builder as an OCI image (pack's builder labels), over its build image."""
    from lifecycle.platform.builder_image import builder_image
    from lifecycle.platform.lifecycle_layer import lifecycle_layer, lifecycle_setting
    from lifecycle.platform.targets import open_target

    source = open_target(config.build.image, home=home)
    build_image = source.store.image(source.name)
    lifecycle = lifecycle_layer(build_image, lifecycle_setting(config_path), staging / "blobs", info)
    return builder_image(
        build_image,
        list(buildpacks.values()),
        order,
        config.run.images,
        staging / "blobs",
        config.description,
        env=config.build.env,
        system=config.system,
        lifecycle=lifecycle,
    )


def _resolved(uri: str, base: Path, staging: Path, home: Path | None) -> list[BuildpackSource]:
    """A builder.toml uri: a directory of one or more buildpacks, an archive, a .cnb or an image."""
    from lifecycle.platform.bpref import resolve_buildpack

    path = (base / uri.removeprefix("file://")).resolve()
    if path.is_dir() and not (path / "buildpack.toml").is_file():
        return _descriptors(path)
    return resolve_buildpack(uri, base=base, scratch=staging, home=home)


def _mkdir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return True


def _resolve_order(
    config: BuilderConfig, buildpacks: dict[str, BuildpackSource], source: Path
) -> tuple[OrderGroup, ...]:
    """Fill in missing versions from the builder's buildpacks; unknown ids are an error."""
    groups = []
    for number, group in enumerate(config.order):
        entries = []
        for entry in group.group:
            matches = [k for k, s in buildpacks.items() if s.descriptor.buildpack.id == entry.id]
            version = entry.version or (
                buildpacks[matches[0]].descriptor.buildpack.version if matches else None
            )
            if version is None or f"{entry.id}@{version}" not in buildpacks:
                raise ConfigError(
                    "create builder",
                    f"{source}: order[{number}] names {entry.id}@{entry.version or '*'}, "
                    "which no [[buildpacks]] entry provides (add it)",
                )
            entries.append(OrderEntry(id=entry.id, version=version, optional=entry.optional))
        groups.append(OrderGroup(group=tuple(entries)))
    return tuple(groups)


def load_builder(name: str, home: Path | None = None) -> Builder:
    """The builder dir of store name ``name``, else the builder image ``name`` refers to."""
    path = builder_dir(name, home) / "builder.json"
    if not path.is_file():
        return _image_builder(name, home)
    record = json.loads(path.read_text())
    root = path.parent / "buildpacks"
    buildpacks = {}
    for ref in record["buildpacks"]:
        bp_dir = root / ref.replace("@", "/", 1)
        buildpacks[ref] = BuildpackSource(load_buildpack_toml(bp_dir / "buildpack.toml"), bp_dir)
    from lifecycle.platform.builder_extensions import load_extensions

    extensions, order_extensions = load_extensions(record, path.parent)
    return Builder(
        name=record["name"],
        build_image=record["build_image"],
        run_images=tuple(RunImageRef.model_validate(r) for r in record["run_images"]),
        order=tuple(
            OrderGroup(group=tuple(OrderEntry.model_validate(e) for e in g)) for g in record["order"]
        ),
        buildpacks=buildpacks,
        env=tuple(_operator_op(BuilderEnv.model_validate(e)) for e in record.get("env", [])),
        system=SystemToml(system=SystemOrder.model_validate(record.get("system", {}))),
        extensions=extensions,
        order_extensions=order_extensions,
    )


def _operator_op(entry: BuilderEnv) -> EnvOperation:
    """A builder.toml ``[[build.env]]`` as an operator env operation (BLD-8: no suffix is default)."""
    op = EnvOp(entry.suffix) if entry.suffix else EnvOp.DEFAULT
    return EnvOperation(entry.name, op, entry.value, entry.delim or None)


def _image_builder(name: str, home: Path | None) -> Builder:
    """A builder that is only an image: order, run images and buildpacks from its labels."""
    from lifecycle.platform.builder_image import BUILDER_METADATA, BUILDPACK_LAYERS, BUILDPACK_ORDER
    from lifecycle.platform.buildpackage_sources import buildpack_cache, labelled_sources
    from lifecycle.platform.targets import open_target

    try:
        target = open_target(name, home=home)
        image = target.store.image(target.name)
    except ImageNotFound:
        raise ConfigError(
            "find builder", f"builder {name!r} does not exist (create it with pybuild builder create)"
        ) from None
    labels = image.labels
    missing = [
        label for label in (BUILDER_METADATA, BUILDPACK_ORDER, BUILDPACK_LAYERS) if label not in labels
    ]
    if missing:
        raise ConfigError(
            "read builder", f"{target.display} is not a builder image: it has no {missing[0]} label"
        )
    try:
        metadata = json.loads(labels[BUILDER_METADATA])
        groups = json.loads(labels[BUILDPACK_ORDER])
        extra = json.loads(labels.get(_CONFIG_LABEL, "{}"))
        run_images = metadata.get("images") or [metadata["stack"]["runImage"]]
        order = tuple(
            OrderGroup(group=tuple(OrderEntry.model_validate(e) for e in g.get("group", []))) for g in groups
        )
        runs = tuple(RunImageRef.model_validate(r) for r in run_images)
        env = tuple(_operator_op(BuilderEnv.model_validate(e)) for e in extra.get("env", []))
        system = SystemToml(system=SystemOrder.model_validate(extra.get("system", {})))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            "read builder", f"{target.display}: its builder labels do not parse ({exc})"
        ) from None
    sources = labelled_sources(image, target.display, buildpack_cache(home or pybuild_home()))
    from lifecycle.platform.builder_extensions import labelled_extensions

    extensions, order_extensions = labelled_extensions(
        image, target.display, buildpack_cache(home or pybuild_home())
    )
    return Builder(
        name=target.display,
        build_image=target.display,
        run_images=runs,
        order=order,
        buildpacks={source.descriptor.ref: source for source in sources},
        env=env,
        system=system,
        image=image,
        extensions=extensions,
        order_extensions=order_extensions,
    )
