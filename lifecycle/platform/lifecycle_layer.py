"""pybuild itself in a builder image, under ``/cnb/lifecycle``, so the phases run in the build image.

A platform that runs the lifecycle one container per phase (Tekton, a Kubernetes Job, ``docker
run``) starts ``/cnb/lifecycle/<phase>`` in the builder image. ``pybuild builder create`` adds one
layer holding:

- ``/cnb/lifecycle/lib/``: the ``lifecycle`` package and every distribution of its runtime
  requirement closure (``Requires-Dist`` without extras, so no test tools), copied file by file from
  the interpreter running pybuild (``importlib.metadata`` lists each distribution's files), without
  ``__pycache__``;
- ``/cnb/lifecycle/lifecycle``: a script run by the build image's ``python3.X`` in isolated mode
  (``-I``: no ``PYTHON*`` variables, no user site) that puts ``lib`` first on ``sys.path`` and calls
  the argv[0] dispatch (``lifecycle.cli.dispatch``);
- ``analyzer``, ``detector``, ``restorer``, ``builder``, ``exporter``, ``creator``, ``rebaser`` and
  ``launcher``: symlinks to that script, so the name a container starts picks the phase.

Why copy the running interpreter's files rather than ``pip install`` into the image: the files are
already on this machine, so the layer needs no network and no index, and the same pybuild and
dependencies give the same bytes (sorted entries, owner 0:0, modes kept, constant mtime): the same
builder.toml makes the same builder digest twice. Compiled bytecode is left out because ``.pyc``
files are not byte-for-byte reproducible between runs; the phases compile in memory (about a
second per phase). The build image's Python runs the copied files, which is only sound when its
``major.minor`` is the running one's (binary wheels such as pydantic-core are built for one
CPython ABI) and the image's architecture is this machine's; otherwise the layer is skipped with
an informational line, as for a build image without Python (the tiny stack).

builder.toml controls it in pack's ``[lifecycle]`` table:

- ``pybuild = true`` (the default) installs when the build image is compatible, ``false`` never;
- ``version``: pybuild installs itself, so a version other than pybuild's own is noted, not fetched;
- ``uri``: likewise noted and not fetched (a reference lifecycle tarball does not run here).
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import lifecycle
from lifecycle import __version__
from lifecycle.errors import ConfigError
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import LayerTar

__all__ = [
    "LIFECYCLE_DIR",
    "PHASE_NAMES",
    "LifecycleSetting",
    "image_python",
    "lifecycle_layer",
    "lifecycle_setting",
    "runtime_files",
]

LIFECYCLE_DIR = "/cnb/lifecycle"
PHASE_NAMES = ("analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser", "launcher")
_DISTRIBUTION = "pybuild"
_PYTHON = re.compile(r"^(?:\./)?usr/(?:local/)?bin/python(3\.\d+)$")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}

Log = Callable[[str], None]


@dataclass(frozen=True)
class LifecycleSetting:
    """builder.toml's ``[lifecycle]`` as pybuild reads it."""

    install: bool = True
    version: str = ""
    uri: str = ""


def lifecycle_setting(config_path: Path) -> LifecycleSetting:
    """``[lifecycle]`` of ``config_path`` (pack's keys ``version``/``uri``, and pybuild's ``pybuild``)."""
    with config_path.open("rb") as fh:
        table = tomllib.load(fh).get("lifecycle", {})
    if not isinstance(table, dict):
        raise ConfigError("read builder.toml", f"{config_path}: lifecycle must be a table ([lifecycle])")
    install = table.get("pybuild", True)
    if not isinstance(install, bool):
        raise ConfigError(
            "read builder.toml", f"{config_path}: lifecycle.pybuild must be true or false, not {install!r}"
        )
    for key in ("version", "uri"):
        if not isinstance(table.get(key, ""), str):
            raise ConfigError("read builder.toml", f"{config_path}: lifecycle.{key} must be a string")
    return LifecycleSetting(install, str(table.get("version", "")), str(table.get("uri", "")))


def image_python(image: Image) -> str | None:
    """The ``3.X`` of the build image's ``/usr/bin/python3.X`` (or ``/usr/local/bin``), if any.

    Layers are read from the top down, names only, so the answer costs one pass over the layers
    at most; a whiteout of the interpreter in a higher layer hides it.
    """
    hidden: set[str] = set()
    for layer in reversed(image.layers):
        whiteouts: set[str] = set()
        with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./").lstrip("/")
                base = PurePosixPath(name)
                if base.name.startswith(".wh."):
                    whiteouts.add(str(base.parent / base.name.removeprefix(".wh.")))
                    continue
                match = _PYTHON.match(name)
                if match and name not in hidden and not member.isdir():
                    return match[1]
        hidden |= whiteouts
    return None


