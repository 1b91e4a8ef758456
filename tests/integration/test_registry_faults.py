"""Pushes through failures: injected 5xx/429, latency, dropped connections, a registry that stops.

Each push either succeeds after retrying or fails with one clean error, and in both cases every tag
still points at a complete image (checked with skopeo and by reading the image back and validating).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from support.images import random_image
from support.registry import Registry, RegistryFactory
from support.registry_proxy import Rule, registry_proxy
from support.tools import Tool

from lifecycle.backends.registry import RegistryError, RegistryStore, RetryPolicy
from lifecycle.oci.image import Image
from lifecycle.oci.validate import validate

QUICK = RetryPolicy(attempts=4, timeout=10.0, wait_initial=0.05, wait_max=0.5, wait_jitter=0.05)
BLOB_PUT = r"/blobs/uploads/."
MANIFEST = r"/manifests/"


@pytest.fixture(scope="module")
def own_registry(registry_factory: RegistryFactory) -> Registry:
    """A registry these tests may stop and start without disturbing the shared one."""
    return registry_factory()


@pytest.fixture
def repo() -> str:
    return f"faults/{secrets.token_hex(4)}"


@pytest.fixture
def direct(own_registry: Registry) -> Iterator[RegistryStore]:
    with RegistryStore(own_registry.host, retry=QUICK) as store:
        yield store


def assert_tag_is_complete(skopeo: Tool, registry: Registry, ref: str, image: Image) -> None:
    result = skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/{ref}")
    assert json.loads(result.stdout)["Digest"] == image.digest
    with RegistryStore(registry.host) as store:
        again = store.image(ref)
        assert again.digest == image.digest
        validate(again)


def test_500s_on_blob_uploads_are_retried_and_the_push_succeeds(
    own_registry: Registry, repo: str, skopeo: Tool
) -> None:
    image = random_image(layers=2, size=20_000)
    with registry_proxy(own_registry.host, rules=[Rule("PUT", BLOB_PUT, times=2, status=500)]) as proxy:
        with RegistryStore(proxy.host, retry=QUICK) as store:
            store.write(image, [f"{repo}:1"])
        assert proxy.rules[0].hits == 2
    assert_tag_is_complete(skopeo, own_registry, f"{repo}:1", image)


def test_429_retry_after_is_waited_for(own_registry: Registry, repo: str) -> None:
    patient = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.01, wait_max=5.0, wait_jitter=0.0)
    rule = Rule("HEAD", MANIFEST, times=1, status=429, headers={"Retry-After": "1"})
    with (
        registry_proxy(own_registry.host, rules=[rule]) as proxy,
        RegistryStore(proxy.host, retry=patient) as store,
    ):
        started = time.monotonic()
        assert store.resolve(f"{repo}:none") is None
        assert time.monotonic() - started >= 0.95


def test_a_connection_dropped_mid_upload_restarts_that_upload(
    own_registry: Registry, repo: str, skopeo: Tool
) -> None:
    image = random_image(layers=1, size=100_000)
    with registry_proxy(own_registry.host, rules=[Rule("PUT", BLOB_PUT, times=1, drop_after=4096)]) as proxy:
        with RegistryStore(proxy.host, retry=QUICK) as store:
            store.write(image, [f"{repo}:1"])
        sessions = [s for s in proxy.seen if s.method == "POST"]
        assert len(sessions) == 3  # the layer twice (dropped, then again), the config once
    assert_tag_is_complete(skopeo, own_registry, f"{repo}:1", image)


def test_a_persistent_failure_is_one_error_and_the_previous_tag_survives(
    own_registry: Registry, direct: RegistryStore, repo: str, skopeo: Tool
) -> None:
    old = random_image(layers=2, seed=1)
    direct.write(old, [f"{repo}:1"])
    with registry_proxy(own_registry.host, rules=[Rule("PUT", MANIFEST, times=99, status=503)]) as proxy:
        with RegistryStore(proxy.host, retry=QUICK) as store, pytest.raises(RegistryError) as raised:
            store.write(random_image(layers=2, seed=2), [f"{repo}:1"])
        assert proxy.rules[0].hits == QUICK.attempts
    cause = f"HTTP 503 INJECTED: injected 503 from {proxy.host}, after retrying"
    assert str(raised.value) == f"failed to push {proxy.host}/{repo}: {cause}"
    assert_tag_is_complete(skopeo, own_registry, f"{repo}:1", old)


def test_latency_does_not_serialise_layer_uploads(own_registry: Registry, repo: str) -> None:
    image = random_image(layers=4, size=5_000)
    rules = [Rule("PUT", BLOB_PUT, times=4, delay=0.4)]
    with (
        registry_proxy(own_registry.host, rules=rules) as proxy,
        RegistryStore(proxy.host, retry=QUICK) as store,
    ):
        started = time.monotonic()
        store.write(image, [f"{repo}:1"])
        elapsed = time.monotonic() - started
    assert elapsed < 4 * 0.4, f"4 delayed layer uploads took {elapsed:.2f} s: not in parallel"


class StopOnFirstBytes:
    """A ``Progress`` that stops the registry once the first layer bytes flow (and may restart it)."""

    def __init__(self, registry: Registry, restart_after: float | None) -> None:
        self.registry = registry
        self.restart_after = restart_after
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def start(self, key: str, total: int) -> None:
        return None

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            if self.stopped.is_set():
                return
            self.stopped.set()
        self.registry.stop()
        if self.restart_after is not None:
            threading.Timer(self.restart_after, self.registry.start).start()

    def done(self, key: str) -> None:
        return None


def test_a_registry_that_stops_mid_push_fails_it_cleanly(
    own_registry: Registry, direct: RegistryStore, repo: str, skopeo: Tool
) -> None:
    old = random_image(layers=2, seed=3)
    direct.write(old, [f"{repo}:1"])
    stopper = StopOnFirstBytes(own_registry, restart_after=None)
    unreachable = rf"^failed to push {own_registry.host}/{repo}: cannot reach {own_registry.host}: "
    try:
        with (
            RegistryStore(own_registry.host, retry=QUICK, progress=stopper) as store,
            pytest.raises(RegistryError, match=unreachable) as raised,
        ):
            store.write(random_image(layers=2, size=300_000, seed=4), [f"{repo}:1"])
        assert stopper.stopped.is_set() and "\n" not in str(raised.value)
    finally:
        own_registry.start()
    assert_tag_is_complete(skopeo, own_registry, f"{repo}:1", old)


def test_a_registry_restarted_mid_push_is_retried_to_success(
    own_registry: Registry, repo: str, skopeo: Tool
) -> None:
    new = random_image(layers=2, size=300_000, seed=5)
    stopper = StopOnFirstBytes(own_registry, restart_after=0.2)
    patient = RetryPolicy(attempts=6, timeout=20.0, wait_initial=0.3, wait_max=2.0, wait_jitter=0.1)
    try:
        with RegistryStore(own_registry.host, retry=patient, progress=stopper) as store:
            store.write(new, [f"{repo}:1"])
        assert stopper.stopped.is_set()
        assert store.stats.layer_bytes_written > sum(
            layer.size for layer in new.layers
        )  # one upload ran twice
    finally:
        own_registry.start()
    assert_tag_is_complete(skopeo, own_registry, f"{repo}:1", new)
