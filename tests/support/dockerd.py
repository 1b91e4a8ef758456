"""A Docker daemon owned by the test run, or an existing one named by $PYBUILD_TEST_DOCKER_HOST.

Our dockerd gets a private data-root, exec-root, unix socket and Linux bridge. It never uses docker0
and never runs with ``--bridge=none``: either would break another daemon on this machine
(ENVIRONMENT.md §6). With ``--iptables=false`` containers on the bridge reach only the host, which
is all tests need; a container that must reach the loopback registry uses ``--network host``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from .process import remove_dir, service_dir, start, stop, wait_until_ready
from .tools import Tool, require_tool, unavailable

EXTERNAL_HOST_ENV = "PYBUILD_TEST_DOCKER_HOST"
# 10.x is outside docker's default address pools (172.17-31/16, 192.168/16), so our bridge
# cannot collide with a network that some daemon creates later.
_SUBNET_POOL = ipaddress.IPv4Network("10.213.0.0/16")


@dataclass(frozen=True)
class DockerDaemon:
    """`host` is a DOCKER_HOST value, `cli` runs the docker CLI against it, `client` is docker-py."""

    host: str
    client: docker.DockerClient
    cli: Tool

    @property
    def env(self) -> dict[str, str]:
        """The current environment with DOCKER_HOST pointing at this daemon, for subprocesses."""
        return {**os.environ, "DOCKER_HOST": self.host}


@contextmanager
def docker_daemon() -> Iterator[DockerDaemon]:
    cli = require_tool("docker", "docker.io")
    external = os.environ.get(EXTERNAL_HOST_ENV)
    if external:
        with _connected(external, cli) as daemon:
            yield daemon
        return
    dockerd = require_tool("dockerd", "docker.io")
    require_tool("ip", "iproute2")
    if os.geteuid() != 0:
        unavailable(f"starting dockerd needs root; or set {EXTERNAL_HOST_ENV} to a running daemon")
    root = service_dir("dockerd")
    try:
        with (
            _bridge(root) as bridge,
            _running_dockerd(dockerd, root, bridge) as host,
            _connected(host, cli) as daemon,
        ):
            yield daemon
    finally:
        remove_dir(root)


@contextmanager
def _connected(host: str, cli: str) -> Iterator[DockerDaemon]:
    # docker-py 7.2 defaults to API 1.45; Debian's dockerd 20.10 speaks at most 1.41.
    client = docker.DockerClient(base_url=host, version="auto")
    try:
        yield DockerDaemon(host=host, client=client, cli=Tool(cli, {"DOCKER_HOST": host}))
    finally:
        client.close()


@contextmanager
def _running_dockerd(dockerd: str, root: Path, bridge: str) -> Iterator[str]:
    sock, log, config = root / "docker.sock", root / "dockerd.log", root / "daemon.json"
    config.write_text("{}")  # never read the machine's /etc/docker/daemon.json
    argv = [
        dockerd,
        f"--config-file={config}",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{sock}",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip-masq=false",
    ]
    proc = start(argv, stdout=log, stderr=log)
    try:
        wait_until_ready(proc, lambda: _answers_ping(sock), what="dockerd", log=log)
        yield f"unix://{sock}"
    finally:
        stop(proc)


def _answers_ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(2)
            conn.connect(os.fspath(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: dockerd\r\n\r\n")
            status_line = conn.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


@contextmanager
def _bridge(root: Path) -> Iterator[str]:
    """A bridge of our own on an unused /24; its name is kept in ``root/bridge`` for `.ci/run`."""
    name = f"pybuild-{secrets.token_hex(3)}"
    gateway = next(_free_subnet().hosts())
    _ip("link", "add", name, "type", "bridge")
    try:
        (root / "bridge").write_text(name)
        _ip("addr", "add", f"{gateway}/24", "dev", name)
        _ip("link", "set", name, "up")
        yield name
    finally:
        _ip("link", "del", name)


def _free_subnet() -> ipaddress.IPv4Network:
    routes = json.loads(_ip("-json", "-4", "route", "show", "table", "all"))
    used = [ipaddress.ip_network(route["dst"], strict=False) for route in routes if route["dst"][0].isdigit()]
    subnets = list(_SUBNET_POOL.subnets(new_prefix=24))
    start_at = os.getpid() % len(subnets)  # concurrent sessions start their search apart
    for subnet in subnets[start_at:] + subnets[:start_at]:
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise RuntimeError(f"no free /24 left in {_SUBNET_POOL} for a test bridge")


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout
