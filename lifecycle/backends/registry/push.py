"""Putting blobs into a repository: skip what exists, mount what a sibling repository has, upload the rest.

The upload protocol is what distribution 2.8 accepts (ENVIRONMENT.md §3): POST to open a session,
then one ``PUT <location>?digest=`` streaming the blob or, from ``chunk_threshold`` bytes, ``PATCH``
chunks and a closing ``PUT``. A single-request POST upload is never used: distribution 2.8 answers
202 and stores nothing. A retry opens a new session and re-opens the blob stream. Reused layers move
no bytes (DESIGN.md "lazy images"): a HEAD finds them, or a cross-repository mount links them.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

import httpx

from lifecycle.backends.base import BlobStats
from lifecycle.backends.registry.client import RegistryClient, RegistryError, Retryable
from lifecycle.errors import BlobNotFound, DigestMismatch
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.layer import Layer

__all__ = ["CHUNK_SIZE", "CHUNK_THRESHOLD", "BlobPusher", "Progress", "RegistryLocation", "RegistryStats"]

CHUNK_THRESHOLD = 64 << 20
CHUNK_SIZE = 16 << 20
_STREAM_CHUNK = 1 << 20
_OCTET_STREAM = "application/octet-stream"
Opener = Callable[[], BinaryIO]


class Progress(Protocol):
    """Per-blob upload progress, called from upload threads; ``key`` is the blob digest.

    ``start`` may come again for one key when a retry restarts its upload; a blob that was already
    there or was mounted gets ``start`` and ``done`` with no ``advance``.
    """

    def start(self, key: str, total: int) -> None: ...

    def advance(self, key: str, n: int) -> None: ...

    def done(self, key: str) -> None: ...


@runtime_checkable
class RegistryLocation(Protocol):
    """Capability of a blob source: the ``(host, repository)`` that serves it, so a writer can mount."""

    def registry_location(self) -> tuple[str, str]: ...


@dataclass
class RegistryStats(BlobStats):
    """``BlobStats`` plus what a push moved: bytes sent (retries included) and blobs by outcome."""

    layer_bytes_written: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class BlobPusher:
    """Blob writes into one repository of the client's registry.

    ``seen`` maps digests to a repository of this registry known to hold them (shared by a store's
    pushers, as docker's blob-info cache), so a layer from anywhere can be mounted, not re-sent.
    """

    client: RegistryClient
    repository: str
    stats: RegistryStats
    progress: Progress | None = None
    chunk_threshold: int = CHUNK_THRESHOLD
    chunk_size: int = CHUNK_SIZE
    seen: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"push {self.client.host}/{self.repository}"

    def push_layer(self, layer: Layer) -> None:
        """HEAD, else mount from a sibling repository, else upload (the mount's 202 session first)."""
        if self.exists(layer.digest):
            self.stats.add("blobs_skipped")
            self._report(layer.digest, layer.size)
            self.seen[layer.digest] = self.repository
            return
        location = None
        source = self._mount_source(layer)
        if source is not None:
            location = self.mount(layer.digest, source)
            if location is None:
                self._report(layer.digest, layer.size)
                self.seen[layer.digest] = self.repository
                return
        self.upload(layer.digest, layer.size, layer.compressed, location)
        self.seen[layer.digest] = self.repository

    def push_bytes(self, data: bytes) -> str:
        """A small blob (a config) from memory; no progress is reported for it."""
        digest = sha256_digest(data)
        if self.exists(digest):
            self.stats.add("blobs_skipped")
        else:
            self.upload(digest, len(data), lambda: io.BytesIO(data), report=False)
        return digest

    def exists(self, digest: str) -> bool:
        response = self.client.request(
            "HEAD", self._blob_path(digest), action=self.action, repository=self.repository, ok=(200, 404)
        )
        return response.status_code == 200

    def mount(self, digest: str, source: str) -> httpx.URL | None:
        """Cross-repository mount: None when mounted (201), else the upload session opened instead (202)."""
        response = self.client.request(
            "POST",
            self._uploads_path(),
            action=self.action,
            repository=self.repository,
            params={"mount": digest, "from": source},
            ok=(201, 202),
        )
        if response.status_code == 201:
            self.stats.add("blobs_mounted")
            return None
        return self._location(response)

    def upload(
        self, digest: str, size: int, opener: Opener, session: httpx.URL | None = None, *, report: bool = True
    ) -> None:
        """Upload with retries; each attempt opens a new session (or uses ``session`` once) and stream."""
        sessions = [session]

        def attempt() -> None:
            given = sessions.pop() if sessions else None
            self._upload_once(digest, size, opener, given or self._open_session(), digest if report else None)

        self.client.call(self.action, attempt)
        self.stats.add("blobs_uploaded")

    def _upload_once(
        self, digest: str, size: int, opener: Opener, location: httpx.URL, key: str | None
    ) -> None:
        if key is not None and self.progress is not None:
            self.progress.start(key, size)
        with opener() as opened:
            stream = _Verified(opened, digest, size)
            if size >= self.chunk_threshold:
                location = self.upload_chunks(location, stream, key)
                self._close_session(location, digest, b"", {})
            else:
                headers = {"Content-Type": _OCTET_STREAM, "Content-Length": str(size)}
                self._close_session(location, digest, self._counted(stream, key), headers)
        if key is not None and self.progress is not None:
            self.progress.done(key)

    def upload_chunks(self, location: httpx.URL, stream: _Verified, key: str | None) -> httpx.URL:
        """PATCH ``chunk_size`` pieces (one in memory at a time); returns the session's last location."""
        offset = 0
        while chunk := stream.read(self.chunk_size):
            end = offset + len(chunk) - 1
            headers = {"Content-Type": _OCTET_STREAM, "Content-Range": f"{offset}-{end}"}
            response = self._send("PATCH", location, headers, chunk, ok=(202,))
            location = self._location(response)
            offset = end + 1
            self._count(key, len(chunk))
        stream.check()
        return location

    def _open_session(self) -> httpx.URL:
        request = self.client.http.build_request("POST", self._uploads_path())
        return self._location(self._send_request(request, ok=(202,)))

    def _close_session(
        self, location: httpx.URL, digest: str, body: bytes | Iterator[bytes], headers: dict[str, str]
    ) -> None:
        self._send("PUT", location.copy_merge_params({"digest": digest}), headers, body, ok=(201,))

    def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        body: bytes | Iterator[bytes],
        ok: tuple[int, ...],
    ) -> httpx.Response:
        request = self.client.http.build_request(method, url, headers=headers, content=body)
        return self._send_request(request, ok=ok)

    def _send_request(self, request: httpx.Request, ok: tuple[int, ...]) -> httpx.Response:
        try:
            return self.client.send(
                request, action=self.action, repository=self.repository, ok=ok, missing=BlobNotFound
            )
        except RegistryError as exc:
            if exc.status == 401 and request.method != "POST":
                # A token can expire under a long stream, which auth cannot replay: restart the upload.
                raise Retryable(401, None, "token expired during upload") from exc
            raise

    def _counted(self, stream: _Verified, key: str | None) -> Iterator[bytes]:
        while chunk := stream.read(_STREAM_CHUNK):
            self._count(key, len(chunk))
            yield chunk
        stream.check()

    def _count(self, key: str | None, n: int) -> None:
        if key is None:
            return
        self.stats.add("layer_bytes_written", n)
        if self.progress is not None:
            self.progress.advance(key, n)

    def _report(self, key: str, size: int) -> None:
        if self.progress is not None:
            self.progress.start(key, size)
            self.progress.done(key)

    def _mount_source(self, layer: Layer) -> str | None:
        """A sibling repository that has the blob: where the layer was read from, else where we put it."""
        source = layer.source
        repository = self.seen.get(layer.digest)
        if isinstance(source, RegistryLocation) and source.registry_location()[0] == self.client.host:
            repository = source.registry_location()[1]
        return repository if repository not in (None, self.repository) else None

    def _location(self, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                self.action, f"{self.client.host} answered an upload without a Location header"
            )
        return self.client.http.base_url.join(location)

    def _blob_path(self, digest: str) -> str:
        return f"/v2/{self.repository}/blobs/{digest}"

    def _uploads_path(self) -> str:
        return f"/v2/{self.repository}/blobs/uploads/"


class _Verified:
    """A blob stream that must be ``size`` bytes hashing to ``digest``, else ``DigestMismatch``.

    The check runs before the upload's last request completes, so a lying layer never becomes a blob.
    """

    def __init__(self, stream: BinaryIO, digest: str, size: int) -> None:
        self._stream, self._digest, self._size = stream, digest, size
        self._hash = hashlib.sha256()
        self._count = 0

    def read(self, n: int) -> bytes:
        chunk = self._stream.read(n)
        self._hash.update(chunk)
        self._count += len(chunk)
        if self._count > self._size:
            self._refuse()
        return chunk

    def check(self) -> None:
        if self._count != self._size or "sha256:" + self._hash.hexdigest() != self._digest:
            self._refuse()

    def _refuse(self) -> None:
        raise DigestMismatch(
            f"upload blob {self._digest}",
            f"its source gave other bytes (not {self._size} bytes with that digest)",
        )
