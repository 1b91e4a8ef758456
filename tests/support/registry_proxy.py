"""An HTTP proxy in front of a test registry, on 127.0.0.1 only: fault injection and Bearer token auth.

``RegistryProxy`` forwards every request to the registry, keeping the client's ``Host`` header so the
registry's upload ``Location``s point back at the proxy. ``Rule``s make it misbehave for the first
``times`` requests that match: answer a status (500, 429 with ``Retry-After``...), add latency, or
drop the connection after reading part of the request body. With ``users`` it also demands Docker
token auth: a 401 ``Bearer`` challenge whose realm is the proxy's own ``/token``, which checks Basic
credentials and grants the scopes asked for. Handler threads are bounded; sockets time out.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

_MAX_THREADS = 16
_SOCKET_TIMEOUT = 30
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
}
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)/")


@dataclass
class Rule:
    """Misbehave for the first ``times`` requests whose method matches and path matches ``path`` (regex)."""

    method: str
    path: str = ""
    times: int = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_after: int | None = None
    hits: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.times <= self.hits or method != self.method or not re.search(self.path, path):
            return False
        self.hits += 1
        return True


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str


@dataclass
class RegistryProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    users: dict[str, str] | None = None
    host: str = ""
    seen: list[Seen] = field(default_factory=list)
    token_requests: list[tuple[list[str], str | None]] = field(default_factory=list)
    _tokens: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            return next((rule for rule in self.rules if rule.take(method, path)), None)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    # -- token auth -------------------------------------------------------------------------------
    def challenge(self, method: str, path: str, authorization: str) -> str | None:
        """The ``WWW-Authenticate`` value when the request lacks a token for its scope, else None."""
        if self.users is None or path == "/token":
            return None
        needed = _needed_scopes(method, path)
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        with self._lock:
            granted = self._tokens.get(token)
        if granted is not None and needed <= granted:
            return None
        scope = _challenge_scope(method, path)
        return f'Bearer realm="{self.url}/token",service="pybuild-test",scope="{scope}"'

    def issue_token(self, query: dict[str, list[str]], authorization: str) -> tuple[int, dict[str, object]]:
        user = _basic_user(authorization, self.users or {})
        scopes = query.get("scope", [])
        with self._lock:
            self.token_requests.append((scopes, user))
        if authorization and user is None:
            return 401, {"details": "incorrect username or password"}
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = {grant for scope in scopes for grant in _expand(scope)} if user else set()
        return 200, {"token": token, "expires_in": 300}


def _expand(scope: str) -> set[str]:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return {f"{kind}:{name}:{action}" for action in actions.split(",")}


def _needed_scopes(method: str, path: str) -> set[str]:
    if path.startswith("/v2/_catalog"):
        return {"registry:catalog:*"}
    found = _REPO_PATH.match(path)
    if found is None:
        return set()
    actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "pull,push")
    return _expand(f"repository:{found['name']}:{actions}")


def _challenge_scope(method: str, path: str) -> str:
    needed = sorted(_needed_scopes(method, path))
    if not needed:
        return ""
    prefix = needed[0].rsplit(":", 1)[0]
    return prefix + ":" + ",".join(scope.rsplit(":", 1)[1] for scope in needed)


def _basic_user(authorization: str, users: dict[str, str]) -> str | None:
    if not authorization.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    return user if users.get(user) == password else None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: RegistryProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.slots = threading.BoundedSemaphore(_MAX_THREADS)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.slots.acquire()
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _SOCKET_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_any(self) -> None:
        proxy = self.server.proxy
        target = urlsplit(self.path)
        authorization = self.headers.get("Authorization", "")
        proxy.record(Seen(self.command, target.path, parse_qs(target.query), authorization))
        if target.path == "/token":
            self._read_body()
            status, body = proxy.issue_token(parse_qs(target.query), authorization)
            return self._reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
        rule = proxy.rule_for(self.command, target.path)
        if rule is not None and self._misbehave(rule):
            return None
        challenge = proxy.challenge(self.command, target.path, authorization)
        if challenge is not None:
            self._read_body()
            return self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        return self._forward()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_any

    def _misbehave(self, rule: Rule) -> bool:
        """Apply ``rule``; True when the request has been answered (or dropped) here."""
        time.sleep(rule.delay)
        if rule.drop_after is not None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(rule.drop_after, length))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if rule.status is not None:
            self._read_body()
            body = json.dumps({"errors": [{"code": "INJECTED", "message": f"injected {rule.status}"}]})
            self._reply(rule.status, body.encode(), {"Content-Type": "application/json", **rule.headers})
            return True
        return False

    def _forward(self) -> None:
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        host, port = self.server.proxy.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=_SOCKET_TIMEOUT)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            content = response.read()
            kept = {
                k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}
            }
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self._reply(response.status, content, kept, length)
        except OSError:
            self._reply(502, b'{"errors":[{"code":"BAD_GATEWAY"}]}', {"Content-Type": "application/json"})
        finally:
            upstream.close()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(self._chunks())
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _chunks(self) -> Iterator[bytes]:
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            yield self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline().strip():
            pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str], length: str | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length if length is not None else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextmanager
def registry_proxy(
    upstream: str, *, rules: list[Rule] | None = None, users: dict[str, str] | None = None
) -> Iterator[RegistryProxy]:
    """A proxy to the registry at ``upstream`` (``127.0.0.1:PORT``), serving until the block ends."""
    proxy = RegistryProxy(upstream, list(rules or []), users)
    server = _Server(proxy)
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
