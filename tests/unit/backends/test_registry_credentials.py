"""Where registry credentials come from: CNB_REGISTRY_AUTH, then docker's config.json and helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from lifecycle.backends.registry import Credentials, find_credentials
from lifecycle.errors import ConfigError

HOST = "registry.example.test:5000"
SECRET = "s3cret-Pa55"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write_docker_config(config: dict[str, object]) -> Path:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def install_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, answer: dict[str, str]
) -> Path:
    """A ``docker-credential-<name>`` on PATH that records the host it was asked for."""
    helper = tmp_path / "bin" / f"docker-credential-{name}"
    helper.parent.mkdir(exist_ok=True)
    asked = tmp_path / f"{name}.asked"
    helper.write_text(f"#!/bin/sh\ncat > {asked}\n[ \"$1\" = get ] && echo '{json.dumps(answer)}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    return asked


def test_no_source_means_anonymous() -> None:
    assert find_credentials(HOST) is None


def test_cnb_registry_auth_basic_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({HOST: f"Basic {basic('me', SECRET)}"}))
    assert find_credentials(HOST) == Credentials("me", SECRET)
    assert find_credentials("other.test") is None


def test_cnb_registry_auth_bearer_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({HOST: "Bearer tok123"}))
    assert find_credentials(HOST) == Credentials(bearer_token="tok123")


def test_cnb_registry_auth_wins_over_docker_config(monkeypatch: pytest.MonkeyPatch) -> None:
    write_docker_config({"auths": {HOST: {"auth": basic("docker", "pw")}}})
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({HOST: f"Basic {basic('cnb', 'pw')}"}))
    found = find_credentials(HOST)
    assert found is not None and found.username == "cnb"


def test_docker_config_serves_hosts_cnb_registry_auth_does_not_name(monkeypatch: pytest.MonkeyPatch) -> None:
    write_docker_config({"auths": {HOST: {"auth": basic("docker", "pw")}}})
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({"other.test": "Basic " + basic("x", "y")}))
    assert find_credentials(HOST) == Credentials("docker", "pw")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": basic("u", "p:with:colons")}, Credentials("u", "p:with:colons")),
        ({"username": "u", "password": "p"}, Credentials("u", "p")),
        ({"identitytoken": "refresh"}, Credentials(identity_token="refresh")),
        ({"registrytoken": "ready"}, Credentials(bearer_token="ready")),
        ({}, None),
    ],
)
def test_docker_config_auths_entry_forms(entry: dict[str, str], expected: Credentials | None) -> None:
    write_docker_config({"auths": {HOST: entry}})
    assert find_credentials(HOST) == expected


def test_docker_config_keys_written_as_urls_match_the_host() -> None:
    write_docker_config({"auths": {f"https://{HOST}/v1/": {"auth": basic("u", "p")}}})
    assert find_credentials(HOST) == Credentials("u", "p")


def test_cred_helper_for_the_host_wins_over_auths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = install_helper(tmp_path, monkeypatch, "fake", {"Username": "helped", "Secret": SECRET})
    write_docker_config({"credHelpers": {HOST: "fake"}, "auths": {HOST: {"auth": basic("file", "pw")}}})
    assert find_credentials(HOST) == Credentials("helped", SECRET)
    assert asked.read_text() == HOST


def test_creds_store_token_user_means_identity_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_helper(tmp_path, monkeypatch, "store", {"Username": "<token>", "Secret": "refresh"})
    write_docker_config({"credsStore": "store"})
    assert find_credentials(HOST) == Credentials(identity_token="refresh")


def test_a_missing_helper_binary_falls_back_to_auths() -> None:
    write_docker_config({"credsStore": "not-installed-anywhere", "auths": {HOST: {"auth": basic("u", "p")}}})
    assert find_credentials(HOST) == Credentials("u", "p")


def test_malformed_sources_are_config_errors_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNB_REGISTRY_AUTH", f"not json {SECRET}")
    with pytest.raises(ConfigError, match="CNB_REGISTRY_AUTH") as raised:
        find_credentials(HOST)
    assert SECRET not in str(raised.value)
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({HOST: f"Basic {SECRET}"}))
    with pytest.raises(ConfigError, match="not base64 of user:password") as raised:
        find_credentials(HOST)
    assert SECRET not in str(raised.value)
    monkeypatch.delenv("CNB_REGISTRY_AUTH")
    path = write_docker_config({})
    path.write_text("{broken")
    with pytest.raises(ConfigError, match="is not a JSON object"):
        find_credentials(HOST)


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Credentials("me", SECRET, identity_token=SECRET, bearer_token=SECRET))
    assert SECRET not in text and "me" in text