def _requirements(dist: importlib.metadata.Distribution) -> list[str]:
    """Names of the distributions ``dist`` requires at run time (no extras)."""
    names = []
    for requirement in dist.requires or ():
        if "extra ==" in requirement.replace('extra=="', 'extra == "'):
            continue
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            names.append(match[1])
    return names


def _closure() -> list[importlib.metadata.Distribution]:
    """pybuild's runtime requirements and theirs, each once; those not installed (a marker for
    another platform or Python) are not needed here."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    pending = _requirements(importlib.metadata.distribution(_DISTRIBUTION))
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        pending.extend(_requirements(dist))
    return [seen[name] for name in sorted(seen)]


def _kept(relative: PurePosixPath) -> bool:
    parts = relative.parts
    return (
        bool(parts)
        and parts[0] != ".."
        and "__pycache__" not in parts
        and relative.suffix not in {".pyc", ".pyo"}
        and relative.name != "direct_url.json"  # the path of the wheel on the machine that installed it
    )


def runtime_files() -> dict[str, Path]:
    """Every file the phases import: path under ``lib/`` -> file on this machine."""
    files: dict[str, Path] = {}
    for dist in _closure():
        for entry in dist.files or ():
            relative = PurePosixPath(str(entry))
            source = Path(str(dist.locate_file(entry)))
            if _kept(relative) and source.is_file():
                files[str(relative)] = source
    package = Path(lifecycle.__file__).parent
    for source in _walk(package):
        relative = PurePosixPath("lifecycle", source.relative_to(package).as_posix())
        if _kept(relative):
            files[str(relative)] = source
    return files


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


def _metadata() -> bytes:
    """A minimal dist-info METADATA for pybuild (an editable install has no copyable one)."""
    dist = importlib.metadata.distribution(_DISTRIBUTION)
    lines = ["Metadata-Version: 2.1", f"Name: {_DISTRIBUTION}", f"Version: {__version__}"]
    lines += [f"Requires-Dist: {r}" for r in dist.requires or () if "extra" not in r]
    return ("\n".join(lines) + "\n").encode()


def _script(python: str) -> bytes:
    return (
        f"#!/usr/bin/python{python} -I\n"
        "# pybuild's lifecycle: the phase is the name this file was started by (argv[0]).\n"
        "import sys\n"
        f'sys.path.insert(0, "{LIFECYCLE_DIR}/lib")\n'
        "from lifecycle.cli.dispatch import main\n"
        "main()\n"
    ).encode()


def _compatible(image: Image, python: str | None) -> str | None:
    """Why the copied files cannot run in ``image`` (None when they can)."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "this pybuild is not an installed distribution (pip install it to copy it in)"
    if python is None:
        return "the build image has no python3"
    if python != running:
        return f"the build image has Python {python}, pybuild runs on {running}"
    machine = _ARCHITECTURES.get(platform.machine(), platform.machine())
    if image.config.architecture and image.config.architecture != machine:
        return f"the build image is {image.config.architecture}, this machine {machine}"
    return None


def lifecycle_layer(
    build_image: Image, setting: LifecycleSetting, scratch: Path, info: Log, python: str | None = None
) -> Layer | None:
    """The ``/cnb/lifecycle`` layer for ``build_image``, or None (with a line on ``info``) if skipped."""
    if not setting.install:
        info("Not installing pybuild under /cnb/lifecycle ([lifecycle] pybuild = false)")
        return None
    if setting.version and setting.version != __version__:
        info(f"[lifecycle] version {setting.version}: pybuild installs itself, version {__version__}")
    if setting.uri:
        info(f"[lifecycle] uri {setting.uri} is not fetched: pybuild installs itself")
    found = python if python is not None else image_python(build_image)
    reason = _compatible(build_image, found)
    if reason is not None:
        info(f"Not installing pybuild under {LIFECYCLE_DIR}: {reason}")
        return None
    assert found is not None
    return write_layer(scratch, lambda tar: _fill(tar, found, runtime_files()))


def _fill(tar: LayerTar, python: str, files: dict[str, Path]) -> None:
    tar.add_parents(f"{LIFECYCLE_DIR}/lib")
    tar.add_dir(LIFECYCLE_DIR)
    tar.add_dir(f"{LIFECYCLE_DIR}/lib")
    entries: list[tuple[str, Path | bytes]] = [(name, path) for name, path in files.items()]
    entries.append((f"{_DISTRIBUTION}-{__version__}.dist-info/METADATA", _metadata()))
    for name, source in sorted(entries, key=lambda entry: entry[0]):
        dest = f"{LIFECYCLE_DIR}/lib/{name}"
        tar.add_parents(dest)
        if isinstance(source, bytes):
            tar.add_file(dest, source)
        else:
            tar.add_tree(source, dest)
    tar.add_file(f"{LIFECYCLE_DIR}/lifecycle", _script(python), mode=0o755)
    for phase in sorted(PHASE_NAMES):
        tar.add_symlink(f"{LIFECYCLE_DIR}/{phase}", "lifecycle")
