"""Reading blobs from one repository: layer streams (lazy, counted) and small verified blobs.

A layer read from a registry is a handle on ``RegistryBlobs``; bytes move only when
``open_blob`` streams ``GET /v2/<repo>/blobs/<digest>`` (DESIGN.md "lazy images"). The source also
says where it lives (``registry_location``), so a push to another repository of the same
registry can mount the blob instead of moving it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import httpx

from lifecycle.backends.base import CountingReader
from lifecycle.backends.registry.client import RegistryClient, RegistryError
from lifecycle.backends.registry.push import RegistryStats
from lifecycle.errors import BlobNotFound
from lifecycle.oci.digest import check_digest

__all__ = ["RegistryBlobs"]

_READ_CHUNK = 1 << 20


class RegistryBlobs:
    """Blob source for the layers of images read from ``host/repository``."""

    def __init__(self, client: RegistryClient, repository: str, stats: RegistryStats) -> None:
        self._client = client
        self._repository = repository
        self._stats = stats

    def registry_location(self) -> tuple[str, str]:
        return self._client.host, self._repository

    def open_blob(self, digest: str) -> BinaryIO:
        response = self._get(digest, stream=True)
        self._stats.layer_opens += 1
        self._stats.opened.append(digest)
        reader = io.BufferedReader(_ResponseReader(response, self._what(digest)), _READ_CHUNK)
        return CountingReader(reader, self._stats)  # type: ignore[return-value]

    def read_blob(self, digest: str, what: str) -> bytes:
        """A small blob (a config) in memory, checked against its digest."""
        data = self._get(digest, stream=False).content
        check_digest(data, digest, what)
        return data

    def _get(self, digest: str, *, stream: bool) -> httpx.Response:
        return self._client.request(
            "GET",
            f"/v2/{self._repository}/blobs/{digest}",
            action=f"read {self._what(digest)}",
            repository=self._repository,
            stream=stream,
            missing=BlobNotFound,
        )

    def _what(self, digest: str) -> str:
        return f"blob {digest} of {self._client.host}/{self._repository}"


class _ResponseReader(io.RawIOBase):
    """A streamed response body as a raw file; ``iter_raw`` so no content-encoding is undone.

    A response whose body is already in memory (a mock transport's) is served from that.
    """

    def __init__(self, response: httpx.Response, what: str) -> None:
        self._response = response
        consumed = response.is_stream_consumed
        self._chunks: Iterator[bytes] = (
            response.iter_bytes(_READ_CHUNK) if consumed else response.iter_raw(_READ_CHUNK)
        )
        self._pending = b""
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except httpx.TransportError as exc:
                raise RegistryError(f"read {self._what}", f"the connection broke: {exc}") from exc
            if chunk is None:
                return 0
            self._pending = chunk
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        self._response.close()
        super().close()
