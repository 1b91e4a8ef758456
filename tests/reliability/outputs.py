"""Secrets planted in pybuild's environment, and a search of everything a command left behind.

``Secrets.install`` puts registry credentials where pybuild looks for them (``$DOCKER_CONFIG``
config.json and ``CNB_REGISTRY_AUTH``) and a private key in the host home, each holding a
unique marker; ``leaks`` greps every file under the given roots (gzip blobs decompressed, so
layer contents are searched too) and every captured output for any marker, in plain text or
base64 (a Basic auth header carries ``user:password`` in base64).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Secrets:
    docker_password: str = field(default_factory=lambda: "dockerpw-" + secrets.token_hex(12))
    cnb_password: str = field(default_factory=lambda: "cnbauthpw-" + secrets.token_hex(12))
    host_key: str = field(default_factory=lambda: "hostkey-" + secrets.token_hex(12))
    env_value: str = field(default_factory=lambda: "envsecret-" + secrets.token_hex(12))

    @property
    def all(self) -> dict[str, str]:
        return {
            "docker config password": self.docker_password,
            "CNB_REGISTRY_AUTH password": self.cnb_password,
            "host home key": self.host_key,
        }

    def install(self, monkeypatch: pytest.MonkeyPatch, root: Path, hosts: Iterable[str]) -> dict[str, Path]:
        """Credentials for ``hosts`` in pybuild's env; returns the host paths a buildpack would aim at."""
        docker = root / "docker-config"
        docker.mkdir(parents=True)
        auths = {host: {"auth": _basic("user", self.docker_password)} for host in hosts}
        (docker / "config.json").write_text(json.dumps({"auths": auths}))
        host_home = root / "host-home"
        (host_home / ".ssh").mkdir(parents=True)
        (host_home / ".ssh" / "id_rsa").write_text(f"-----BEGIN KEY-----\n{self.host_key}\n")
        cnb = {host: "Basic " + _basic("cnbuser", self.cnb_password) for host in hosts}
        monkeypatch.setenv("DOCKER_CONFIG", str(docker))
        monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps(cnb))
        monkeypatch.setenv("HOME", str(host_home))
        return {"docker_config_file": docker / "config.json", "host_home": host_home}

    def needles(self, extra: Iterable[str] = ()) -> dict[str, bytes]:
        """Every form a secret could take in an output: plain, and in a Basic auth header."""
        found: dict[str, bytes] = {}
        for what, value in [*self.all.items(), *((f"extra {v}", v) for v in extra)]:
            found[what] = value.encode()
        found["docker Basic header"] = _basic("user", self.docker_password).encode()
        found["CNB Basic header"] = _basic("cnbuser", self.cnb_password).encode()
        return found


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _contents(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return data + gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


def leaks(needles: dict[str, bytes], roots: Iterable[Path], texts: Iterable[str] = ()) -> list[str]:
    """``what in where`` for every needle found in a file under ``roots`` or in ``texts``."""
    found = []
    for root in roots:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                data = _contents(path)
                found += [f"{what} in {path}" for what, needle in needles.items() if needle in data]
    for number, text in enumerate(texts):
        found += [f"{what} in output {number}" for what, needle in needles.items() if needle in text.encode()]
    return found
