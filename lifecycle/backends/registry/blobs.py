"""Reading blobs from one repository: layer streams (lazy, counted) and small verified blobs.

A layer read from a registry is a handle on ``RegistryBlobs``; bytes move only when
``open_blob`` streams ``GET /v2/<repo>/blobs/<digest>`` (DESIGN.md "lazy images"). The source also
says where it lives (``registry_location``), so a push to another repository of the same
registry can mount the blob instead of moving it.

A registry is not trusted with a blob's length: each stream knows the size its descriptor gives
and is refused as soon as the registry sends a byte more, or when it ends short or hashes to
another digest (``DigestMismatch``), so an endless answer never fills a disk.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import httpx

from lifecycle.backends.base import CountingReader
from lifecycle.backends.registry.client import RegistryClient, RegistryError
from lifecycle.backends.registry.push import RegistryStats
from lifecycle.errors import BlobNotFound, DigestMismatch
from lifecycle.oci.digest import check_digest
from lifecycle.oci.models import MAX_CONFIG_BYTES

__all__ = ["RegistryBlobs"]

_READ_CHUNK = 1 << 20


class RegistryBlobs:
    """Blob source for the layers of images read from ``host/repository``; ``sizes`` by digest."""

    def __init__(
        self, client: RegistryClient, repository: str, stats: RegistryStats, sizes: Mapping[str, int]
    ) -> None:
        self._client = client
        self._repository = repository
        self._stats = stats
        self._sizes = dict(sizes)

    def registry_location(self) -> tuple[str, str]:
        return self._client.host, self._repository

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob's bytes as they arrive: exactly its descriptor's size, hashing to ``digest``."""
        size = self._sizes.get(digest)
        if size is None:
            raise BlobNotFound(f"read {self._what(digest)}", "no descriptor of this image gives its size")
        response = self._client.request(
            "GET",
            self._path(digest),
            action=f"read {self._what(digest)}",
            repository=self._repository,
            stream=True,
            missing=BlobNotFound,
        )
        self._stats.layer_opens += 1
        self._stats.opened.append(digest)
        raw = _ResponseReader(response, self._what(digest), digest, size)
        return CountingReader(io.BufferedReader(raw, _READ_CHUNK), self._stats)  # type: ignore[return-value]

    def read_blob(self, digest: str, what: str) -> bytes:
        """A small blob (a config) in memory, at most ``MAX_CONFIG_BYTES``, checked against its digest."""
        data = self._client.read_document(
            self._path(digest),
            action=f"read {self._what(digest)}",
            repository=self._repository,
            limit=MAX_CONFIG_BYTES,
            what=what,
            missing=BlobNotFound,
        ).content
        check_digest(data, digest, what)
        return data

    def _path(self, digest: str) -> str:
        return f"/v2/{self._repository}/blobs/{digest}"

    def _what(self, digest: str) -> str:
        return f"blob {digest} of {self._client.host}/{self._repository}"


class _ResponseReader(io.RawIOBase):
    """A streamed response body as a raw file; ``iter_raw`` so no content-encoding is undone.

    It must be ``size`` bytes hashing to ``digest``: a byte past ``size`` is refused as it
    arrives, and the end is checked when reached. A response whose body is already in memory (a
    mock transport's) is served from that.
    """

    def __init__(self, response: httpx.Response, what: str, digest: str, size: int) -> None:
        self._response = response
        consumed = response.is_stream_consumed
        self._chunks: Iterator[bytes] = (
            response.iter_bytes(_READ_CHUNK) if consumed else response.iter_raw(_READ_CHUNK)
        )
        self._pending = b""
        self._what = what
        self._digest, self._size = digest, size
        self._hash = hashlib.sha256()
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except httpx.TransportError as exc:
                raise RegistryError(f"read {self._what}", f"the connection broke: {exc}") from exc
            if chunk is None:
                self._check_end()
                return 0
            self._count += len(chunk)
            if self._count > self._size:
                self._response.close()
                raise DigestMismatch(
                    f"read {self._what}",
                    f"the registry sent more than the {self._size} bytes its descriptor gives",
                )
            self._hash.update(chunk)
            self._pending = chunk
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _check_end(self) -> None:
        actual = "sha256:" + self._hash.hexdigest()
        if self._count != self._size or actual != self._digest:
            raise DigestMismatch(
                f"read {self._what}",
                f"the registry sent {self._count} bytes hashing to {actual}, "
                f"not the {self._size} bytes of {self._digest}",
            )

    def close(self) -> None:
        self._response.close()
        super().close()
