"""A CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1, owned by the test run.

Its access log (combined log format, written to the process's stdout) is kept in a file, so a test
can assert which requests a client made: take ``mark = registry.log_mark()``, act, then read
``registry.access_log(since=mark)``. Variants add htpasswd basic auth or TLS from a throwaway CA.
``registry.stop()`` / ``registry.start()`` take it down and bring it back on the same port and data
(fault tests; use a registry of your own from ``registry_factory`` for that, not the shared one).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from .process import log_tail, service_dir, start, stop, wait_until_ready
from .tools import Tool, require_tool, unavailable

_LISTENING = re.compile(r'msg="listening on 127\.0\.0\.1:(\d+)')
_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" (?P<status>\d{3}) (?P<size>\d+|-)'
    r' "[^"]*" "(?P<agent>[^"]*)"$'
)
_SYNC_PARAM = "pybuild-log-sync"
_SYNC_TIMEOUT = 5.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @property
    def colon_pair(self) -> str:
        """``user:password``, as skopeo's ``--creds``/``--dest-creds`` take it."""
        return f"{self.username}:{self.password}"


@dataclass(frozen=True)
class AccessLogEntry:
    """One request the registry served. `size` is the response body's byte count."""

    method: str
    path: str
    query: Mapping[str, str]
    status: int
    size: int
    user_agent: str


