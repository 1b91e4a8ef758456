"""Registry authentication as an ``httpx.Auth``: Basic, and the Docker token (Bearer) flow.

A 401 carries ``WWW-Authenticate``. ``Basic`` means send the user's password with every request;
``Bearer realm=..,service=..,scope=..`` means fetch a token from the realm (with Basic credentials,
or an identity token as an OAuth refresh token, or anonymously), then retry with
``Authorization: Bearer``. Tokens are cached per scope until they expire, so a push of many blobs
asks once. A request whose body is a one-shot stream is not replayed: its caller restarts it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass

import httpx

from lifecycle.backends.registry.bodies import read_capped
from lifecycle.backends.registry.credentials import Credentials
from lifecycle.errors import ImageError
from lifecycle.oci.models import MAX_API_DOCUMENT_BYTES, json_object

__all__ = ["Challenge", "RegistryAuth", "parse_challenges", "scopes_of"]

_SCHEME = re.compile(r"[\s,]*([A-Za-z][\w-]*)(?=\s|$)")
_PARAM = re.compile(r'[\s,]*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)/")
_DEFAULT_TOKEN_SECONDS = 60
_EXPIRY_MARGIN = 10
_CLIENT_ID = "pybuild"


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a lower-case scheme and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in a header, e.g. ``Bearer realm="https://a/token",service="reg",scope="..."``."""
    challenges: list[Challenge] = []
    position = 0
    while scheme := _SCHEME.match(header, position):
        position = scheme.end()
        params: dict[str, str] = {}
        while param := _PARAM.match(header, position):
            quoted, bare = param[2], param[3]
            params[param[1].lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            position = param.end()
        challenges.append(Challenge(scheme[1].lower(), params))
    return challenges


def scopes_of(request: httpx.Request) -> tuple[str, ...]:
    """The token scopes a request needs: its repository's pull/push/delete, plus a mount's source."""
    path = request.url.path
    if path.startswith("/v2/_catalog"):
        return ("registry:catalog:*",)
    found = _REPO_PATH.match(path)
    if found is None:
        return ()
    actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(request.method, "pull,push")
    scopes = [f"repository:{found['name']}:{actions}"]
    source = request.url.params.get("from")
    if request.url.params.get("mount") and source:
        scopes.append(f"repository:{source}:pull")
    return tuple(scopes)


@dataclass(frozen=True)
class _Cached:
    header: str
    expires: float


class RegistryAuth(httpx.Auth):
    """Answers 401 challenges for one registry host; safe to share between upload threads."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], _Cached] = {}
        self._basic: str | None = None
        self._flights: dict[tuple[str, ...], threading.Lock] = {}

    @property
    def has_credentials(self) -> bool:
        return self.credentials is not None and not self.credentials.is_anonymous

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scopes = scopes_of(request)
        known = self._known(scopes)
        if known is not None:
            request.headers["Authorization"] = known
        response = yield request
        if response.status_code != 401:
            return
        if not isinstance(request.stream, httpx.ByteStream):
            # A one-shot body cannot be sent again, and the 401 must reach the caller (which restarts
            # the upload), so no token is fetched here: the restart's first request fetches it.
            self._forget(scopes, known)
            return
        with self._flight(scopes):
            # Threads that met the same challenge wait here, then use the one answer.
            fresh = self._known(scopes)
            answer = fresh if fresh not in (None, known) else (yield from self._answer(response, scopes))
        if answer is None or answer == known:
            return
        request.headers["Authorization"] = answer
        yield request

    def _forget(self, scopes: tuple[str, ...], header: str | None) -> None:
        with self._lock:
            for key in (scopes, _with_push(scopes)):
                if key in self._tokens and self._tokens[key].header == header:
                    del self._tokens[key]

    def _flight(self, scopes: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._flights.setdefault(scopes, threading.Lock())

    def _known(self, scopes: tuple[str, ...]) -> str | None:
        if self.credentials is not None and self.credentials.bearer_token:
            return "Bearer " + self.credentials.bearer_token
        now = time.monotonic()
        with self._lock:
            for key in (scopes, _with_push(scopes)):
                cached = self._tokens.get(key)
                if cached is not None and cached.expires > now:
                    return cached.header
            return self._basic

    def _answer(
        self, response: httpx.Response, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, str | None]:
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        if bearer is not None:
            return (yield from self._fetch_token(bearer, scopes))
        basic = self.credentials.basic_header() if self.credentials else None
        if basic is not None and any(c.scheme == "basic" for c in challenges):
            with self._lock:
                self._basic = basic
            return basic
        return None

    def _fetch_token(
        self, challenge: Challenge, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, str | None]:
        wanted = _merge_scopes(scopes, challenge.params.get("scope", ""))
        reply = yield self._token_request(challenge, wanted)
        raw = read_capped(reply, MAX_API_DOCUMENT_BYTES, "token answer")  # a refusal ends the request
        if reply.status_code != 200:
            return None
        try:
            body = json_object(raw, "read token", what="token", limit=MAX_API_DOCUMENT_BYTES)
        except ImageError:
            return None
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            return None
        header = "Bearer " + token
        lifetime = _lifetime(body.get("expires_in"))
        with self._lock:
            self._tokens[scopes] = _Cached(header, time.monotonic() + lifetime)
        return header

    def _token_request(self, challenge: Challenge, scopes: list[str]) -> httpx.Request:
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", scope) for scope in scopes]
        if challenge.params.get("service"):
            params.insert(0, ("service", challenge.params["service"]))
        realm = challenge.params["realm"]
        credentials = self.credentials
        if credentials is not None and credentials.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token}
            form |= {"client_id": _CLIENT_ID, "scope": " ".join(scopes)}
            form |= {"service": challenge.params["service"]} if challenge.params.get("service") else {}
            return httpx.Request("POST", realm, data=form)
        basic = credentials.basic_header() if credentials else None
        return httpx.Request("GET", realm, params=params, headers={"Authorization": basic} if basic else {})


def _merge_scopes(scopes: tuple[str, ...], challenged: str) -> list[str]:
    merged = list(scopes)
    for scope in challenged.split(" "):
        if scope and scope not in merged:
            merged.append(scope)
    return merged


def _with_push(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """A pull,push token also serves a pull of the same repository."""
    if len(scopes) != 1 or not scopes[0].endswith(":pull"):
        return scopes
    return (scopes[0] + ",push",)


def _lifetime(expires_in: object) -> float:
    seconds = expires_in if isinstance(expires_in, int | float) and expires_in > 0 else _DEFAULT_TOKEN_SECONDS
    return max(float(seconds) - _EXPIRY_MARGIN, 1.0)
