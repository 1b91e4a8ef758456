"""One registry host over HTTP(S): TLS choice, auth, bounded retries, and one-line errors.

Every request goes through ``call``: connection errors, 429 and 5xx are retried with jittered
exponential backoff (``stamina``), honouring ``Retry-After``, at most ``RetryPolicy.attempts`` times
and ``RetryPolicy.timeout`` seconds. Anything else that is not the expected status becomes a
``RegistryError`` naming the action, registry and repository (never a URL query or a secret);
a missing manifest is ``ImageNotFound``. No answer is read whole unless it is small enough: a
document is read by ``read_document`` under its cap, every other body is capped by a response
hook, and a blob streams (``bodies.py``).
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import weakref
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TypeVar

import certifi
import httpx
import stamina

from lifecycle.backends.registry.auth import RegistryAuth
from lifecycle.backends.registry.bodies import ACCEPT_IDENTITY, BodyRefused, cap_answers, drain, read_capped
from lifecycle.backends.registry.credentials import CNB_REGISTRY_AUTH, Credentials
from lifecycle.backends.registry.reference import is_loopback_host
from lifecycle.errors import DigestMismatch, ImageError, ImageNotFound
from lifecycle.oci.models import MAX_API_DOCUMENT_BYTES, json_object

__all__ = [
    "CNB_INSECURE_REGISTRIES",
    "SYSTEM_CA_BUNDLE",
    "RegistryClient",
    "RegistryError",
    "RetryPolicy",
    "Retryable",
    "ssl_context",
]

CNB_INSECURE_REGISTRIES = "CNB_INSECURE_REGISTRIES"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_TIMEOUT = httpx.Timeout(10.0, read=120.0, write=120.0)
_USER_AGENT = "pybuild/0.1 (cnb platform; +httpx)"
_MESSAGE_LIMIT = 200
T = TypeVar("T")

# stamina logs each scheduled retry at WARNING; without this, Python's last-resort handler would print
# a bare "stamina.retry_scheduled" to stderr when the CLI configures no logging. Handlers the
# application configures still receive the records.
logging.getLogger("stamina").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts and total seconds bound every retried operation."""

    attempts: int = 5
    timeout: float = 30.0
    wait_initial: float = 0.5
    wait_max: float = 8.0
    wait_jitter: float = 0.5


class RegistryError(ImageError):
    """A registry answered with an error, or could not be reached; ``status`` is the HTTP status."""

    def __init__(self, action: str, cause: str, *, status: int | None = None) -> None:
        super().__init__(action, cause)
        self.status = status