@dataclass(frozen=True)
class Registry:
    """`host` is ``127.0.0.1:PORT`` for image references; `url` is the base URL (http or https)."""

    host: str
    url: str
    log_path: Path
    credentials: Credentials | None = None
    ca_path: Path | None = None
    process: _Process | None = field(default=None, compare=False, repr=False)

    def stop(self) -> None:
        """Stop the registry process (fault tests); `start` brings it back on the same port and data."""
        assert self.process is not None, "this Registry was not started by running_registry"
        self.process.stop()

    def start(self) -> None:
        assert self.process is not None, "this Registry was not started by running_registry"
        self.process.restart(int(self.host.rsplit(":", 1)[1]))
        self.process.wait_ready(self._answers, "docker-registry /v2/ after a restart")

    @property
    def cert_dir(self) -> Path | None:
        """A directory holding only the CA as ``ca.crt``: skopeo's ``--cert-dir`` for the TLS variant."""
        return None if self.ca_path is None else self.ca_path.parent

    def status(self, path: str, credentials: Credentials | None = None) -> int:
        """The HTTP status of ``GET path``, anonymous unless `credentials` are given."""
        headers = {} if credentials is None else {"Authorization": _basic_auth(credentials)}
        conn = self._connection()
        try:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def access_log(self, since: int = 0) -> list[AccessLogEntry]:
        """Requests logged after mark `since`, in order, up to and excluding a sync request of ours.

        The registry writes a log line after it has answered, so a client may return before its
        last line is written; a request made now and seen in the log means earlier ones are there.
        """
        token = secrets.token_hex(8)
        self.status(f"/v2/?{_SYNC_PARAM}={token}")
        deadline = time.monotonic() + _SYNC_TIMEOUT
        while (lines := self._lines_until_sync(since, token)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"sync request not in {self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.02)
        return [_parse_access_line(line) for line in lines]

    def _lines_until_sync(self, since: int, token: str) -> list[str] | None:
        with self.log_path.open("rb") as log:
            log.seek(since)
            lines = log.read().decode().splitlines()
        marker = f"{_SYNC_PARAM}={token}"
        for index, line in enumerate(lines):
            if marker in line:
                return [earlier for earlier in lines[:index] if _SYNC_PARAM not in earlier]
        return None

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.host.rsplit(":", 1)
        if self.ca_path is None:
            return http.client.HTTPConnection(host, int(port), timeout=10)
        context = ssl.create_default_context(cafile=self.ca_path)
        return http.client.HTTPSConnection(host, int(port), timeout=10, context=context)

    def _answers(self) -> bool:
        try:
            return self.status("/v2/") in (200, 401)
        except OSError:
            return False


class RegistryFactory(Protocol):
    def __call__(self, *, auth: bool = False, tls: bool = False) -> Registry: ...


@contextmanager
def running_registry(*, auth: bool = False, tls: bool = False) -> Iterator[Registry]:
    binary = require_tool("docker-registry", "docker-registry")
    root = service_dir("registry")
    try:
        credentials = _write_htpasswd(root) if auth else None
        ca_path = _write_tls_files(root) if tls else None
        config = _config(root, auth=auth, tls=tls)
        (root / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        with _serving(binary, root, credentials, ca_path) as registry:
            yield registry
    finally:
        shutil.rmtree(root)


class _Process:
    """The registry's process; restartable on the port it first bound, with the same config and data."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary, self.root = binary, root
        self.access_log, self.log = root / "access.log", root / "registry.log"
        # REGISTRY_* variables override the config file (REGISTRY_AUTH_FILE, set for skopeo, would add
        # an auth provider), so the registry gets none of ours.
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        argv = [self.binary, "serve", os.fspath(self.root / "config.yml")]
        self.proc = start(argv, stdout=self.access_log, stderr=self.log, env=self.env)
        (self.root / "registry.pid").write_text(str(self.proc.pid))

    def restart(self, port: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        config = json.loads((self.root / "config.yml").read_text())
        config["http"]["addr"] = f"127.0.0.1:{port}"
        (self.root / "config.yml").write_text(json.dumps(config, indent=2))
        self.launch()

    def wait_ready(self, ready: Callable[[], bool], what: str) -> None:
        assert self.proc is not None
        wait_until_ready(self.proc, ready, what=what, log=self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@contextmanager
def _serving(
    binary: str, root: Path, credentials: Credentials | None, ca_path: Path | None
) -> Iterator[Registry]:
    process = _Process(binary, root)
    process.launch()
    try:
        # Port 0: the registry binds a free port itself and logs it, so no two runs race for one.
        process.wait_ready(lambda: _listening_port(process.log) is not None, "docker-registry")
        host = f"127.0.0.1:{_listening_port(process.log)}"
        scheme = "http" if ca_path is None else "https"
        registry = Registry(host, f"{scheme}://{host}", process.access_log, credentials, ca_path, process)
        process.wait_ready(registry._answers, "docker-registry /v2/")
        yield registry
    finally:
        process.stop()


def _listening_port(log: Path) -> int | None:
    found = _LISTENING.search(log.read_text(errors="replace"))
    return None if found is None else int(found[1])


def _config(root: Path, *, auth: bool, tls: bool) -> dict[str, Any]:
    server: dict[str, Any] = {
        "addr": "127.0.0.1:0",
        "secret": secrets.token_hex(16),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    if tls:
        server["tls"] = {"certificate": os.fspath(root / "server.crt"), "key": os.fspath(root / "server.key")}
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": os.fspath(root / "data")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": server,
        "health": {"storagedriver": {"enabled": False}},
    }
    if auth:
        config["auth"] = {"htpasswd": {"realm": "pybuild-test", "path": os.fspath(root / "htpasswd")}}
    return config


def _write_htpasswd(root: Path) -> Credentials:
    htpasswd = Tool(require_tool("htpasswd", "apache2-utils"))
    credentials = Credentials("pybuild", secrets.token_urlsafe(12))
    (root / "htpasswd").write_text(htpasswd("-Bbn", credentials.username, credentials.password).stdout)
    return credentials


def _write_tls_files(root: Path) -> Path:
    """Server key and chain for 127.0.0.1 and localhost; returns the CA path, alone in ``certs/``."""
    try:
        import trustme  # only the TLS variant needs it, and it may not be installed yet
    except ImportError:
        unavailable("python package `trustme` is missing: pip install -e '.[test]'")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(os.fspath(root / "server.key"))
    (root / "server.crt").write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    ca_path = root / "certs" / "ca.crt"
    ca_path.parent.mkdir()
    authority.cert_pem.write_to_path(os.fspath(ca_path))
    return ca_path


def _parse_access_line(line: str) -> AccessLogEntry:
    found = _ACCESS_LINE.match(line)
    if found is None:
        raise AssertionError(f"not a combined-log-format line: {line!r}")
    target = urlsplit(found["target"])
    return AccessLogEntry(
        method=found["method"],
        path=target.path,
        query=dict(parse_qsl(target.query)),
        status=int(found["status"]),
        size=0 if found["size"] == "-" else int(found["size"]),
        user_agent=found["agent"],
    )


def _basic_auth(credentials: Credentials) -> str:
    return "Basic " + base64.b64encode(credentials.colon_pair.encode()).decode()
