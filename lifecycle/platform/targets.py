"""Image references -> the store that holds them (DESIGN.md "where images live").

``myapp[:tag]`` is the local store; ``oci:PATH[:tag]`` an OCI layout directory
(skopeo's transport syntax).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lifecycle.backends.base import ImageStore, normalize_tag
from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore
from lifecycle.errors import ConfigError

__all__ = ["Target", "open_target"]


@dataclass(frozen=True)
class Target:
    """Where an image reference lives and the name it has there."""

    store: ImageStore
    name: str
    display: str
    kind: str


def open_target(ref: str, *, create: bool = False, home: Path | None = None) -> Target:
    """Resolve ``ref`` to a backend; ``create`` makes a missing OCI layout directory."""
    if not ref:
        raise ConfigError("parse image reference", "the image name is empty")
    if ref.startswith("oci:"):
        return _layout_target(ref, create)
    return Target(LocalStore(home), normalize_tag(ref), normalize_tag(ref), "store")


def _layout_target(ref: str, create: bool) -> Target:
    path, _, tag = ref[len("oci:") :].partition(":")
    if not path:
        raise ConfigError("parse image reference", f"{ref!r} has no directory (use oci:PATH[:tag])")
    name = tag or "latest"
    return Target(Layout(Path(path), create=create), name, f"oci:{path}:{name}", "layout")
