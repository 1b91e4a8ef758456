"""Compare and swap on a registry tag: blobs first, then a HEAD of the tag, then the PUT."""

from __future__ import annotations

from support.images import random_image
from support.registry_fake import FakeRegistry, fake_store

from lifecycle.backends.base import SwapsTags


def test_the_registry_store_offers_compare_and_swap() -> None:
    assert isinstance(fake_store(FakeRegistry()), SwapsTags)


def test_write_if_moves_the_tag_when_it_still_names_what_was_read() -> None:
    store = fake_store(FakeRegistry())
    old, new = random_image(layers=1, seed=1), random_image(layers=1, seed=2)
    assert store.write_if(old, "app:1", None)
    assert store.write_if(new, "app:1", old.digest)
    assert store.resolve("app:1") == new.digest


def test_write_if_leaves_a_tag_that_moved_and_puts_no_manifest() -> None:
    fake = FakeRegistry()
    store = fake_store(fake)
    read, landed, rebased = (random_image(layers=1, seed=n) for n in (1, 2, 3))
    store.write(read, ["app:1"])
    store.write(landed, ["app:1"])
    puts = len(fake.calls("PUT", "/manifests/"))
    assert not store.write_if(rebased, "app:1", read.digest)
    assert store.resolve("app:1") == landed.digest
    assert len(fake.calls("PUT", "/manifests/")) == puts
    assert not store.write_if(rebased, "fresh:1", read.digest), "a tag that does not exist has moved too"


def test_the_tag_is_read_after_every_blob_right_before_the_put() -> None:
    """The window a concurrent push can still slip into is one HEAD and one PUT wide."""
    fake = FakeRegistry()
    store = fake_store(fake)
    old, new = random_image(layers=2, seed=4), random_image(layers=2, seed=5)
    store.write(old, ["app:1"])
    fake.requests.clear()
    store.write_if(new, "app:1", old.digest)
    order = [f"{r.method} {r.url.path}" for r in fake.requests]
    assert order[-2:] == ["HEAD /v2/app/manifests/1", "PUT /v2/app/manifests/1"]
    assert not any("/manifests/" in call for call in order[:-2])
