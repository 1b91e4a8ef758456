"""Answer bodies from a registry, read under a byte cap: a hostile registry cannot make us hold gigabytes.

A document (manifest, config, token, tag list, catalog page, error body) is read by ``read_capped``
as it arrives and refused as soon as it passes its cap, or before any byte when its
``Content-Length`` already says so; a body that lies about its length, or gives none (chunked), is
still stopped at the cap. ``cap_answers`` is the client's response hook: it caps the bytes of
every answer but a blob's content at ``MAX_API_DOCUMENT_BYTES``, because httpx itself reads some
bodies whole (a 401 before the token flow retries, a redirect before it is followed) where no
caller could cap them. A blob's content is bounded by its descriptor instead (``blobs.py``).

The client asks for ``Accept-Encoding: identity``, so the bytes counted are the bytes held: an
answer that is compressed all the same is refused (a small gzip body can expand a thousandfold).

A refusal raises ``BodyRefused``; ``RegistryClient.call`` turns it into a one-line
``RegistryError`` naming the action, the URL (without its query) and the cap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx

from lifecycle.oci.models import MAX_API_DOCUMENT_BYTES

__all__ = ["ACCEPT_IDENTITY", "BodyRefused", "CappedStream", "cap_answers", "drain", "read_capped"]

ACCEPT_IDENTITY = {"Accept-Encoding": "identity"}
_BLOB_PATH = re.compile(r"^/v2/.+/blobs/[a-z0-9+._-]+:[A-Za-z0-9=_-]+$")
_IDENTITY = ("", "identity")


class BodyRefused(Exception):
    """An answer we will not read: over its cap, or compressed; ``str()`` is the one-line cause."""


def too_large(url: str, what: str, limit: int, declared: int | None = None) -> BodyRefused:
    how = f"says it is {declared} bytes (Content-Length)" if declared is not None else "goes on"
    return BodyRefused(f"the {what} at {url} {how}, more than the {limit} bytes allowed")


def shown_url(request: httpx.Request) -> str:
    """The URL to put in an error: scheme, host and path, never the query (it may hold state)."""
    return str(request.url.copy_with(query=None, fragment=None))


def read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    """The whole body of ``response``, at most ``limit`` bytes, then ``response.content``; closes it."""
    try:
        url = shown_url(response.request)
        _refuse_encoded(response, url, what)
        declared = _content_length(response)
        if declared is not None and declared > limit:
            raise too_large(url, what, limit, declared)
        if response.is_stream_consumed:  # a body already in memory (httpx.MockTransport's)
            if len(response.content) > limit:
                raise too_large(url, what, limit)
            return response.content
        inner = response.stream
        if isinstance(inner, CappedStream):
            inner = inner.inner  # the hook's cap for any answer gives way to this document's own
        response.stream = CappedStream(inner, url, what, limit)  # type: ignore[arg-type]
        return response.read()
    finally:
        response.close()


def drain(response: httpx.Response) -> None:
    """Read and drop a body we have no use for (the hook caps it; the connection is reused)."""
    try:
        if not response.is_stream_consumed:
            for _ in response.iter_raw():
                pass
    finally:
        response.close()


class CappedStream(httpx.SyncByteStream):
    """The bytes of one answer, refused as soon as more than ``limit`` have come."""

    def __init__(self, inner: httpx.SyncByteStream, url: str, what: str, limit: int) -> None:
        self.inner, self._url, self._what, self._limit = inner, url, what, limit

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self.inner:
            seen += len(chunk)
            if seen > self._limit:
                raise too_large(self._url, self._what, self._limit)
            yield chunk

    def close(self) -> None:
        self.inner.close()


def cap_answers(response: httpx.Response) -> None:
    """httpx response hook: cap every answer at ``MAX_API_DOCUMENT_BYTES``, but a blob's content."""
    request = response.request
    if request.method == "HEAD":
        return  # no body; its Content-Length is the size of what a GET would send
    if request.method == "GET" and response.status_code == 200 and _BLOB_PATH.match(request.url.path):
        return
    url = shown_url(request)
    _refuse_encoded(response, url, "answer")
    declared = _content_length(response)
    if declared is not None and declared > MAX_API_DOCUMENT_BYTES and not response.is_success:
        raise too_large(url, "answer", MAX_API_DOCUMENT_BYTES, declared)  # a document says its own cap
    if isinstance(response.stream, httpx.SyncByteStream) and not response.is_stream_consumed:
        response.stream = CappedStream(response.stream, url, "answer", MAX_API_DOCUMENT_BYTES)


def _refuse_encoded(response: httpx.Response, url: str, what: str) -> None:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _IDENTITY:
        raise BodyRefused(
            f"the {what} at {url} came with Content-Encoding: {encoding}, which pybuild does not "
            "accept (it asks for identity)"
        )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None
