"""Which Docker daemon to talk to, and how its failures read to a user.

The daemon is the one the docker CLI would use: ``DOCKER_HOST`` (with
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the docker context named by
``DOCKER_CONTEXT`` or ``currentContext`` in ``$DOCKER_CONFIG/config.json``
(endpoint from ``contexts/meta/<sha256(name)>/meta.json``), else
``unix:///var/run/docker.sock``. The SDK is pinned to no API version
(``version="auto"``): docker-py 7.2 would ask for 1.45, which dockerd 20.10
(API 1.41) refuses.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import requests.exceptions
from docker.context import ContextAPI
from docker.utils import kwargs_from_env

from lifecycle.errors import ImageError, ImageNotFound, PybuildError

__all__ = ["DEFAULT_HOST", "connect", "daemon_errors", "docker_params", "is_local_host"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Loads of big images answer only after the daemon has read the whole archive.
_TIMEOUT_SECONDS = 600
_PROBE_SECONDS = 10
_HINT = "start dockerd or set DOCKER_HOST"
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def docker_params(host: str | None = None) -> dict[str, Any]:
    """``base_url`` (always set) and ``tls`` for ``docker.DockerClient``, as the docker CLI picks them."""
    if host:
        return {"base_url": host}
    params: dict[str, Any] = kwargs_from_env()
    if "base_url" not in params:
        try:
            params.update(ContextAPI.kwargs_from_context())
        except Exception as exc:  # docker-py raises a bare Exception for a corrupt meta.json
            raise PybuildError("read docker context", str(exc)) from exc
    params.setdefault("base_url", DEFAULT_HOST)
    return params


def connect(params: dict[str, Any]) -> Any:
    """A ``docker.DockerClient`` that has answered once; a one-line ``PybuildError`` otherwise."""
    _probe(params["base_url"])
    try:
        return docker.DockerClient(**params, version="auto", timeout=_TIMEOUT_SECONDS)
    except docker.errors.DockerException as exc:
        raise unreachable(params["base_url"], exc) from exc


def _probe(base_url: str) -> None:
    """Reach the socket ourselves first: docker-py leaks the socket of a failed connect."""
    parts = urlsplit(base_url)
    try:
        if parts.scheme in ("unix", "http+unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(_PROBE_SECONDS)
                sock.connect(parts.path)
        elif parts.scheme == "tcp" and parts.hostname:
            address = (parts.hostname, parts.port or 2375)
            socket.create_connection(address, timeout=_PROBE_SECONDS).close()
    except OSError as exc:
        raise unreachable(base_url, exc) from exc


def unreachable(host: str, exc: BaseException) -> PybuildError:
    return PybuildError(f"connect to docker daemon at {host}", f"{_root_cause(exc)} ({_HINT})")


def _root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason (``connection refused``), not the SDK's nested reprs."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, OSError) and (current.strerror or isinstance(current, TimeoutError)):
            return (current.strerror or "timed out").lower()
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [a for a in current.args if isinstance(a, BaseException)]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def is_local_host(base_url: str) -> bool:
    """True when the daemon shares this machine's filesystem (bind mounts name host paths)."""
    parts = urlsplit(base_url)
    if parts.scheme in ("unix", "http+unix", "http+docker", "npipe"):
        return True
    return parts.scheme in ("tcp", "http", "https") and parts.hostname in _LOCAL_NAMES


@contextlib.contextmanager
def daemon_errors(action: str, host: str) -> Iterator[None]:
    """Turn SDK exceptions into domain errors naming ``action``."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(action, f"no such image in the docker daemon at {host}") from exc
    except docker.errors.APIError as exc:
        raise ImageError(action, _explanation(exc)) from exc
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        raise unreachable(host, exc) from exc


def _explanation(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc).strip().splitlines()[0]
