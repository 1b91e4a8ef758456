"""Builders: a build image, buildpacks, an order and run images (pack's builder.toml).

``pybuild builder create NAME --config builder.toml`` resolves every buildpack
``uri`` (a directory or a ``.tgz``) into ``$PYBUILD_HOME/builders/<name>/``, so
later builds read a fixed copy. The default builder (stacks/bookworm and
buildpacks/*) is created on first use.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.backends.store import pybuild_home
from lifecycle.cnb.builder import BuilderConfig, BuilderEnv, load_builder_toml
from lifecycle.cnb.buildpack import BuildpackDescriptor, load_buildpack_toml
from lifecycle.cnb.images import RunImageRef
from lifecycle.cnb.order import OrderEntry, OrderGroup, SystemOrder, SystemToml
from lifecycle.env import EnvOp, EnvOperation
from lifecycle.errors import ConfigError

__all__ = [
    "DEFAULT_BUILDER",
    "Builder",
    "BuildpackSource",
    "create_builder",
    "load_builder",
    "resolve_buildpack_dir",
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


def _builder_dir(name: str, home: Path | None) -> Path:
    return (home or pybuild_home()) / "builders" / name.replace("/", "_").replace(":", "_")


def resolve_buildpack_dir(uri: str, base: Path, into: Path) -> Path:
    """A buildpack directory for ``uri``: a directory, or a ``.tgz``/``.tar`` extracted under ``into``."""
    path = (base / uri.removeprefix("file://")).resolve()
    if path.is_dir():
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        dest = Path(tempfile.mkdtemp(dir=into, prefix="bp-"))
        with tarfile.open(path) as tar:
            tar.extractall(dest, filter="data")
        return dest
    raise ConfigError("resolve buildpack", f"{uri}: no such directory or archive (check the uri)")


def _descriptors(root: Path) -> list[BuildpackSource]:
    """The buildpack at ``root`` and, for a packaged tree, those under it."""
    if (root / "buildpack.toml").is_file():
        return [BuildpackSource(load_buildpack_toml(root / "buildpack.toml"), root)]
    found = sorted(root.glob("*/*/buildpack.toml")) + sorted(root.glob("*/buildpack.toml"))
    if not found:
        raise ConfigError("resolve buildpack", f"{root}: no buildpack.toml found (check the uri)")
    return [BuildpackSource(load_buildpack_toml(p), p.parent) for p in found]


def create_builder(name: str, config_path: Path, home: Path | None = None) -> Builder:
    """Copy every buildpack of ``config_path`` into the builder dir and record the builder."""
    config = load_builder_toml(config_path)
    dest = _builder_dir(name, home)
    staging = Path(tempfile.mkdtemp(prefix=".builder-", dir=dest.parent if _mkdir(dest.parent) else None))
    buildpacks: dict[str, BuildpackSource] = {}
    for entry in config.buildpacks:
        if not entry.uri:
            continue
        for source in _resolved(entry.uri, config_path.parent, staging, home):
            target = staging / "buildpacks" / source.descriptor.ref.replace("@", "/", 1)
            shutil.copytree(source.path, target, symlinks=True, dirs_exist_ok=True)
            buildpacks[source.descriptor.ref] = BuildpackSource(source.descriptor, target)
    order = _resolve_order(config, buildpacks, config_path)
    record = {
        "name": name,
        "build_image": config.build.image,
        "run_images": [r.model_dump() for r in config.run.images],
        "order": [[e.model_dump() for e in g.group] for g in order],
        "buildpacks": sorted(buildpacks),
        "env": [e.model_dump() for e in config.build.env],
        "system": config.system.model_dump(),
    }
    (staging / "builder.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    _store_image(name, config, buildpacks, order, staging, home)
    for leftover in [*staging.glob("bp-*"), staging / "blobs"]:
        shutil.rmtree(leftover, ignore_errors=True)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return load_builder(name, home)


def _store_image(
    name: str,
    config: BuilderConfig,
    buildpacks: dict[str, BuildpackSource],
    order: tuple[OrderGroup, ...],
    staging: Path,
    home: Path | None,
) -> None:
    """The builder as an OCI image in the local store, under its own name (pack's builder labels)."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.platform.builder_image import builder_image

    store = LocalStore(home)
    image = builder_image(
        store.image(config.build.image),
        list(buildpacks.values()),
        order,
        config.run.images,
        staging / "blobs",
        config.description,
    )
    store.write(image, [name])


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
    path = _builder_dir(name, home) / "builder.json"
    if not path.is_file():
        raise ConfigError(
            "find builder", f"builder {name!r} does not exist (create it with pybuild builder create)"
        )
    record = json.loads(path.read_text())
    root = path.parent / "buildpacks"
    buildpacks = {}
    for ref in record["buildpacks"]:
        bp_dir = root / ref.replace("@", "/", 1)
        buildpacks[ref] = BuildpackSource(load_buildpack_toml(bp_dir / "buildpack.toml"), bp_dir)
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
    )


def _operator_op(entry: BuilderEnv) -> EnvOperation:
    """A builder.toml ``[[build.env]]`` as an operator env operation (BLD-8: no suffix is default)."""
    op = EnvOp(entry.suffix) if entry.suffix else EnvOp.DEFAULT
    return EnvOperation(entry.name, op, entry.value, entry.delim or None)
