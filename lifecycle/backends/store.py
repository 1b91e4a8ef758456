"""The local store: the default target for plain image names.

It is one OCI image layout under ``$PYBUILD_HOME/store`` (default
``~/.local/share/pybuild``), so ``skopeo inspect oci:$PYBUILD_HOME/store:NAME:TAG``
reads what pybuild wrote, and it works with no daemon and no registry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.backends.base import BlobStats, normalize_tag
from lifecycle.backends.layout import Layout
from lifecycle.oci.image import Image

__all__ = ["LocalStore", "StoredImage", "pybuild_home"]


def pybuild_home() -> Path:
    env = os.environ.get("PYBUILD_HOME")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "pybuild"


@dataclass(frozen=True)
class StoredImage:
    tag: str
    digest: str
    created: str | None
    size: int


class LocalStore:
    """Images by name (``myapp`` means ``myapp:latest``) in a layout under the pybuild home."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or pybuild_home()
        self.layout = Layout(self.home / "store", create=True)

    @property
    def stats(self) -> BlobStats:
        return self.layout.stats

    def image(self, ref: str) -> Image:
        return self.layout.image(normalize_tag(ref))

    def write(self, image: Image, tags: Sequence[str]) -> str:
        return self.layout.write(image, [normalize_tag(t) for t in tags])

    def write_if(self, image: Image, tag: str, expected: str | None) -> bool:
        """Compare and swap on one tag (see ``Layout.write_if``)."""
        return self.layout.write_if(image, normalize_tag(tag), expected)

    def resolve(self, ref: str) -> str | None:
        return self.layout.resolve(normalize_tag(ref))

    def tags(self) -> list[str]:
        return self.layout.tags()

    def delete(self, ref: str) -> None:
        self.layout.delete(normalize_tag(ref))

    def gc(self) -> int:
        return self.layout.gc()

    def list(self) -> list[StoredImage]:
        """Every tag with its digest, creation time and compressed size."""
        entries = []
        for tag in self.tags():
            image = self.layout.image(tag)
            size = sum(layer.size for layer in image.layers) + len(image.raw_config)
            entries.append(StoredImage(tag, image.digest, image.config.created, size))
        return entries
