"""Registry references: Docker's host rules, tags, digests, and which hosts get plain HTTP."""

from __future__ import annotations

import pytest
from support.registry_fake import FakeRegistry, fake_store

from lifecycle.backends.registry import Reference, parse_reference
from lifecycle.backends.registry.client import plain_http
from lifecycle.backends.registry.reference import is_loopback_host
from lifecycle.errors import ConfigError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost/app", ("localhost", "app", "latest")),
        ("localhost:5000/app:1", ("localhost:5000", "app", "1")),
        ("127.0.0.1:5000/team/app:v1.2-rc_3", ("127.0.0.1:5000", "team/app", "v1.2-rc_3")),
        ("registry.example.com/a/b/c", ("registry.example.com", "a/b/c", "latest")),
        ("docker://localhost:5000/app:1", ("localhost:5000", "app", "1")),
        (f"localhost:5000/app@{DIGEST}", ("localhost:5000", "app", DIGEST)),
        (f"localhost:5000/app:1@{DIGEST}", ("localhost:5000", "app", DIGEST)),
        ("my-registry:5000/app", ("my-registry:5000", "app", "latest")),
        ("[::1]:5000/app:2", ("[::1]:5000", "app", "2")),
        ("example.com/my_app.web--x:tag", ("example.com", "my_app.web--x", "tag")),
    ],
)
def test_parse_reference_follows_dockers_rules(text: str, expected: tuple[str, str, str]) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["app", "app:1", "library/app:1", "team/app", "docker://app:1"])
def test_a_name_without_a_registry_host_asks_the_user_to_name_one(text: str) -> None:
    with pytest.raises(
        ConfigError, match=r"name the registry host, e\.g\. localhost:5000/.*Docker Hub is not reachable"
    ):
        parse_reference(text)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("localhost:5000/App:1", "not a valid repository name"),
        ("localhost:5000/app:", "not a valid tag"),
        ("localhost:5000/app:-x", "not a valid tag"),
        ("localhost:5000/app@sha256:1234", "not a sha256 digest"),
        ("localhost:5000/app//x", "not a valid repository name"),
        ("localhost:5000/", "not a valid repository name"),
    ],
)
def test_malformed_references_are_config_errors(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_reference(text)


def test_a_reference_prints_as_docker_writes_it() -> None:
    assert str(parse_reference("localhost:5000/app")) == "localhost:5000/app:latest"
    assert str(parse_reference(f"localhost:5000/app@{DIGEST}")) == f"localhost:5000/app@{DIGEST}"
    assert parse_reference("localhost:5000/app").name == "localhost:5000/app"


def test_store_refs_are_repositories_on_its_host_and_may_name_the_host() -> None:
    store = fake_store(FakeRegistry(host="reg.test:5000"))
    assert store.reference("app:1") == Reference("reg.test:5000", "app", "1")
    assert store.reference("team/app") == Reference("reg.test:5000", "team/app", "latest")
    assert store.reference("reg.test:5000/app:2") == Reference("reg.test:5000", "app", "2")
    assert store.reference("docker://reg.test:5000/app:2") == Reference("reg.test:5000", "app", "2")
    with pytest.raises(ConfigError, match=r"names registry other\.test, not reg\.test:5000"):
        store.reference("other.test/app:1")


@pytest.mark.parametrize(
    ("host", "listed", "plain"),
    [
        ("localhost:5000", (), True),
        ("localhost", (), True),
        ("127.0.0.1:5000", (), True),
        ("127.3.4.5:80", (), True),
        ("[::1]:5000", (), True),
        ("registry.example.com", (), False),
        ("10.0.0.1:5000", (), False),
        ("registry.example.com:5000", ("registry.example.com:5000",), True),
        ("registry.example.com:5000", ("registry.example.com",), True),
        ("registry.example.com", ("other.example.com",), False),
    ],
)
def test_loopback_and_listed_registries_use_plain_http(
    host: str, listed: tuple[str, ...], plain: bool
) -> None:
    assert is_loopback_host(host, listed) is plain


def test_insecure_flag_and_env_list_decide_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plain_http("registry.example.com", True, ()) is True
    assert plain_http("localhost:5000", False, ()) is False
    assert plain_http("registry.example.com", None, ()) is False
    monkeypatch.setenv("CNB_INSECURE_REGISTRIES", "a.test, registry.example.com")
    assert plain_http("registry.example.com", None, ()) is True
