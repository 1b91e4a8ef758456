"""The one interface every image backend offers, and what they share.

Backends never import one another; the platform picks one per target
(DESIGN.md "where images live").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from lifecycle.oci.image import Image
from lifecycle.oci.layer import BlobSource

__all__ = [
    "REF_NAME",
    "BlobStats",
    "CountingReader",
    "HoldsBlobs",
    "ImageStore",
    "SwapsTags",
    "normalize_tag",
    "repository_of",
]

REF_NAME = "org.opencontainers.image.ref.name"


class ImageStore(Protocol):
    """Read, write, tag and delete images in one place."""

    def image(self, ref: str) -> Image:
        """The image a tag or digest names; ``ImageNotFound`` otherwise."""
        ...

    def write(self, image: Image, tags: Sequence[str]) -> str:
        """Store every blob of ``image``, then point each tag at it; returns the digest."""
        ...

    def resolve(self, ref: str) -> str | None:
        """The digest a tag points to, or None."""
        ...

    def tags(self) -> list[str]: ...

    def delete(self, ref: str) -> None: ...


@runtime_checkable
class SwapsTags(Protocol):
    """Capability: move a tag only if it still names the digest a caller read (compare and swap)."""

    def write_if(self, image: Image, tag: str, expected: str | None) -> bool: ...


@runtime_checkable
class HoldsBlobs(Protocol):
    """Capability: say, without reading it, whether the place ``ref`` names already holds a blob.

    A registry answers with one HEAD in ``ref``'s repository. The exporter asks this of a target
    for a layer whose blob the blob index knows but no store on this machine has, so a layer
    published before is neither compressed nor uploaded again.
    """

    def known_blob(self, ref: str, digest: str, size: int) -> BlobSource | None:
        """A lazy source for blob ``digest`` if it is there with ``size`` bytes, else None."""
        ...


@dataclass
class BlobStats:
    """Bytes this backend served, so tests can prove a rebase read no layer."""

    layer_bytes_read: int = 0
    layer_opens: int = 0
    opened: list[str] = field(default_factory=list)


class CountingReader:
    """Wraps a blob stream and adds what is read to ``BlobStats``."""

    def __init__(self, inner: BinaryIO, stats: BlobStats) -> None:
        self._inner = inner
        self._stats = stats

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._stats.layer_bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        self._stats.layer_bytes_read += n
        return int(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def normalize_tag(name: str) -> str:
    """``myapp`` -> ``myapp:latest``; names with a tag or digest are kept."""
    last = name.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return name
    return name + ":latest"


def repository_of(name: str) -> str:
    """``host/repo:tag`` or ``host/repo@sha256:..`` -> ``host/repo`` (a port colon is not a tag)."""
    name = name.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name
