"""A private CNCF distribution registry (Debian ``docker-registry``) for benchmarks, and what it saw.

Started as ENVIRONMENT.md §3 says, with a config of our own: storage under a temp dir (under
``/var/tmp`` by default), ``http.secret`` set, delete enabled, the access log on, listening on
``127.0.0.1:0`` (the registry picks a free port and logs it). ``stop`` ends only the process this
object started and removes its directory.

Two logs come out of it: the access log (combined log format, on stdout) and the application log
(logrus, on stderr; one ``response completed`` line per request with a nanosecond time stamp).

* ``mark()`` then ``traffic(since)`` sums the requests made in between: counts by kind and the
  bytes in each direction. **Response** body bytes are the access log's size field. The access log
  has **no request size** (neither has the application log), so the bytes a client *sent* are
  derived from what the registry stored: a completed blob upload (the ``PUT ...?digest=`` that
  closes a session, after any ``PATCH`` chunks) counts the size of that blob, a manifest ``PUT``
  the size of the manifest it stored (by digest, or by the tag's current link). Every other request
  in these benchmarks carries no body. HTTP headers are not counted in either direction.
* ``completed(since)`` gives the application log's (time, method, path, status) per request, for
  the moment a request was answered (``--watch`` latency).

A sync request (``GET /v2/?bench-sync=<token>``) is made before reading either log, so every
request a client made before the call is in it (the registry logs after answering).
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bench._common import stop_process

BINARY = "docker-registry"
DESCRIPTION = "docker-registry (distribution) 2.8, filesystem storage, 127.0.0.1, plain HTTP"
_LISTENING = re.compile(r'msg="listening on 127\.0\.0\.1:(\d+)')
_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" (?P<status>\d{3}) (?P<size>\d+|-)'
)
_APP_LINE = re.compile(
    r'^time="(?P<time>[^"]+)" level=\w+ msg="response completed[^"]*"'
    r".*?http\.request\.method=(?P<method>[A-Z]+)"
    r'.*?http\.request\.uri="?(?P<uri>[^" ]+)"?.*?http\.response\.duration=(?P<duration>\S+)'
    r".*?http\.response\.status=(?P<status>\d+)"
)
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|µs|us|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
_SYNC = "bench-sync"
LAYER_SIZED = 64 * 1024  # a blob GET or upload bigger than this is layer traffic (configs are ~KB)


@dataclass(frozen=True)
class Request:
    """One request the registry answered; ``size`` is the response body's byte count."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    size: int

    @property
    def kind(self) -> str:
        return _kind(self)


@dataclass(frozen=True)
class Completed:
    """A request as the application log has it: answered at ``time`` (unix), after ``seconds``."""

    time: float
    method: str
    path: str
    status: int
    seconds: float
    query: dict[str, str]


@dataclass(frozen=True)
class Mark:
    access: int
    app: int
    wall: float


