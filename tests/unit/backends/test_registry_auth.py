"""Registry auth: challenge parsing, scopes, Basic, and the Bearer token flow with its cache."""

from __future__ import annotations

import base64

import httpx
import pytest
from support.images import random_image
from support.registry_fake import FAST_RETRY, TOKEN_REALM, FakeRegistry, fake_store

from lifecycle.backends.registry import Credentials, RegistryError, RegistryStore
from lifecycle.backends.registry.auth import Challenge, parse_challenges, scopes_of
from lifecycle.oci.validate import validate

SECRET = "pa55-W0rd"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="registry"', [Challenge("basic", {"realm": "registry"})]),
        (
            'Bearer realm="https://auth.test/token",service="reg.test",scope="repository:a/b:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.test/token",
                        "service": "reg.test",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
        ),
        (
            "Bearer realm=https://auth.test/token, service=reg",
            [Challenge("bearer", {"realm": "https://auth.test/token", "service": "reg"})],
        ),
        (
            'Basic realm="a", Bearer realm="b",error="invalid_token"',
            [
                Challenge("basic", {"realm": "a"}),
                Challenge("bearer", {"realm": "b", "error": "invalid_token"}),
            ],
        ),
        ('Bearer realm="quo\\"ted"', [Challenge("bearer", {"realm": 'quo"ted'})]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


@pytest.mark.parametrize(
    ("method", "url", "scopes"),
    [
        ("GET", "https://r/v2/team/app/manifests/1", ("repository:team/app:pull",)),
        ("HEAD", "https://r/v2/app/blobs/sha256:aa", ("repository:app:pull",)),
        ("PUT", "https://r/v2/app/manifests/1", ("repository:app:pull,push",)),
        ("DELETE", "https://r/v2/app/manifests/sha256:aa", ("repository:app:delete",)),
        (
            "POST",
            "https://r/v2/app/blobs/uploads/?mount=sha256:aa&from=base",
            ("repository:app:pull,push", "repository:base:pull"),
        ),
        ("GET", "https://r/v2/_catalog?n=10", ("registry:catalog:*",)),
        ("GET", "https://r/v2/", ()),
    ],
)
def test_scopes_of_requests(method: str, url: str, scopes: tuple[str, ...]) -> None:
    assert scopes_of(httpx.Request(method, url)) == scopes


def test_basic_auth_answers_the_challenge_then_is_sent_up_front() -> None:
    fake = FakeRegistry(auth="basic", users={"me": SECRET})
    store = fake_store(fake, credentials=Credentials("me", SECRET))
    store.write(random_image(layers=2), ["app:1"])
    validate(store.image("app:1"))
    assert len([r for r in fake.requests if "Authorization" not in r.headers]) == 1


def test_bearer_flow_fetches_one_token_per_scope_and_threads_share_it() -> None:
    fake = FakeRegistry(auth="bearer", users={"me": SECRET})
    store = fake_store(fake, credentials=Credentials("me", SECRET))
    store.write(random_image(layers=3), ["app:1"])
    validate(store.image("app:1"))
    token_calls = [r for r in fake.requests if str(r.url).startswith(TOKEN_REALM)]
    # One token to look (HEAD blobs) and one to push, however many upload threads met the challenge.
    assert [r.url.params.get_list("scope") for r in token_calls] == [
        ["repository:app:pull"],
        ["repository:app:pull,push"],
    ]
    expected = "Basic " + base64.b64encode(f"me:{SECRET}".encode()).decode()
    assert token_calls[0].headers["Authorization"] == expected
    assert token_calls[0].url.params["service"] == "fake-registry"


def test_bearer_flow_works_anonymously_when_the_realm_allows_it() -> None:
    fake = FakeRegistry(auth="bearer")
    store = fake_store(fake)
    store.write(random_image(layers=1), ["app:1"])
    token_call = next(r for r in fake.requests if str(r.url).startswith(TOKEN_REALM))
    assert "Authorization" not in token_call.headers


def test_identity_token_is_exchanged_as_an_oauth_refresh_token() -> None:
    fake = FakeRegistry(auth="bearer")
    store = fake_store(fake, credentials=Credentials(identity_token="refresh-me"))
    assert store.resolve("app:1") is None
    token_call = next(r for r in fake.requests if str(r.url).startswith(TOKEN_REALM))
    assert token_call.method == "POST"
    assert (
        b"grant_type=refresh_token" in token_call.content
        and b"refresh_token=refresh-me" in token_call.content
    )


def test_a_mount_asks_for_pull_on_the_source_repository() -> None:
    fake = FakeRegistry(auth="bearer")
    store = fake_store(fake)
    image = random_image(layers=1)
    store.write(image, ["base:1"])
    store.write(store.image("base:1"), ["app:1"])
    scopes = [r.url.params.get_list("scope") for r in fake.requests if str(r.url).startswith(TOKEN_REALM)]
    assert ["repository:app:pull,push", "repository:base:pull"] in scopes
    assert fake.calls("POST", "/v2/app/blobs/uploads/")[0].url.params["from"] == "base"


def test_refused_credentials_give_one_line_401_without_the_secret() -> None:
    fake = FakeRegistry(auth="bearer", users={"me": "right"})
    store = fake_store(fake, credentials=Credentials("me", SECRET))
    with pytest.raises(RegistryError) as raised:
        store.write(random_image(layers=1), ["app:1"])
    message = str(raised.value)
    cause = f"401 unauthorized (the registry refused the credentials for {fake.host})"
    assert message == f"failed to push {fake.host}/app: {cause}"
    assert SECRET not in message and raised.value.status == 401


def test_anonymous_401_tells_the_user_how_to_log_in() -> None:
    fake = FakeRegistry(auth="basic", users={"me": SECRET})
    with pytest.raises(RegistryError) as raised:
        fake_store(fake).image("app:1")
    assert str(raised.value) == (
        f"failed to pull {fake.host}/app:1: 401 unauthorized "
        f"(log in: docker login {fake.host} or set CNB_REGISTRY_AUTH)"
    )


def test_a_static_bearer_token_is_sent_with_every_request() -> None:
    fake = FakeRegistry()
    store = fake_store(fake, credentials=Credentials(bearer_token="static"))
    store.resolve("app:1")
    assert fake.requests[0].headers["Authorization"] == "Bearer static"


def test_a_token_revoked_under_a_streaming_upload_restarts_that_upload() -> None:
    fake = FakeRegistry(auth="bearer")
    revoked: list[str] = []

    def revoke_once(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/uploads/" in request.url.path and not revoked:
            revoked.append(request.url.path)
            fake.tokens.clear()
        return fake.handle(request)

    store = RegistryStore(fake.host, transport=httpx.MockTransport(revoke_once), retry=FAST_RETRY)
    image = random_image(layers=1)
    store.write(image, ["app:1"])
    validate(store.image("app:1"))
    assert len(fake.calls("POST", "/uploads/")) == 3  # the layer's session twice, the config's once
    assert fake.calls("PUT", "/uploads/")[0].url.path == revoked[0]
