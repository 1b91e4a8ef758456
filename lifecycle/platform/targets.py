"""Image references -> the store that holds them (DESIGN.md "where images live").

- ``myapp[:tag]``: the local store;
- ``oci:PATH[:tag]``: an OCI layout directory (skopeo's transport syntax);
- ``docker://host/repo:tag``, or ``host/repo:tag`` with ``--publish``: a registry;
- ``docker-daemon:name:tag``, or a name with ``--daemon``: the Docker daemon.

For reads, a name whose first component is a registry host (``localhost:5000/run``,
``registry.example.com/app``) that the local store does not hold is read from that
registry, so run images and previous images may live in a registry. One store object
is kept per registry host, so connections, tokens and byte counters are shared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.backends.base import ImageStore, normalize_tag
from lifecycle.backends.layout import Layout
from lifecycle.backends.registry.reference import is_host, parse_reference
from lifecycle.backends.store import LocalStore
from lifecycle.errors import ConfigError

if TYPE_CHECKING:  # the registry and daemon clients load only when a command uses them
    from lifecycle.backends.daemon import DaemonStore
    from lifecycle.backends.registry import Progress, RegistryStore

__all__ = [
    "Target",
    "daemon_store",
    "open_target",
    "registry_for",
    "set_insecure_registries",
    "set_registry_progress",
]

_DOCKER = "docker://"
_DAEMON = "docker-daemon:"
_daemon: list[DaemonStore] = []
_registries: dict[str, RegistryStore] = {}
_lock = threading.Lock()
_progress: list[Progress | None] = [None]
_insecure: list[str] = []


@dataclass(frozen=True)
class Target:
    """Where an image reference lives and the name it has there."""

    store: ImageStore
    name: str
    display: str
    kind: str


def set_registry_progress(progress: Progress | None) -> None:
    """Upload progress for registries opened from now on (the CLI's progress bars)."""
    _progress[0] = progress


def set_insecure_registries(hosts: list[str] | tuple[str, ...]) -> None:
    """Hosts spoken to over plain HTTP besides loopback and CNB_INSECURE_REGISTRIES (-insecure-registry)."""
    _insecure[:] = hosts


def registry_for(host: str) -> RegistryStore:
    from lifecycle.backends.registry import RegistryStore

    with _lock:
        if host not in _registries:
            insecure = tuple(_insecure)
            _registries[host] = RegistryStore(host, progress=_progress[0], insecure_registries=insecure)
        return _registries[host]


def daemon_store() -> DaemonStore:
    """The Docker daemon of DOCKER_HOST / the docker context, one per process."""
    from lifecycle.backends.daemon import DaemonStore

    with _lock:
        if not _daemon:
            _daemon.append(DaemonStore())
        return _daemon[0]


def open_target(
    ref: str, *, create: bool = False, home: Path | None = None, publish: bool = False, daemon: bool = False
) -> Target:
    """Resolve ``ref`` to a backend; ``create`` makes a missing OCI layout directory."""
    if not ref:
        raise ConfigError("parse image reference", "the image name is empty")
    if ref.startswith("oci:"):
        return _layout_target(ref, create)
    if ref.startswith(_DAEMON) or daemon:
        name = normalize_tag(ref.removeprefix(_DAEMON))
        return Target(daemon_store(), name, f"{_DAEMON}{name}", "daemon")
    if ref.startswith(_DOCKER) or publish:
        return _registry_target(ref)
    store = LocalStore(home)
    name = normalize_tag(ref)
    if not create and _is_registry_name(ref) and store.resolve(name) is None:
        return _registry_target(ref)
    return Target(store, name, name, "store")


def _is_registry_name(ref: str) -> bool:
    first, slash, _ = ref.partition("/")
    return bool(slash) and is_host(first)


def _registry_target(ref: str) -> Target:
    parsed = parse_reference(ref)
    return Target(registry_for(parsed.host), str(parsed), str(parsed), "registry")


def _layout_target(ref: str, create: bool) -> Target:
    path, _, tag = ref[len("oci:") :].partition(":")
    if not path:
        raise ConfigError("parse image reference", f"{ref!r} has no directory (use oci:PATH[:tag])")
    name = tag or "latest"
    return Target(Layout(Path(path), create=create), name, f"oci:{path}:{name}", "layout")
