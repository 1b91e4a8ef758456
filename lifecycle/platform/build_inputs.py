"""A build's inputs as one fingerprint, so an unchanged rebuild into the local store does nothing.

``pybuild build IMAGE`` computes a sha256 over a canonical JSON of everything that can change
what it writes; after a build into the local store it records ``{fingerprint, digest}`` for
IMAGE. The next build of IMAGE whose fingerprint equals the record, while IMAGE still names that
digest and the image's blobs are present, reports that image and runs nothing (``--rerun`` or
``--clear-cache`` run the buildpacks anyway). That is docker's per-step cache key, taken at the
level of a whole build.

The fingerprint, computed before anything is built (a build during which the app changed is
not recorded: its image may hold the change), covers:

* the app directory: every entry's relative path, type, mode, owner, symlink target and file
  content, no link followed; only ``.git``, which the app copy always leaves out, is skipped
  (project.toml's include/exclude are not applied: any change counts, conservatively);
* ``--descriptor``'s content (the default project.toml is in the app directory);
* every option as given (builder, run image, buildpacks, extensions, network, executor, default
  process, host CA, cache name, previous image), the ``--env``/``--env-file`` values, the
  creation time (``SOURCE_DATE_EPOCH`` or ``--creation-time``), the working directory when
  ``--buildpack``/``--extension`` may name paths relative to it, and ``PYBUILD_*``/``CNB_*``
  variables;
* pybuild's version, the Python version and a stat signature (path, size, mtime, inode) of every
  file of the installed ``lifecycle`` package, so another pybuild never reuses.

What the build resolves from those is recorded with the digest as *dependencies* and checked
again: the builder (its directory of buildpacks hashed like the app, its build image by digest,
or the builder image by digest), the run image (the builder's default, ``--run-image`` or the
one an extension switched to), ``--previous-image``, and each buildpack or extension reference:
a directory (hashed like the app), an archive or ``.cnb`` file (content hash), an image of the
local store (digest) or one of the builder (the builder covers it; the path it would be read
from, had it existed, must still not exist). Images are looked up in the local store only: a
build that read one from anywhere else (a registry, ``oci:``, the daemon, a URL) records nothing
and is never reused. Neither is a build with ``--secret``, ``--cache-image``, ``--executor
host`` (the host's whole environment is an input), ``--creation-time now``, or one written
anywhere but the local store. Not inputs, as in docker's cache: what the network serves, and
the layer cache and previous image (IMAGE itself, which must still be the recorded digest: a
build from it reproduces it).

File hashes come from a stat cache like git's index (``stat_cache``). It and the records live
in the build's directory cache (``$PYBUILD_HOME/cache/build/<name>/reuse/``), so ``pybuild
cache rm`` forgets them too.

This module imports only the standard library (no pydantic, no registry client): ``pybuild
build`` runs it before loading the build machinery, and a reused build costs a few stat calls.
For the same reason its two small JSON files are read with ``json`` rather than models, and it
repeats four one-line naming rules of modules it must not import (``normalize_tag``,
``repository_of``, the cache and builder directory names); unit tests hold them equal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import lifecycle
from lifecycle.platform.stat_cache import StatCache, package_signature, write_atomically

__all__ = [
    "FORMAT",
    "BuildRequest",
    "Dependency",
    "Reuse",
    "builder_dir",
    "cache_dir_name",
    "normalize_tag",
    "pybuild_home",
    "repository_of",
]

FORMAT = 1
_REF_NAME = "org.opencontainers.image.ref.name"
_NOT_STORE = ("oci:", "docker://", "docker-daemon:")
_MAX_DIR_NAME = 200

Dependency = dict[str, str]


# -- names, as the modules the build imports spell them --------------------------------------------
def pybuild_home() -> Path:
    """``$PYBUILD_HOME``, else ``$XDG_DATA_HOME/pybuild`` (``backends.store.pybuild_home``)."""
    env = os.environ.get("PYBUILD_HOME")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "pybuild"


def normalize_tag(name: str) -> str:
    """``myapp`` -> ``myapp:latest`` (``backends.base.normalize_tag``)."""
    last = name.rsplit("/", 1)[-1]
    return name if "@" in last or ":" in last else name + ":latest"


def repository_of(name: str) -> str:
    """``host/repo:tag`` -> ``host/repo`` (``backends.base.repository_of``)."""
    name = name.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def cache_dir_name(name: str) -> str:
    """The directory of cache ``name`` under ``cache/build`` (``cache_dir._dir_name``)."""
    escaped = quote(name, safe="")
    if escaped in (".", ".."):
        return escaped.replace(".", "%2E")
    if len(escaped) > _MAX_DIR_NAME:
        return escaped[: _MAX_DIR_NAME - 17] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return escaped


def builder_dir(home: Path, name: str) -> Path:
    """Where a store builder keeps its buildpacks (``builders.builder_dir``)."""
    return home / "builders" / name.replace("/", "_").replace(":", "_")


# -- the local store, read directly ------------------------------------------------------------------
class _Store:
    """Tags and blobs of ``$PYBUILD_HOME/store``, read without models (and without writing)."""

    def __init__(self, home: Path) -> None:
        self.root = home / "store"
        self._tags: dict[str, str] | None = None

    def resolve(self, ref: str) -> str | None:
        if self._tags is None:
            self._tags = {}
            with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
                for desc in json.loads((self.root / "index.json").read_bytes()).get("manifests", []):
                    name = (desc.get("annotations") or {}).get(_REF_NAME)
                    if isinstance(name, str) and isinstance(desc.get("digest"), str):
                        self._tags[name] = desc["digest"]
        return self._tags.get(normalize_tag(ref))

    def _blob(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def complete(self, digest: str) -> bool:
        """The image manifest ``digest``, its config and every layer are all present."""
        if not digest.startswith("sha256:") or "/" in digest:
            return False
        try:
            manifest = json.loads(self._blob(digest).read_bytes())
            blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return all(isinstance(blob, str) and "/" not in blob and self._blob(blob).is_file() for blob in blobs)


# -- the request and its record ----------------------------------------------------------------------
@dataclass(frozen=True)
class BuildRequest:
    """``pybuild build``'s options as given (``env`` with ``--env-file`` and ``KEY`` forms read)."""

    image: str
    path: Path
    builder: str | None = None
    buildpacks: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    descriptor: Path | None = None
    run_image: str | None = None
    creation_time: str | None = None  # --creation-time as given: seconds, 'now' (never reused) or unset
    network: str = "host"
    executor: str = "bwrap"
    default_process: str | None = None
    ca_bundle: bool = True
    cache_name: str | None = None
    previous_image: str | None = None
    cache_image: str | None = None  # never reused: the cache image is not checked
    secrets: bool = False  # never reused: a secret's value is no input to keep a hash of

    def cache_name_used(self) -> str:
        return self.cache_name or repository_of(self.image)


