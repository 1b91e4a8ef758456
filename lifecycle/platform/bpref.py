"""Buildpack references: every way a user may name a buildpack (``--buildpack``, builder.toml,
project.toml, package.toml), resolved to buildpack directories on this machine.

A reference is tried as, in this order:

| reference | kind |
|---|---|
| ``urn:cnb:builder:ID[@VERSION]`` | a buildpack of the builder |
| ``docker://REF``, ``oci:DIR[:tag]``, ``docker-daemon:NAME`` | a buildpackage image |
| an existing directory (``file://`` optional) | a buildpack directory |
| an existing ``*.cnb`` file | a buildpackage file |
| an existing other file (``.tgz``, ``.tar``) | a buildpack archive |
| ``ID@VERSION`` or ``ID`` the builder has | a buildpack of the builder |
| any other name | a buildpackage image: the local store, or a registry for ``host/repo`` |

as pack does: a path that exists wins over an ID or an image of the same name. Relative paths
are relative to ``base``. ``resolve_buildpack`` returns the named buildpack FIRST, then the
buildpacks it brings along (a package's other buildpacks, or, for a builder's composite, the
builder's buildpacks its order names), so a caller puts the first in an order and makes the
rest available.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lifecycle.backends.store import pybuild_home
from lifecycle.cnb.buildpack import load_buildpack_toml
from lifecycle.cnb.ids import check_buildpack_id
from lifecycle.errors import ConfigError, ImageError, ImageNotFound
from lifecycle.execution.rootfs import extract_archive
from lifecycle.oci.digest import is_digest
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage_config import local_path, looks_like_path
from lifecycle.platform.buildpackage_file import open_cnb
from lifecycle.platform.buildpackage_sources import buildpack_cache, package_sources
from lifecycle.platform.targets import open_target

__all__ = ["BUILDER_URN", "BuildpackRef", "RefKind", "parse_buildpack_ref", "resolve_buildpack"]

BUILDER_URN = "urn:cnb:builder:"
_IMAGE_PREFIXES = ("docker://", "oci:", "docker-daemon:")
_ACTION = "resolve buildpack"


class RefKind(StrEnum):
    """What a buildpack reference names."""

    DIRECTORY = "directory"
    ARCHIVE = "archive"
    CNB_FILE = "cnb-file"
    IMAGE = "image"
    BUILDER = "builder"


@dataclass(frozen=True)
class BuildpackRef:
    """A classified reference: ``location`` is an absolute path, an image reference or ``ID[@VERSION]``."""

    text: str
    kind: RefKind
    location: str


def parse_buildpack_ref(
    text: str, *, base: Path, builder_buildpacks: Mapping[str, BuildpackSource] | None = None
) -> BuildpackRef:
    """Classify ``text`` (see the module docstring); a one-line ConfigError for what cannot be one."""
    if not text:
        raise ConfigError(_ACTION, "the buildpack reference is empty")
    special = _special(text)
    if special is not None:
        return special
    path = local_path(text, base)
    if path.exists():
        return _local(text, path.resolve())
    if text.startswith("file://"):
        raise ConfigError(_ACTION, f'"{text}" does not exist (check the path)')
    if _builder_match(text, builder_buildpacks or {}):
        return BuildpackRef(text, RefKind.BUILDER, text)
    if _looks_like_id_version(text):
        raise ConfigError(_ACTION, f'"{text}" is not a buildpack of the builder{_known(builder_buildpacks)}')
    if looks_like_path(text):
        raise ConfigError(_ACTION, f'"{text}" does not exist (check the path)')
    return BuildpackRef(text, RefKind.IMAGE, text)


def _special(text: str) -> BuildpackRef | None:
    """References with a scheme."""
    if text.startswith(BUILDER_URN):
        spec = text[len(BUILDER_URN) :]
        if not spec:
            raise ConfigError(_ACTION, f'"{text}" names no buildpack (use {BUILDER_URN}ID[@VERSION])')
        return BuildpackRef(text, RefKind.BUILDER, spec)
    if text.startswith(_IMAGE_PREFIXES):
        return BuildpackRef(text, RefKind.IMAGE, text)
    if text.startswith("urn:cnb:registry:"):
        raise ConfigError(
            _ACTION, f'"{text}": the buildpack registry is not supported (use an image reference)'
        )
    if text.startswith(("http://", "https://")):
        raise ConfigError(_ACTION, f'"{text}": URLs are not fetched (download it and give the file)')
    return None


def _local(text: str, path: Path) -> BuildpackRef:
    if path.is_dir():
        return BuildpackRef(text, RefKind.DIRECTORY, str(path))
    if path.suffix == ".cnb":
        return BuildpackRef(text, RefKind.CNB_FILE, str(path))
    if _is_archive(path):
        return BuildpackRef(text, RefKind.ARCHIVE, str(path))
    raise ConfigError(_ACTION, f'"{text}" is a file but not a .tgz, .tar or .cnb (check the path)')


# gzip, bzip2 and xz magic at the start; a tar's "ustar" magic in its first header.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_TAR_HEADER = 512


def _is_archive(path: Path) -> bool:
    """A compressed file or a tar, by its first bytes (nothing in it is parsed yet)."""
    try:
        with path.open("rb") as source:
            head = source.read(_TAR_HEADER)
    except OSError as exc:
        raise ConfigError(_ACTION, f"{path}: cannot be read: {exc.strerror}") from None
    return head.startswith(_COMPRESSED_MAGIC) or head[257:262] == b"ustar"


def _looks_like_id_version(text: str) -> bool:
    name, at, version = text.partition("@")
    if not at or not version or is_digest(version):
        return False
    try:
        check_buildpack_id(name)
    except ValueError:
        return False
    return True


def _builder_match(spec: str, builder: Mapping[str, BuildpackSource]) -> list[BuildpackSource]:
    bp_id, _, version = spec.partition("@")
    return [
        source
        for source in builder.values()
        if source.descriptor.buildpack.id == bp_id
        and (not version or source.descriptor.buildpack.version == version)
    ]


def _known(builder: Mapping[str, BuildpackSource] | None) -> str:
    if not builder:
        return " (there is no builder to take it from; give a directory, file or image)"
    return f" (it has {', '.join(sorted(builder))})"


def resolve_buildpack(
    ref: str,
    *,
    base: Path,
    scratch: Path,
    builder_buildpacks: Mapping[str, BuildpackSource] | None = None,
    home: Path | None = None,
) -> list[BuildpackSource]:
    """The buildpack ``ref`` names, first, then the buildpacks that come with it.

    ``scratch`` receives extracted archives (the caller removes it when done with the
    sources); package images and ``.cnb`` files are extracted once per layer into
    ``$PYBUILD_HOME/cache/buildpacks`` (or ``home``) and kept.
    """
    parsed = parse_buildpack_ref(ref, base=base, builder_buildpacks=builder_buildpacks)
    if parsed.kind is RefKind.DIRECTORY:
        return [_directory_source(Path(parsed.location), ref)]
    if parsed.kind is RefKind.ARCHIVE:
        return [_archive_source(Path(parsed.location), ref, scratch)]
    cache = buildpack_cache(home or pybuild_home())
    if parsed.kind is RefKind.CNB_FILE:
        return [*package_sources(open_cnb(Path(parsed.location)), parsed.location, cache)]
    if parsed.kind is RefKind.BUILDER:
        return _builder_sources(parsed.location, ref, builder_buildpacks or {})
    return _image_sources(parsed, cache, home)


def _directory_source(path: Path, ref: str) -> BuildpackSource:
    toml = path / "buildpack.toml"
    if not toml.is_file():
        raise ConfigError(
            _ACTION, f'"{ref}": {path} has no buildpack.toml (point at the buildpack\'s directory)'
        )
    return BuildpackSource(load_buildpack_toml(toml), path)


def _archive_source(path: Path, ref: str, scratch: Path) -> BuildpackSource:
    """A ``.tgz``/``.tar`` with buildpack.toml at its root (or in its one top directory)."""
    scratch.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(dir=scratch, prefix="bp-"))
    dest.chmod(0o755)  # the sandbox's host uid reads it (execution/sandbox_user.py)
    try:
        with path.open("rb") as stream:
            extract_archive(stream, dest)
    except ImageError as exc:
        raise ConfigError(_ACTION, f'"{ref}": cannot extract {path}: {exc.cause}') from None
    except OSError as exc:
        raise ConfigError(_ACTION, f'"{ref}": cannot read {path}: {exc.strerror}') from None
    children = list(dest.iterdir())
    if not (dest / "buildpack.toml").is_file() and len(children) == 1 and children[0].is_dir():
        dest = children[0]
    return _directory_source(dest, ref)


def _builder_sources(spec: str, ref: str, builder: Mapping[str, BuildpackSource]) -> list[BuildpackSource]:
    matches = _builder_match(spec, builder)
    if not matches:
        raise ConfigError(_ACTION, f'"{ref}" is not a buildpack of the builder{_known(builder)}')
    if len(matches) > 1:
        versions = ", ".join(sorted(m.descriptor.buildpack.version for m in matches))
        raise ConfigError(_ACTION, f'"{ref}": the builder has versions {versions} (name one as ID@VERSION)')
    found = {matches[0].descriptor.ref: matches[0]}
    pending = [matches[0]]
    while pending:
        for group in pending.pop(0).descriptor.order:
            for entry in group.group:
                source = builder.get(entry.ref)
                if source is not None and entry.ref not in found:
                    found[entry.ref] = source
                    pending.append(source)
    return list(found.values())


def _image_sources(parsed: BuildpackRef, cache: Path, home: Path | None) -> list[BuildpackSource]:
    target = open_target(parsed.location, home=home)
    try:
        image = target.store.image(target.name)
    except ImageNotFound as exc:
        if parsed.text.startswith(_IMAGE_PREFIXES):
            raise ImageNotFound(f"{_ACTION} {parsed.text}", exc.cause) from exc
        raise ConfigError(
            _ACTION,
            f'"{parsed.text}" is not a directory, .tgz, .cnb file, buildpack of the builder '
            "or image in the local store or a registry (check the reference)",
        ) from None
    return [*package_sources(image, target.display, cache)]