class Retryable(Exception):
    """An answer worth another attempt (429, 5xx, an upload whose token expired mid-stream)."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status} {detail}".strip())
        self.status = status
        self.retry_after = retry_after


def ssl_context() -> ssl.SSLContext:
    """Trust what this host trusts: ``SSL_CERT_FILE`` (else the system bundle) and ``SSL_CERT_DIR``.

    httpx alone would trust only certifi's bundle, not a CA the host's admin added.
    """
    cafile = os.environ.get("SSL_CERT_FILE") or None
    if cafile is None:
        cafile = os.fspath(SYSTEM_CA_BUNDLE) if SYSTEM_CA_BUNDLE.is_file() else certifi.where()
    return _context(cafile, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=8)
def _context(cafile: str, capath: str | None) -> ssl.SSLContext:
    # Loading a CA bundle costs tens of milliseconds; a context is safe to share between clients.
    return ssl.create_default_context(cafile=cafile, capath=capath)


def plain_http(host: str, insecure: bool | None, insecure_registries: Iterable[str]) -> bool:
    if insecure is not None:
        return insecure
    listed = [*insecure_registries, *os.environ.get(CNB_INSECURE_REGISTRIES, "").split(",")]
    return is_loopback_host(host, listed)


class RegistryClient:
    """HTTP to one registry host, shared by the store's threads (``httpx.Client`` is thread-safe)."""

    def __init__(
        self,
        host: str,
        *,
        insecure: bool | None = None,
        insecure_registries: Iterable[str] = (),
        credentials: Credentials | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.host = host
        self.retry = retry or RetryPolicy()
        scheme = "http" if plain_http(host, insecure, insecure_registries) else "https"
        self.auth = RegistryAuth(credentials)
        self.http = httpx.Client(
            base_url=f"{scheme}://{host}",
            auth=self.auth,
            transport=transport,
            verify=ssl_context() if scheme == "https" else True,
            timeout=_TIMEOUT,
            follow_redirects=True,
            headers={"User-Agent": _USER_AGENT, **ACCEPT_IDENTITY},
            event_hooks={"response": [cap_answers]},
        )
        # Stores are often dropped without close(); close the connection pool when this client goes.
        weakref.finalize(self, self.http.close)

    def close(self) -> None:
        self.http.close()

    def call(self, action: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it returns, retrying what ``Retryable``/transport errors allow."""
        policy = self.retry
        try:
            for retrying in stamina.retry_context(
                on=self._backoff,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with retrying:
                    return attempt()
        except Retryable as exc:
            raise RegistryError(
                action, f"{exc} from {self.host}, after retrying", status=exc.status
            ) from None
        except httpx.TransportError as exc:
            raise RegistryError(action, self._unreachable(exc)) from exc
        except BodyRefused as exc:
            raise RegistryError(action, str(exc)) from None
        raise AssertionError("stamina ended without an outcome")  # pragma: no cover

    def _backoff(self, exc: Exception) -> bool | float:
        if isinstance(exc, Retryable):
            return True if exc.retry_after is None else min(exc.retry_after, self.retry.wait_max)
        # A TLS handshake that fails on trust or protocol fails the same way every time.
        return isinstance(exc, httpx.TransportError) and not _tls_refused(exc)

    def _unreachable(self, exc: httpx.TransportError) -> str:
        detail = str(exc) or type(exc).__name__
        hint = ""
        if _tls_refused(exc):
            hint = (
                f" (trust its CA with SSL_CERT_FILE, or name it in {CNB_INSECURE_REGISTRIES} for plain HTTP)"
            )
        return f"cannot reach {self.host}: {detail}{hint}"

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        action: str,
        repository: str,
        ok: Collection[int] = (200,),
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
        missing: type[ImageError] = ImageNotFound,
    ) -> httpx.Response:
        """One retried request whose body is replayable; any status outside ``ok`` raises.

        With ``stream`` the answer comes back open, its body unread (a blob); otherwise its body
        is dropped unread, so only the status and headers are there: read a document with
        ``read_document``.
        """

        def attempt() -> httpx.Response:
            request = self.http.build_request(method, url, headers=headers, params=params, content=content)
            return self.send(
                request, action=action, repository=repository, ok=ok, stream=stream, missing=missing
            )

        return self.call(action, attempt)

    def read_document(
        self,
        url: str | httpx.URL,
        *,
        action: str,
        repository: str,
        limit: int,
        what: str,
        ok: Collection[int] = (200,),
        headers: dict[str, str] | None = None,
        missing: type[ImageError] = ImageNotFound,
    ) -> httpx.Response:
        """GET a document of at most ``limit`` bytes: the closed answer, its ``content`` read.

        The body is read in pieces and refused as soon as it passes ``limit``, whatever its
        ``Content-Length`` says (``RegistryError`` naming ``what``, the URL and the cap); a
        connection that breaks while reading is retried like one that breaks before.
        """

        def attempt() -> httpx.Response:
            request = self.http.build_request("GET", url, headers=headers)
            response = self.send(
                request, action=action, repository=repository, ok=ok, stream=True, missing=missing
            )
            read_capped(response, limit, what)
            return response

        return self.call(action, attempt)

    def send(
        self,
        request: httpx.Request,
        *,
        action: str,
        repository: str,
        ok: Collection[int],
        stream: bool = False,
        missing: type[ImageError] = ImageNotFound,
    ) -> httpx.Response:
        """Send once: ``Retryable`` for 429/5xx, a ``RegistryError`` for other unexpected statuses.

        The answer is always streamed from httpx: an expected one is returned open with
        ``stream``, else with its body dropped; an error body is read under a cap for its code.
        """
        response = self.http.send(request, stream=True)
        if response.status_code in ok:
            if not stream:
                drain(response)
            return response
        code = _registry_code(response, read_capped(response, MAX_API_DOCUMENT_BYTES, "error body"))
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(response.status_code, _retry_after(response), code)
        raise self.error(response, code, action, repository, missing)

    def error(
        self,
        response: httpx.Response,
        code: str,
        action: str,
        repository: str,
        missing: type[ImageError] = ImageNotFound,
    ) -> ImageError:
        """The one-line error a user sees for an unexpected answer; ``code`` from its error body."""
        status, name = response.status_code, f"{self.host}/{repository}"
        if status == 401:
            hint = f"log in: docker login {self.host} or set {CNB_REGISTRY_AUTH}"
            if self.auth.has_credentials:
                hint = f"the registry refused the credentials for {self.host}"
            return RegistryError(action, f"401 unauthorized ({hint})", status=401)
        if status == 403:
            return RegistryError(
                action, f"403 denied (no access to {name} with these credentials)", status=403
            )
        if status == 404:
            return missing(action, f"{name}: {code or 'not found'}")
        if status == 400 and code.startswith("DIGEST_INVALID"):
            return DigestMismatch(action, f"{self.host} says: {code}")
        return RegistryError(action, f"HTTP {status} from {self.host}: {code}", status=status)


def _tls_refused(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "WRONG_VERSION_NUMBER" in text


def _registry_code(response: httpx.Response, raw: bytes) -> str:
    """``CODE: message`` of the first entry in a distribution error body ``raw``, or the reason phrase."""
    try:
        body = json_object(raw, "read error", what="error body", limit=MAX_API_DOCUMENT_BYTES)
        first = (body.get("errors") or [])[0]
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ImageError, AttributeError, IndexError, TypeError, KeyError):
        text = response.reason_phrase
    line = " ".join(str(text).split())
    return line[:_MESSAGE_LIMIT]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
