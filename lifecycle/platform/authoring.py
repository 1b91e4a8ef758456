"""Buildpack authoring: ``pybuild buildpack new`` skeletons and ``pybuild buildpack validate``.

A skeleton is a working buildpack: buildpack.toml (id, version, api, ``[[targets]]``),
``bin/detect`` and ``bin/build`` in bash or Python, a launch layer with a content hash in its
``[metadata]``, a default ``web`` process and a README. Flags are checked before anything is
written; each refusal is one line naming the flag (GEN-1, GEN-3, DET-11). ``check_buildpack``
is what ``validate`` and ``buildpack test`` run first: buildpack.toml loads (api, id, version)
and ``bin/detect``/``bin/build`` exist with the run bit (DET-4, BLD-1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.api import BUILDPACK_APIS, ApiVersion
from lifecycle.cnb.buildpack import BuildpackDescriptor, Distro, Target, load_buildpack_toml
from lifecycle.cnb.ids import check_buildpack_id
from lifecycle.errors import ConfigError
from lifecycle.platform import authoring_bash, authoring_files, authoring_python

__all__ = [
    "LANGUAGES",
    "NEW_BUILDPACK_APIS",
    "SkeletonFile",
    "SkeletonOptions",
    "check_buildpack",
    "new_buildpack",
    "parse_target",
    "render",
    "skeleton_files",
    "skeleton_options",
]

LANGUAGES = ("bash", "python")
NEW_BUILDPACK_APIS = (ApiVersion(0, 10), BUILDPACK_APIS.high)
"""Skeletons declare ``[[targets]]``, which buildpack API 0.10 introduced (DET-11)."""

_BUILDERS = {"bash": "pybuild/builder:tiny", "python": "pybuild/builder:bookworm"}
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]*")
_TARGET = re.compile(
    r"(?P<os>[a-z0-9]+)(?:/(?P<arch>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?)?"
    r"(?::(?P<distro>[A-Za-z0-9._-]+)(?:@(?P<distro_version>[A-Za-z0-9._-]+))?)?"
)
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_ACTION = "create buildpack"


@dataclass(frozen=True)
class SkeletonOptions:
    """What ``pybuild buildpack new`` was asked for, already checked."""

    buildpack_id: str
    path: Path
    api: ApiVersion
    language: str = "bash"
    version: str = "0.0.1"
    targets: tuple[Target, ...] = (Target(os="linux"),)


@dataclass(frozen=True)
class SkeletonFile:
    """One file of a skeleton: its path in the buildpack dir, its text, and whether it is run."""

    path: str
    text: str
    executable: bool = False


def skeleton_options(
    buildpack_id: str,
    *,
    path: Path | None = None,
    api: str = str(NEW_BUILDPACK_APIS[1]),
    language: str = "bash",
    version: str = "0.0.1",
    targets: Sequence[str] = (),
) -> SkeletonOptions:
    """Check every flag of ``buildpack new``; the first bad one raises a ConfigError naming it."""
    try:
        check_buildpack_id(buildpack_id)
    except ValueError as exc:
        raise ConfigError(_ACTION, f"ID {exc}") from None
    checked_api = _check_api(api)
    if language not in LANGUAGES:
        raise ConfigError(_ACTION, f'--language "{language}" is not one of {", ".join(LANGUAGES)}')
    if not _VERSION.fullmatch(version):
        raise ConfigError(
            _ACTION, f'--version "{version}" is not a version (use letters, digits, ".", "+", "-", "_")'
        )
    parsed = tuple(parse_target(t) for t in targets) or (Target(os="linux"),)
    directory = path if path is not None else Path(buildpack_id.rsplit("/", 1)[-1])
    _check_empty(directory)
    return SkeletonOptions(buildpack_id, directory, checked_api, language, version, parsed)


def _check_api(text: str) -> ApiVersion:
    low, high = NEW_BUILDPACK_APIS
    try:
        version = ApiVersion.parse(text)
    except ValueError:
        raise ConfigError(_ACTION, f'--api "{text}" is not an API version (write it as "{high}")') from None
    if not low <= version <= high:
        raise ConfigError(
            _ACTION,
            f'--api "{text}" is not supported for a new buildpack (use {low} - {high}, which have targets)',
        )
    return version


def _check_empty(directory: Path) -> None:
    if directory.is_dir() and any(directory.iterdir()):
        raise ConfigError(_ACTION, f"--path {directory} is not empty (choose another --path)")
    if directory.exists() and not directory.is_dir():
        raise ConfigError(_ACTION, f"--path {directory} is a file (choose another --path)")


def parse_target(text: str) -> Target:
    """``OS[/ARCH[/VARIANT]][:DISTRO[@VERSION]]``, as pack's ``--target`` (e.g. ``linux/arm64``)."""
    match = _TARGET.fullmatch(text)
    if match is None:
        raise ConfigError(
            _ACTION, f'--target "{text}" is not OS[/ARCH[/VARIANT]][:DISTRO[@VERSION]] (e.g. linux/amd64)'
        )
    distro = match["distro"]
    distros = (Distro(name=distro, version=match["distro_version"]),) if distro else ()
    return Target(os=match["os"], arch=match["arch"], variant=match["variant"], distros=distros)


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; a name without a value is a KeyError (a template bug)."""
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def _targets_toml(targets: Sequence[Target]) -> str:
    """``[[targets]]`` tables; the variant is written as the lifecycle reads it (DET-11 Δ)."""
    tables = []
    for target in targets:
        lines = ["[[targets]]"]
        keys = (("os", target.os), ("arch", target.arch), ("arch-variant", target.variant))
        lines += [f'{key} = "{value}"' for key, value in keys if value]
        for distro in target.distros:
            lines += ["", "[[targets.distros]]", f'name = "{distro.name}"']
            lines += [f'version = "{distro.version}"'] if distro.version else []
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def skeleton_files(options: SkeletonOptions) -> tuple[SkeletonFile, ...]:
    """Every file of the skeleton, rendered."""
    scripts = authoring_bash if options.language == "bash" else authoring_python
    values = {
        "id": options.buildpack_id,
        "version": options.version,
        "api": str(options.api),
        "language": options.language,
        "targets": _targets_toml(options.targets),
        "path": options.path.as_posix(),
        "builder": _BUILDERS[options.language],
        "language_note": authoring_files.BASH_NOTE
        if options.language == "bash"
        else authoring_files.PYTHON_NOTE,
    }
    files = (
        SkeletonFile("buildpack.toml", authoring_files.BUILDPACK_TOML),
        SkeletonFile("README.md", authoring_files.README),
        SkeletonFile("bin/detect", scripts.DETECT, executable=True),
        SkeletonFile("bin/build", scripts.BUILD, executable=True),
        SkeletonFile("layer/bin/hello", scripts.HELLO, executable=True),
        SkeletonFile("layer/bin/hello-web", scripts.HELLO_WEB, executable=True),
        SkeletonFile("layer/www/index.html", authoring_files.INDEX_HTML),
    )
    return tuple(SkeletonFile(f.path, render(f.text, values), f.executable) for f in files)


def new_buildpack(options: SkeletonOptions) -> BuildpackDescriptor:
    """Write the skeleton into ``options.path`` and return its buildpack.toml as read back."""
    for file in skeleton_files(options):
        target = options.path / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.text)
        target.chmod(0o755 if file.executable else 0o644)
    return load_buildpack_toml(options.path / "buildpack.toml")


def check_buildpack(directory: Path) -> BuildpackDescriptor:
    """buildpack.toml read and checked, and (unless composite) runnable bin/detect and bin/build."""
    if not directory.is_dir():
        raise ConfigError("read buildpack", f"{directory} is not a directory (give a buildpack directory)")
    descriptor = load_buildpack_toml(directory / "buildpack.toml")
    if descriptor.is_composite:
        return descriptor
    for name in ("detect", "build"):
        executable = directory / "bin" / name
        if not executable.is_file():
            raise ConfigError("read buildpack", f"{executable} does not exist (add bin/{name})")
        if not os.access(executable, os.X_OK):
            raise ConfigError("read buildpack", f"{executable} is not executable (chmod +x bin/{name})")
    return descriptor
