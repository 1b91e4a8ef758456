"""Which images a fleet command covers: references given, a file of them, a registry, or the store."""

from __future__ import annotations

from pathlib import Path

from lifecycle.backends.store import LocalStore
from lifecycle.errors import ConfigError
from lifecycle.platform.targets import registry_for

__all__ = ["fleet_refs"]


def fleet_refs(
    *, images_file: Path | None = None, refs: tuple[str, ...] = (), registry: str | None = None
) -> list[str]:
    found = list(refs)
    if images_file is not None:
        lines = images_file.read_text().splitlines()
        found += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if registry is not None:
        found += _registry_refs(registry)
    if not found and images_file is None and registry is None:
        found = LocalStore().tags()
    return found


def _registry_refs(registry: str) -> list[str]:
    """Every tag of every repository of ``HOST[/PREFIX]``, as ``docker://`` references."""
    host, _, prefix = registry.removeprefix("docker://").partition("/")
    if not host:
        raise ConfigError("list registry images", f"{registry!r} names no registry host (use HOST[/PREFIX])")
    store = registry_for(host)
    repositories = [
        r for r in store.catalog() if not prefix or r == prefix or r.startswith(prefix.rstrip("/") + "/")
    ]
    return [f"docker://{host}/{tag}" for repository in repositories for tag in store.tags(repository)]