class Registry:
    """One ``docker-registry serve`` of ours: ``host`` is ``127.0.0.1:PORT``."""

    def __init__(self, parent: Path, name: str = "registry") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"pybuild-bench-{name}-", dir=parent))
        self.data = self.root / "data"
        self.access_log = self.root / "access.log"
        self.app_log = self.root / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = ""

    # -- process -------------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> float:
        """Start it; the seconds until ``/v2/`` answered."""
        config = {
            "version": "0.1",
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": "127.0.0.1:0",
                "secret": secrets.token_hex(16),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        (self.root / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        # REGISTRY_* variables would override the config file: give the registry none of ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        started = time.perf_counter()
        with self.access_log.open("wb") as out, self.app_log.open("wb") as err:
            self.proc = subprocess.Popen(
                [BINARY, "serve", str(self.root / "config.yml")],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        (self.root / "registry.pid").write_text(str(self.proc.pid))
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}: see {self.app_log}")
            found = _LISTENING.search(self.app_log.read_text(errors="replace"))
            if found and self._status("/v2/", f"127.0.0.1:{found[1]}") == 200:
                self.host = f"127.0.0.1:{found[1]}"
                return time.perf_counter() - started
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer in {timeout:.0f} s: see {self.app_log}")

    def stop(self, keep: bool = False) -> None:
        if self.proc is not None:
            stop_process(self.proc, 15)
        self.proc = None
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Registry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the registry process has used so far."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.data.rglob("*") if p.is_file())

    # -- logs ----------------------------------------------------------------------------------------
    def mark(self) -> Mark:
        self._sync()
        return Mark(self.access_log.stat().st_size, self.app_log.stat().st_size, time.time())

    def requests(self, since: Mark) -> list[Request]:
        lines = self._synced_lines(self.access_log, since.access)
        return [request for line in lines if (request := _parse_access(line)) is not None]

    def completed(self, since: Mark) -> list[Completed]:
        """When and how fast each request after ``since`` was answered (the application log)."""
        out = []
        for line in self._synced_lines(self.app_log, since.app):
            found = _APP_LINE.match(line)
            if found is None or _SYNC in found["uri"]:
                continue
            out.append(
                Completed(
                    _unix(found["time"]),
                    found["method"],
                    unquote(urlsplit(found["uri"]).path),
                    int(found["status"]),
                    _go_seconds(found["duration"]),
                    dict(parse_qsl(urlsplit(found["uri"]).query)),
                )
            )
        return out

    def traffic(self, since: Mark) -> dict[str, Any]:
        """What clients did since ``since``: requests by kind, body bytes each way, layer traffic."""
        return summarize(self.requests(since), self.data)

    def _synced_lines(self, log: Path, offset: int) -> list[str]:
        token = self._sync()
        deadline = time.monotonic() + 10
        while True:
            with log.open("rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
            for index, line in enumerate(lines):
                if token in line:
                    return [x for x in lines[:index] if _SYNC not in x]
            if time.monotonic() > deadline:
                raise RuntimeError(f"sync request {token} not in {log}")
            time.sleep(0.02)

    def _sync(self) -> str:
        token = secrets.token_hex(8)
        self._status(f"/v2/?{_SYNC}={token}", self.host)
        return token

    @staticmethod
    def _status(path: str, host: str) -> int:
        name, port = host.rsplit(":", 1)
        conn = http.client.HTTPConnection(name, int(port), timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError:
            return 0
        finally:
            conn.close()


# -- accounting ---------------------------------------------------------------------------------------


def _parse_access(line: str) -> Request | None:
    found = _ACCESS_LINE.match(line)
    if found is None:
        return None
    target = urlsplit(found["target"])
    return Request(
        method=found["method"],
        path=unquote(target.path),
        query=dict(parse_qsl(target.query)),
        status=int(found["status"]),
        size=0 if found["size"] == "-" else int(found["size"]),
    )


def _kind(r: Request) -> str:
    if r.path.endswith("/_catalog"):
        return "catalog"
    if r.path.endswith("/tags/list"):
        return "tags list"
    if "/manifests/" in r.path:
        return f"manifest {r.method}"
    if "/blobs/uploads" in r.path:
        if r.method == "POST":
            if "mount" in r.query:
                return "blob mount" if r.status == 201 else "blob mount refused (upload opened)"
            return "upload open"
        return f"upload {r.method}"
    if "/blobs/" in r.path:
        return f"blob {r.method}"
    return f"other {r.method}"


def _blob_size(data: Path, digest: str) -> int:
    algorithm, _, hexa = digest.partition(":")
    path = data / "docker/registry/v2/blobs" / algorithm / hexa[:2] / hexa / "data"
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _request_body(r: Request, data: Path) -> int:
    """Bytes the client sent in this request's body, from what the registry stored (see module doc)."""
    if r.method == "PUT" and "/blobs/uploads/" in r.path and r.status == 201:
        return _blob_size(data, r.query.get("digest", ""))
    if r.method == "PUT" and "/manifests/" in r.path and r.status == 201:
        repository, _, reference = r.path.removeprefix("/v2/").partition("/manifests/")
        if ":" not in reference:  # a tag: the digest it names now
            link = data / "docker/registry/v2/repositories" / repository / "_manifests/tags"
            try:
                reference = (link / reference / "current" / "link").read_text().strip()
            except OSError:
                return 0
        return _blob_size(data, reference)
    return 0


def summarize(requests: list[Request], data: Path) -> dict[str, Any]:
    kinds = Counter(r.kind for r in requests)
    statuses = Counter(str(r.status) for r in requests)
    sent = [_request_body(r, data) for r in requests]
    uploads = [n for r, n in zip(requests, sent, strict=True) if "/blobs/uploads/" in r.path]
    blob_gets = [r.size for r in requests if r.kind == "blob GET" and r.status == 200]
    return {
        "requests": len(requests),
        "by_kind": dict(sorted(kinds.items())),
        "by_status": dict(sorted(statuses.items())),
        "client_sent_body_bytes": sum(sent),
        "client_received_body_bytes": sum(r.size for r in requests),
        "blob_upload_bytes": sum(uploads),
        "blob_uploads": len([n for n in uploads if n]),
        "manifest_put_bytes": sum(n for r, n in zip(requests, sent, strict=True) if "/manifests/" in r.path),
        "blob_get_bytes": sum(blob_gets),
        "layer_sized_blob_gets": len([n for n in blob_gets if n > LAYER_SIZED]),
        "layer_sized_blob_uploads": len([n for n in uploads if n > LAYER_SIZED]),
        "layer_bytes_moved": sum(n for n in blob_gets if n > LAYER_SIZED)
        + sum(n for n in uploads if n > LAYER_SIZED),
    }


def stats_snapshot(stats: Any) -> dict[str, int]:
    """The counters of a ``RegistryStats`` (or any ``BlobStats``), without the list of opened blobs."""
    names = (
        "layer_bytes_read",
        "layer_opens",
        "layer_bytes_written",
        "blobs_uploaded",
        "blobs_mounted",
        "blobs_skipped",
    )
    return {name: int(getattr(stats, name)) for name in names if hasattr(stats, name)}


def stats_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: value - before.get(name, 0) for name, value in after.items()}


def _unix(stamp: str) -> float:
    """logrus's RFC 3339 time with nanoseconds (``2026-11-29T09:08:13.208852484Z``) as unix seconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    when = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return when.timestamp() + (float("0." + frac) if frac else 0.0)


def _go_seconds(text: str) -> float:
    """A Go duration (``7.9ms``, ``850µs``, ``1m2.5s``) in seconds."""
    return sum(float(n) * _UNIT[unit] for n, unit in _GO_DURATION.findall(text))


def server_seconds(completed: list[Completed]) -> dict[str, Any]:
    """Time the registry spent answering, in total and by request kind (sum of its durations)."""
    by_kind: dict[str, float] = {}
    for c in completed:
        kind = _kind(Request(c.method, c.path, c.query, c.status, 0))
        by_kind[kind] = by_kind.get(kind, 0.0) + c.seconds
    return {
        "total": round(sum(by_kind.values()), 3),
        "by_kind": {k: round(v, 3) for k, v in sorted(by_kind.items())},
    }


class CpuClock:
    """CPU seconds used since ``start`` by the registry, by this process and by finished children."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.start()

    def start(self) -> None:
        self._at = self._now()

    def read(self) -> dict[str, float]:
        now = self._now()
        return {name: round(now[name] - self._at[name], 2) for name in now}

    def _now(self) -> dict[str, float]:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "registry": self.registry.cpu_seconds(),
            "this_process": time.process_time(),
            "commands": children.ru_utime + children.ru_stime,
        }
