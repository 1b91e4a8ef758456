"""Registry credentials, found as the CNB lifecycle and docker find them.

Order: ``CNB_REGISTRY_AUTH`` (JSON ``{"host": "Basic <base64 user:pass>"}``, the lifecycle's format),
then ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): a ``credHelpers`` entry for
the host, else ``credsStore``, run as ``docker-credential-<name> get`` when that binary exists, else
the ``auths`` entry. Secrets never appear in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.errors import ConfigError

__all__ = ["CNB_REGISTRY_AUTH", "Credentials", "docker_config_path", "find_credentials"]

CNB_REGISTRY_AUTH = "CNB_REGISTRY_AUTH"
_HELPER_TIMEOUT = 30
_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A user and password, or an identity (refresh) token, or a ready bearer token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    bearer_token: str = field(default="", repr=False)

    @property
    def is_anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.bearer_token)

    def basic_header(self) -> str | None:
        if not (self.username or self.password):
            return None
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def find_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for ``host`` from the first source that has any, or None (anonymous)."""
    env = os.environ if env is None else env
    return _from_cnb_env(host, env) or _from_docker_config(host, docker_config_path(env))


def docker_config_path(env: Mapping[str, str]) -> Path:
    directory = env.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"


def _from_cnb_env(host: str, env: Mapping[str, str]) -> Credentials | None:
    raw = env.get(CNB_REGISTRY_AUTH)
    if not raw:
        return None
    try:
        table = json.loads(raw)
    except ValueError:
        table = None
    if not isinstance(table, dict):
        raise ConfigError(f"read {CNB_REGISTRY_AUTH}", 'it is not a JSON object like {"host": "Basic ..."}')
    value = _lookup(table, host)
    if not isinstance(value, str):
        return None
    scheme, _, secret = value.strip().partition(" ")
    if scheme.lower() == "basic":
        return _decode_basic(secret.strip(), f"{CNB_REGISTRY_AUTH} entry for {host}")
    if scheme.lower() == "bearer":
        return Credentials(bearer_token=secret.strip())
    raise ConfigError(f"read {CNB_REGISTRY_AUTH}", f"the entry for {host} is neither Basic nor Bearer")


def _from_docker_config(host: str, path: Path) -> Credentials | None:
    config = _read_docker_config(path)
    if config is None:
        return None
    helper = _lookup(_mapping(config.get("credHelpers")), host) or config.get("credsStore")
    if isinstance(helper, str) and helper:
        found = _from_helper(helper, host)
        if found is not None:
            return found
    entry = _lookup(_mapping(config.get("auths")), host)
    return _from_auth_entry(entry, f"{path} auths entry for {host}") if isinstance(entry, dict) else None


def _read_docker_config(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        config = None
    if not isinstance(config, dict):
        raise ConfigError("read docker credentials", f"{path} is not a JSON object")
    return config


def _from_helper(name: str, host: str) -> Credentials | None:
    """``docker-credential-<name> get`` with the host on stdin; None when absent or it knows nothing."""
    binary = shutil.which(f"docker-credential-{name}")
    if binary is None:
        return None
    try:
        result = subprocess.run(
            [binary, "get"], input=host, capture_output=True, text=True, timeout=_HELPER_TIMEOUT, check=False
        )
        answer = json.loads(result.stdout) if result.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(answer, dict):
        return None
    username, secret = str(answer.get("Username", "")), str(answer.get("Secret", ""))
    if username == _TOKEN_USER:
        return Credentials(identity_token=secret)
    return Credentials(username, secret) if username or secret else None


def _from_auth_entry(entry: dict[str, Any], where: str) -> Credentials | None:
    if entry.get("registrytoken"):
        return Credentials(bearer_token=str(entry["registrytoken"]))
    if entry.get("identitytoken"):
        return Credentials(
            username=str(entry.get("username", "")), identity_token=str(entry["identitytoken"])
        )
    if entry.get("auth"):
        return _decode_basic(str(entry["auth"]), where)
    if entry.get("username") or entry.get("password"):
        return Credentials(str(entry.get("username", "")), str(entry.get("password", "")))
    return None


def _decode_basic(encoded: str, where: str) -> Credentials:
    try:
        pair = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        pair = ""
    username, colon, password = pair.partition(":")
    if not colon:
        raise ConfigError("read registry credentials", f"{where} is not base64 of user:password")
    return Credentials(username, password)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _lookup(table: Mapping[str, Any], host: str) -> Any:
    """The entry for ``host``; keys may be written ``https://host/v1/`` as docker login writes them."""
    if host in table:
        return table[host]
    for key, value in table.items():
        if _host_of(key) == host:
            return value
    return None


def _host_of(key: str) -> str:
    without_scheme = key.split("://", 1)[-1]
    return without_scheme.split("/", 1)[0]
