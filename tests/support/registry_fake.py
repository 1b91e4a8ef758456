"""An in-memory OCI distribution registry behind ``httpx.MockTransport``, for unit tests (no network).

It speaks what distribution 2.8 speaks (ENVIRONMENT.md §3): POST then PUT or PATCH uploads, a
single-request POST upload that stores nothing, cross-repository mounts (201), manifests by tag
or digest, paginated tags and catalog. Knobs: ``auth`` ("basic" or "bearer" with ``users``),
``failures`` (answer a status for the first N requests a predicate matches), ``mount_status``,
``absolute_locations``. Every request is kept in ``requests``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from lifecycle.backends.registry import RegistryStore, RetryPolicy

TOKEN_REALM = "https://auth.example.test/token"
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOADS = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


@dataclass
class Failure:
    """Answer ``status`` (with ``headers``) to the first ``times`` requests ``matches`` accepts."""

    matches: Callable[[httpx.Request], bool]
    status: int = 500
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    error: type[Exception] | None = None


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    host: str = "registry.example.test"
    auth: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    mount_status: int | None = None
    absolute_locations: bool = False
    failures: list[Failure] = field(default_factory=list)
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    manifests: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    _uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, method: str, pattern: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url.path)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            # A copy: an auth flow adds headers to the request object when it replays it.
            self.requests.append(
                httpx.Request(
                    request.method, request.url, headers=request.headers.copy(), content=request.content
                )
            )
            failed = self._failure(request)
            if failed is not None:
                return failed
            if request.url.host != self.host:
                return self._token(request)
            denied = self._check_auth(request)
            return denied if denied is not None else self._route(request)

    def _failure(self, request: httpx.Request) -> httpx.Response | None:
        for failure in self.failures:
            if failure.times > 0 and failure.matches(request):
                failure.times -= 1
                if failure.error is not None:
                    raise failure.error("injected", request=request)  # type: ignore[call-arg]
                return httpx.Response(
                    failure.status, headers=failure.headers, json=_errors("INJECTED", "boom")
                )
        return None

    # -- auth -------------------------------------------------------------------------------------
    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("Authorization", "")
        if self.auth == "basic" and not self._basic_ok(header):
            return httpx.Response(
                401,
                headers={"WWW-Authenticate": 'Basic realm="fake"'},
                json=_errors("UNAUTHORIZED", "authentication required"),
            )
        if self.auth == "bearer" and not self._bearer_ok(header, request):
            scope = _scope(request)
            challenge = f'Bearer realm="{TOKEN_REALM}",service="fake-registry",scope="{scope}"'
            return httpx.Response(
                401,
                headers={"WWW-Authenticate": challenge},
                json=_errors("UNAUTHORIZED", "authentication required"),
            )
        return None

    def _basic_ok(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == password

    def _bearer_ok(self, header: str, request: httpx.Request) -> bool:
        granted = self.tokens.get(header.removeprefix("Bearer "), []) if header.startswith("Bearer ") else []
        needed = _scope(request)
        return any(
            needed == scope or (needed.endswith(":pull") and scope == needed + ",push") for scope in granted
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Authorization", "")
        if self.users and not self._basic_ok(header):
            return httpx.Response(401, json={"details": "bad credentials"})
        token = secrets.token_hex(8)
        form = dict(urllib.parse.parse_qsl(request.content.decode()))
        self.tokens[token] = request.url.params.get_list("scope") or form.get("scope", "").split()
        return httpx.Response(200, json={"access_token": token, "expires_in": 300})

    # -- API --------------------------------------------------------------------------------------
    def _route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/v2/_catalog":
            return self._page(request, "repositories", sorted(set(self.manifests) | set(self.blobs)))
        if found := _TAGS.match(path):
            tags = [ref for ref in self.manifests.get(found["name"], {}) if not ref.startswith("sha256:")]
            return self._page(request, "tags", sorted(tags)) if tags else _not_found("NAME_UNKNOWN")
        if found := _UPLOADS.match(path):
            return self._upload(request, found["name"], found["id"])
        if found := _BLOB.match(path):
            data = self.blobs.get(found["name"], {}).get(found["digest"])
            if data is None:
                return _not_found("BLOB_UNKNOWN")
            return httpx.Response(
                200,
                content=b"" if method == "HEAD" else data,
                headers={"Docker-Content-Digest": found["digest"]},
            )
        if found := _MANIFEST.match(path):
            return self._manifest(request, found["name"], found["ref"])
        return httpx.Response(200 if path == "/v2/" else 404, json={})

    def _upload(self, request: httpx.Request, name: str, upload_id: str) -> httpx.Response:
        params = request.url.params
        if request.method == "POST":
            source = self.blobs.get(params.get("from", ""), {}).get(params.get("mount", ""))
            if source is not None and self.mount_status in (None, 201):
                self.blobs.setdefault(name, {})[params["mount"]] = source
                return httpx.Response(201, headers={"Location": f"/v2/{name}/blobs/{params['mount']}"})
            upload_id = secrets.token_hex(6)
            self._uploads[upload_id] = (name, bytearray())
            return self._session(name, upload_id, 202)
        if upload_id not in self._uploads:
            return _not_found("BLOB_UPLOAD_UNKNOWN")
        buffer = self._uploads[upload_id][1]
        if request.method == "PATCH":
            start = int(request.headers.get("Content-Range", f"{len(buffer)}-").split("-")[0])
            if start != len(buffer):
                return httpx.Response(416, json=_errors("BLOB_UPLOAD_INVALID", "range"))
            buffer.extend(request.content)
            return self._session(name, upload_id, 202)
        buffer.extend(request.content)
        del self._uploads[upload_id]
        if digest_of(bytes(buffer)) != params.get("digest"):
            return httpx.Response(400, json=_errors("DIGEST_INVALID", "digest did not match"))
        self.blobs.setdefault(name, {})[params["digest"]] = bytes(buffer)
        return httpx.Response(201, headers={"Location": f"/v2/{name}/blobs/{params['digest']}"})

    def _session(self, name: str, upload_id: str, status: int) -> httpx.Response:
        location = f"/v2/{name}/blobs/uploads/{upload_id}?_state=s{upload_id}"
        if self.absolute_locations:
            location = f"https://{self.host}{location}"
        size = len(self._uploads[upload_id][1])
        return httpx.Response(status, headers={"Location": location, "Range": f"0-{max(size - 1, 0)}"})

    def _manifest(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        stored = self.manifests.setdefault(name, {})
        if request.method == "PUT":
            digest = digest_of(request.content)
            media_type = request.headers.get("Content-Type", "")
            stored[digest] = stored[ref] = (request.content, media_type)
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if ref not in stored:
            return _not_found("MANIFEST_UNKNOWN")
        raw, media_type = stored[ref]
        if request.method == "DELETE":
            for key in [k for k, v in stored.items() if v[0] == raw]:
                del stored[key]
            return httpx.Response(202)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(raw)}
        return httpx.Response(200, content=b"" if request.method == "HEAD" else raw, headers=headers)

    def _page(self, request: httpx.Request, key: str, items: list[str]) -> httpx.Response:
        size = int(request.url.params.get("n", "1000"))
        last = request.url.params.get("last")
        rest = [item for item in items if last is None or item > last]
        page, more = rest[:size], len(rest) > size
        headers = {}
        if more:
            headers["Link"] = f'<{request.url.path}?last={page[-1]}&n={size}>; rel="next"'
        return httpx.Response(200, json={key: page}, headers=headers)


def _scope(request: httpx.Request) -> str:
    found = re.match(r"^/v2/(.+?)/(?:manifests|blobs|tags)/", request.url.path)
    if request.url.path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    if found is None:
        return ""
    action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(request.method, "pull,push")
    return f"repository:{found[1]}:{action}"


def _errors(code: str, message: str) -> dict[str, object]:
    return {"errors": [{"code": code, "message": message}]}


def _not_found(code: str) -> httpx.Response:
    return httpx.Response(404, json=_errors(code, code.lower().replace("_", " ")))


def manifest_json(raw: bytes) -> dict[str, object]:
    document = json.loads(raw)
    assert isinstance(document, dict)
    return document


FAST_RETRY = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)


def fake_store(fake: FakeRegistry, **options: Any) -> RegistryStore:
    """A store on the fake registry over HTTPS, retrying fast (credentials from the test's env)."""
    options.setdefault("retry", FAST_RETRY)
    return RegistryStore(fake.host, transport=fake.transport(), **options)
