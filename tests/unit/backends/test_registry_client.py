"""Retries (429, 5xx, connection errors; bounded; Retry-After), TLS trust, and error messages."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from support.images import random_image
from support.registry_fake import Failure, FakeRegistry, fake_store

from lifecycle.backends.registry import RegistryError, RetryPolicy
from lifecycle.backends.registry.client import RegistryClient, Retryable, ssl_context
from lifecycle.errors import ImageNotFound
from lifecycle.oci.validate import validate


def manifest_gets(request: httpx.Request) -> bool:
    return request.method == "GET" and "/manifests/" in request.url.path


def blob_puts(request: httpx.Request) -> bool:
    return request.method == "PUT" and "/blobs/uploads/" in request.url.path


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_transient_status_is_retried_until_it_succeeds(status: int) -> None:
    fake = FakeRegistry()
    store = fake_store(fake)
    store.write(random_image(), ["app:1"])
    fake.failures.append(Failure(manifest_gets, status=status, times=2))
    validate(store.image("app:1"))
    assert len(fake.calls("GET", "/manifests/")) == 3


def test_connection_errors_are_retried() -> None:
    fake = FakeRegistry()
    store = fake_store(fake)
    fake.failures.append(Failure(lambda r: r.method == "HEAD", times=2, error=httpx.ConnectError))
    store.write(random_image(layers=1), ["app:1"])
    assert store.resolve("app:1") is not None


def test_the_client_gives_up_after_the_policy_attempts_with_one_clean_error() -> None:
    fake = FakeRegistry()
    store = fake_store(fake, retry=RetryPolicy(attempts=4, wait_initial=0, wait_max=0, wait_jitter=0))
    fake.failures.append(Failure(manifest_gets, status=503, times=100))
    with pytest.raises(RegistryError) as raised:
        store.image("app:1")
    assert str(raised.value) == (
        f"failed to pull {fake.host}/app:1: HTTP 503 INJECTED: boom from {fake.host}, after retrying"
    )
    assert len(fake.calls("GET", "/manifests/")) == 4


def test_unreachable_registry_is_one_line_naming_the_host() -> None:
    fake = FakeRegistry()
    fake.failures.append(Failure(lambda r: True, times=100, error=httpx.ConnectError))
    with pytest.raises(
        RegistryError, match=rf"^failed to resolve {fake.host}/app:1: cannot reach {fake.host}: injected$"
    ):
        fake_store(fake).resolve("app:1")


def test_an_upload_that_fails_restarts_from_a_new_session_and_a_fresh_stream() -> None:
    fake = FakeRegistry()
    fake.failures.append(Failure(blob_puts, status=500, times=1))
    store = fake_store(fake)
    image = random_image(layers=1, size=5000)
    store.write(image, ["app:1"])
    assert len(fake.calls("POST", "/blobs/uploads/")) == 3  # two sessions for the layer, one for the config
    validate(store.image("app:1"))


def test_retry_after_is_honoured_up_to_the_longest_wait() -> None:
    client = RegistryClient(
        "r.test",
        retry=RetryPolicy(wait_max=4.0),
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    assert client._backoff(Retryable(429, 2.5, "")) == 2.5
    assert client._backoff(Retryable(429, 60.0, "")) == 4.0
    assert client._backoff(Retryable(500, None, "")) is True
    assert client._backoff(httpx.ReadTimeout("slow")) is True
    assert client._backoff(ValueError("bug")) is False


def test_retry_after_header_reaches_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float | None] = []
    fake = FakeRegistry()
    fake.failures.append(Failure(manifest_gets, status=429, times=1, headers={"Retry-After": "0"}))
    store = fake_store(fake)
    original = store.client._backoff

    def spy(exc: Exception) -> bool | float:
        if isinstance(exc, Retryable):
            seen.append(exc.retry_after)
        return original(exc)

    monkeypatch.setattr(store.client, "_backoff", spy)
    with pytest.raises(ImageNotFound):
        store.image("app:1")
    assert seen == [0.0]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "403 denied (no access to {host}/app with these credentials)"),
        (400, "HTTP 400 from {host}: INJECTED: boom"),
    ],
)
def test_client_errors_are_one_line_and_not_retried(status: int, message: str) -> None:
    fake = FakeRegistry()
    fake.failures.append(Failure(manifest_gets, status=status, times=5))
    with pytest.raises(RegistryError) as raised:
        fake_store(fake).image("app:1")
    assert str(raised.value) == f"failed to pull {fake.host}/app:1: " + message.format(host=fake.host)
    assert len(fake.calls("GET", "/manifests/")) == 1


def test_a_missing_manifest_is_image_not_found() -> None:
    fake = FakeRegistry()
    with pytest.raises(
        ImageNotFound, match=rf"failed to pull {fake.host}/app:1: {fake.host}/app: MANIFEST_UNKNOWN"
    ):
        fake_store(fake).image("app:1")


def test_tls_trusts_ssl_cert_file_else_the_system_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    subjects = [dict(item[0] for item in cert["subject"]) for cert in ssl_context().get_ca_certs()]
    assert subjects == [dict(item[0] for item in authority_subject(ca_file))]
    monkeypatch.delenv("SSL_CERT_FILE")
    assert len(ssl_context().get_ca_certs()) > 1


def authority_subject(ca_file: Path) -> tuple[tuple[tuple[str, str], ...], ...]:
    context = ssl.create_default_context(cafile=str(ca_file))
    (cert,) = context.get_ca_certs()
    return cert["subject"]  # type: ignore[no-any-return]