class Reuse:
    """The fingerprint of one build of a store image, and the record of the last build of it."""

    def __init__(self, home: Path, request: BuildRequest) -> None:
        """Hash the request's inputs now (``OSError`` if one cannot be read)."""
        self.home = home
        self.tag = normalize_tag(request.image)
        reuse_dir = home / "cache" / "build" / cache_dir_name(request.cache_name_used()) / "reuse"
        self.cache = StatCache(reuse_dir / "stat-cache.json")
        self.record_path = reuse_dir / f"build-{hashlib.sha256(self.tag.encode()).hexdigest()[:32]}.json"
        self._store = _Store(home)
        # The app and descriptor as hashed before the build, to check they held until it ended.
        self._sources = (
            self.tree(request.path),
            *([self.file(request.descriptor)] if request.descriptor else []),
        )
        self.fingerprint = _fingerprint(request, self._sources)

    @classmethod
    def open(cls, request: BuildRequest, home: Path | None = None) -> Reuse | None:
        """The fingerprint of ``request``; ``None`` when it cannot be reused (see module doc)."""
        if not _eligible(request):
            return None
        try:
            return cls(home or pybuild_home(), request)
        except OSError:  # an unreadable input: the build reports it
            return None

    def reusable(self) -> str | None:
        """The digest of the image to report instead of building, or ``None``: build."""
        try:
            return self._recorded_digest()
        finally:
            with contextlib.suppress(OSError):  # hashes of files that had changed, for next time
                self.cache.save()

    def _recorded_digest(self) -> str | None:
        try:
            record = json.loads(self.record_path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return None
        digest = record.get("digest")
        if record.get("image") != self.tag or record.get("fingerprint") != self.fingerprint:
            return None
        if not isinstance(digest, str) or self._store.resolve(self.tag) != digest:
            return None
        dependencies = record.get("dependencies")
        if not isinstance(dependencies, list) or not all(self._holds(dep) for dep in dependencies):
            return None
        return digest if self._store.complete(digest) else None

    def _holds(self, dep: object) -> bool:
        if not isinstance(dep, dict) or not all(isinstance(v, str) for v in dep.values()):
            return False
        try:
            return self._now(dep) == dep
        except (OSError, KeyError):
            return False

    def _now(self, dep: Dependency) -> Dependency | None:
        """What ``dep`` says today, or ``None`` for a kind this version does not know."""
        kind = dep["kind"]
        if kind == "image":
            return self.image(dep["ref"], self._store.resolve(dep["ref"]) or "")
        if kind == "absent":
            return self.absent(Path(dep["path"]))
        if kind == "tree":
            return self.tree(Path(dep["path"]))
        if kind == "file":
            return self.file(Path(dep["path"]))
        return None

    # Dependencies, as ``platform.build`` records them and ``reusable`` checks them.
    def tree(self, path: Path) -> Dependency:
        return {"kind": "tree", "path": os.path.abspath(path), "sha256": self.cache.tree_sha256(path)}

    def file(self, path: Path) -> Dependency:
        return {"kind": "file", "path": os.path.abspath(path), "sha256": self.cache.path_sha256(path)}

    def image(self, ref: str, digest: str) -> Dependency:
        return {"kind": "image", "ref": normalize_tag(ref), "digest": digest}

    def absent(self, path: Path) -> Dependency | None:
        """``path`` must go on not existing; ``None`` if it exists now."""
        absolute = os.path.abspath(path)
        return None if os.path.lexists(absolute) else {"kind": "absent", "path": absolute}

    def in_store(self, ref: str, digest: str) -> Dependency | None:
        """An image dependency if ``ref`` is a local store tag naming ``digest``, else ``None``."""
        if ref.startswith(_NOT_STORE) or self._store.resolve(ref) != digest:
            return None
        return self.image(ref, digest)

    def stored(self, ref: str) -> Dependency | None:
        """An image dependency on what local store tag ``ref`` names now; ``None`` if it is no tag."""
        digest = None if ref.startswith(_NOT_STORE) else self._store.resolve(ref)
        return self.image(ref, digest) if digest else None

    def record(self, digest: str, dependencies: Sequence[Dependency]) -> bool:
        """Remember that this fingerprint built ``digest`` (atomically; the stat cache too).

        Not if the app changed while it was built: the image may hold files the fingerprint does not.
        """
        if not all(self._holds(source) for source in self._sources):
            return False
        document = {
            "format": FORMAT,
            "image": self.tag,
            "fingerprint": self.fingerprint,
            "digest": digest,
            "dependencies": [
                dict(pair) for pair in dict.fromkeys(tuple(dep.items()) for dep in dependencies)
            ],
        }
        self.cache.save()
        write_atomically(self.record_path, json.dumps(document, indent=1, sort_keys=True).encode())
        return True


def _eligible(request: BuildRequest) -> bool:
    return (
        bool(request.image)
        and not request.image.startswith(_NOT_STORE)
        and request.executor != "host"
        and request.cache_name != ""
        and request.creation_time != "now"
        and request.cache_image is None
        and not request.secrets
    )


def _fingerprint(request: BuildRequest, sources: Sequence[Dependency]) -> str:
    relative_refs = bool(request.buildpacks or request.extensions)
    inputs = {
        "format": FORMAT,
        "pybuild": lifecycle.__version__,
        "package": package_signature(Path(lifecycle.__file__).parent),
        "python": sys.version,
        "image": normalize_tag(request.image),
        "sources": list(sources),  # the app directory, and --descriptor
        "builder": request.builder,
        "run_image": request.run_image,
        "buildpacks": list(request.buildpacks),
        "extensions": list(request.extensions),
        "cwd": os.getcwd() if relative_refs else None,
        "env": dict(request.env or {}),
        "creation_time": request.creation_time,
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
        "network": request.network,
        "executor": request.executor,
        "default_process": request.default_process,
        "ca_bundle": request.ca_bundle,
        "cache": request.cache_name,
        "previous_image": request.previous_image,
        "environ": {k: v for k, v in os.environ.items() if k.startswith(("PYBUILD_", "CNB_"))},
    }
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
