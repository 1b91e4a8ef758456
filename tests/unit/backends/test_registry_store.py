"""The registry store on a fake registry: upload protocol, mounts, reads, indexes, tags, progress."""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import httpx
import pytest
from support.images import random_image, random_layer
from support.registry_fake import Failure, FakeRegistry, digest_of, fake_store

from lifecycle.backends.registry import RegistryLocation, RegistryStore
from lifecycle.errors import DigestMismatch, ImageNotFound
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.media import OCI_INDEX
from lifecycle.oci.models import Index, Platform
from lifecycle.oci.mutate import append_layers, edit_image_config
from lifecycle.oci.validate import validate


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def store(fake: FakeRegistry) -> RegistryStore:
    return fake_store(fake)


class Recorder:
    """A ``Progress`` that keeps what it was told, per blob."""

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self._lock = threading.Lock()

    def start(self, key: str, total: int) -> None:
        with self._lock:
            self.events[key].append(("start", total))

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            self.events[key].append(("advance", n))

    def done(self, key: str) -> None:
        with self._lock:
            self.events[key].append(("done", 0))


def sent(fake: FakeRegistry) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in fake.requests]


def test_a_pushed_image_reads_back_byte_for_byte_and_validates(store: RegistryStore) -> None:
    image = random_image(layers=3, size=20_000)
    assert store.write(image, ["app:1"]) == image.digest
    again = store.image("app:1")
    assert (again.raw_manifest, again.raw_config) == (image.raw_manifest, image.raw_config)
    assert again.layers == image.layers
    validate(again)
    # validate reads each blob twice: once as stored, once through gunzip
    assert store.stats.layer_bytes_read == 2 * sum(layer.size for layer in image.layers)


def test_a_read_image_fetches_no_layer_until_one_is_opened(store: RegistryStore, fake: FakeRegistry) -> None:
    store.write(random_image(layers=2), ["app:1"])
    fake.requests.clear()
    store.image("app:1")
    assert [r.method for r in fake.requests if "/blobs/" in r.url.path] == ["GET"]  # the config only
    assert store.stats.layer_opens == 0


def test_upload_is_post_then_put_with_the_digest(store: RegistryStore, fake: FakeRegistry) -> None:
    image = random_image(layers=1, size=3000)
    store.write(image, ["app:1"])
    layer = image.layers[0]
    calls = [
        r for r in fake.requests if r.url.params.get("digest") == layer.digest or "uploads" in r.url.path
    ]
    post, put = calls[0], calls[1]
    assert (post.method, post.url.path, post.content) == ("POST", "/v2/app/blobs/uploads/", b"")
    assert put.method == "PUT" and put.url.params["digest"] == layer.digest
    assert put.url.params["_state"].startswith("s")  # the Location's query is kept
    assert put.headers["Content-Length"] == str(layer.size)
    assert store.stats.layer_bytes_written == layer.size


@pytest.mark.parametrize("absolute", [False, True])
def test_relative_and_absolute_upload_locations_both_work(absolute: bool) -> None:
    fake = FakeRegistry(absolute_locations=absolute)
    store = fake_store(fake)
    store.write(random_image(layers=2), ["app:1"])
    validate(store.image("app:1"))


def test_large_blobs_go_up_in_patch_chunks_then_a_closing_put(fake: FakeRegistry) -> None:
    store = fake_store(fake, chunk_threshold=10_000, chunk_size=4096)
    image = random_image(layers=1, size=30_000)
    store.write(image, ["app:1"])
    patches = fake.calls("PATCH")
    size = image.layers[0].size
    assert [p.headers["Content-Range"] for p in patches] == [
        f"{start}-{min(start + 4096, size) - 1}" for start in range(0, size, 4096)
    ]
    closing = next(
        r for r in fake.calls("PUT", "/uploads/") if r.url.params["digest"] == image.layers[0].digest
    )
    assert closing.content == b""
    validate(store.image("app:1"))


def test_a_second_push_moves_no_layer_bytes(store: RegistryStore, fake: FakeRegistry) -> None:
    image = random_image(layers=3)
    store.write(image, ["app:1"])
    fake.requests.clear()
    store.stats.layer_bytes_written = 0
    store.write(image, ["app:2"])
    assert not fake.calls("POST") and not fake.calls("PATCH")
    assert sent(fake)[-1] == "PUT /v2/app/manifests/2"
    assert store.stats.layer_bytes_written == 0 and store.stats.blobs_skipped == 4  # 3 layers and the config


def test_layers_read_from_a_sibling_repository_are_mounted(store: RegistryStore, fake: FakeRegistry) -> None:
    store.write(random_image(layers=2), ["base:1"])
    base = store.image("base:1")
    assert isinstance(base.layers[0].source, RegistryLocation)
    assert base.layers[0].source.registry_location() == (fake.host, "base")
    fake.requests.clear()
    store.write(base, ["app:1"])
    mounts = [r for r in fake.calls("POST") if r.url.params.get("mount")]
    assert {(r.url.params["mount"], r.url.params["from"]) for r in mounts} == {
        (layer.digest, "base") for layer in base.layers
    }
    assert store.stats.blobs_mounted == 2 and store.stats.layer_bytes_read == 0
    validate(store.image("app:1"))


def test_a_refused_mount_falls_back_to_uploading_in_the_session_it_opened(fake: FakeRegistry) -> None:
    store = fake_store(fake)
    store.write(random_image(layers=1), ["base:1"])
    base = store.image("base:1")
    fake.mount_status = 202
    fake.requests.clear()
    uploaded = store.stats.blobs_uploaded
    store.write(base, ["app:1"])
    layer = base.layers[0]
    mount = next(r for r in fake.calls("POST") if r.url.params.get("mount") == layer.digest)
    put = next(r for r in fake.calls("PUT", "/uploads/") if r.url.params["digest"] == layer.digest)
    assert len(fake.calls("POST")) == 2  # the refused mount (its session carries the layer) and the config's
    assert fake.requests.index(mount) < fake.requests.index(put)
    assert store.stats.blobs_mounted == 0 and store.stats.blobs_uploaded - uploaded == 2
    validate(store.image("app:1"))


def test_the_manifest_is_put_only_after_every_blob_and_tags_move_last(
    store: RegistryStore, fake: FakeRegistry
) -> None:
    store.write(random_image(layers=3), ["app:1", "app:latest", "other:x"])
    order = sent(fake)
    first_manifest = next(i for i, call in enumerate(order) if "/manifests/" in call)
    assert all("/manifests/" in call for call in order[first_manifest:])
    assert order[first_manifest:] == [
        "PUT /v2/app/manifests/1",
        "PUT /v2/app/manifests/latest",
        "PUT /v2/other/manifests/x",
    ]
    assert store.tags() == ["app:1", "app:latest", "other:x"]


def test_a_failing_layer_leaves_the_previous_tag_in_place(fake: FakeRegistry) -> None:
    store = fake_store(fake)
    old = random_image(layers=2, seed=1)
    store.write(old, ["app:1"])
    fake.failures.append(
        Failure(lambda r: r.method == "PUT" and "/uploads/" in r.url.path, status=400, times=99)
    )
    with pytest.raises(Exception, match="failed to push"):
        store.write(random_image(layers=2, seed=2), ["app:1"])
    assert store.resolve("app:1") == old.digest


def test_progress_reports_bytes_per_uploaded_blob_and_skips(fake: FakeRegistry) -> None:
    recorder = Recorder()
    store = fake_store(fake, progress=recorder)
    image = random_image(layers=2, size=5000)
    store.write(image, ["app:1"])
    for layer in image.layers:
        events = recorder.events[layer.digest]
        assert events[0] == ("start", layer.size) and events[-1] == ("done", 0)
        assert sum(n for kind, n in events if kind == "advance") == layer.size
    assert image.config_descriptor.digest not in recorder.events
    recorder.events.clear()
    store.write(image, ["app:2"])
    assert recorder.events[image.layers[0].digest] == [("start", image.layers[0].size), ("done", 0)]


def test_pull_by_digest(store: RegistryStore) -> None:
    image = random_image()
    store.write(image, ["app:1"])
    assert store.image(f"app@{image.digest}").raw_manifest == image.raw_manifest


def test_a_manifest_that_does_not_match_its_digest_is_refused(
    store: RegistryStore, fake: FakeRegistry
) -> None:
    image = random_image()
    store.write(image, ["app:1"])
    forged = image.raw_manifest + b" "
    fake.manifests["app"][image.digest] = (forged, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(DigestMismatch):
        store.image(f"app@{image.digest}")


def test_a_tag_whose_bytes_differ_from_docker_content_digest_is_refused(fake: FakeRegistry) -> None:
    def lying(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method == "GET" and "/manifests/" in request.url.path:
            response.headers["Docker-Content-Digest"] = "sha256:" + "0" * 64
        return response

    store = RegistryStore(fake.host, transport=httpx.MockTransport(lying))
    store.write(random_image(), ["app:1"])
    with pytest.raises(DigestMismatch, match="the registry said sha256:0000"):
        store.image("app:1")


def push_index(store: RegistryStore, platforms: dict[str, Image]) -> Index:
    entries = []
    for platform, image in platforms.items():
        store.write(image, [f"multi@{image.digest}"])
        os_name, arch = platform.split("/")
        entries.append(
            image.descriptor().model_copy(update={"platform": Platform(os=os_name, architecture=arch)})
        )
    index = Index(media_type=OCI_INDEX, manifests=entries)
    store.put_manifest("multi:1", index.to_bytes(), OCI_INDEX)
    return index


def test_an_index_resolves_to_linux_amd64_unless_another_platform_is_asked(store: RegistryStore) -> None:
    arm = edit_image_config(random_image(seed=1), architecture="arm64")
    amd = random_image(seed=2)
    index = push_index(store, {"linux/arm64": arm, "linux/amd64": amd})
    assert store.image("multi:1").digest == amd.digest
    assert store.image("multi:1", platform="linux/arm64").digest == arm.digest
    assert store.resolve("multi:1") == digest_of(index.to_bytes())
    with pytest.raises(ImageNotFound, match=r"no linux/s390x manifest \(it has: linux/amd64, linux/arm64\)"):
        store.image("multi:1", platform="linux/s390x")


def test_tags_and_catalog_follow_pagination_links(fake: FakeRegistry) -> None:
    store = fake_store(fake, page_size=2)
    image = random_image(layers=1)
    store.write(image, ["b:1", "b:2", "b:3", "a:x", "c:y"])
    assert store.catalog() == ["a", "b", "c"]
    assert store.tags("b") == ["b:1", "b:2", "b:3"]
    assert store.tags() == ["a:x", "b:1", "b:2", "b:3", "c:y"]
    assert store.tags("missing") == []
    tag_pages = [r for r in fake.calls("GET", "/v2/b/tags/list")]
    assert [r.url.params.get("last") for r in tag_pages] == [None, "2"] * 2


def test_resolve_and_delete(store: RegistryStore) -> None:
    image = random_image()
    store.write(image, ["app:1"])
    assert store.resolve("app:1") == image.digest
    assert store.resolve("app:nope") is None
    store.delete("app:1")
    assert store.resolve("app:1") is None
    with pytest.raises(
        ImageNotFound, match=r"^failed to delete app:1: no such image on registry\.example\.test$"
    ):
        store.delete("app:1")


def test_write_needs_a_repository_and_a_matching_digest(store: RegistryStore) -> None:
    image = random_image()
    with pytest.raises(Exception, match="name at least one repository:tag"):
        store.write(image, [])
    with pytest.raises(DigestMismatch):
        store.write(image, ["app@sha256:" + "1" * 64])


def test_put_manifest_sends_the_media_type_and_raw_bytes(store: RegistryStore, fake: FakeRegistry) -> None:
    image = random_image()
    store.write(image, ["app:1"])
    put = fake.calls("PUT", "/manifests/")[-1]
    assert put.headers["Content-Type"] == image.media_type
    assert put.content == image.raw_manifest
    assert json.loads(put.content)["layers"][0]["digest"] == image.layers[0].digest


def test_deleting_one_tag_keeps_the_other_tags_on_that_digest(
    store: RegistryStore, fake: FakeRegistry
) -> None:
    image = random_image()
    store.write(image, ["app:1", "app:2"])
    store.delete("app:1")
    assert store.tags() == ["app:2"]
    assert store.image("app:2").digest == image.digest
    assert [r.url.path for r in fake.calls("DELETE")] == [f"/v2/app/manifests/{image.digest}"]


def test_a_bare_digest_is_found_in_whichever_repository_holds_it(store: RegistryStore) -> None:
    image = random_image(seed=3)
    store.write(random_image(seed=4), ["a:1"])
    store.write(image, ["b:1"])
    assert store.image(image.digest).raw_manifest == image.raw_manifest
    assert store.resolve(image.digest) == image.digest
    assert store.resolve("sha256:" + "0" * 64) is None
    with pytest.raises(ImageNotFound, match=r"no repository on registry\.example\.test has it"):
        store.image("sha256:" + "0" * 64)


def lying_image() -> tuple[Image, Image]:
    good = random_image(seed=1)
    honest = random_layer(seed=50)
    blobs = MemoryBlobs()
    blobs.blobs[honest.digest] = b"not the layer"
    return good, append_layers(good, [Layer(honest.descriptor, honest.diff_id, blobs)])


@pytest.mark.parametrize("chunked", [False, True])
def test_a_layer_whose_bytes_lie_is_refused_before_it_becomes_a_blob(
    fake: FakeRegistry, chunked: bool
) -> None:
    store = fake_store(fake, chunk_threshold=1 if chunked else 1 << 20)
    good, lying = lying_image()
    store.write(good, ["app:1"])
    with pytest.raises(DigestMismatch, match="its source gave other bytes"):
        store.write(lying, ["app:1"])
    assert lying.layers[-1].digest not in fake.blobs["app"]
    assert store.resolve("app:1") == good.digest


def test_the_registrys_digest_invalid_is_a_digest_mismatch(fake: FakeRegistry) -> None:
    def digest_invalid(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/uploads/" in request.url.path:
            request.read()
            body = {"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match"}]}
            return httpx.Response(400, json=body)
        return fake.handle(request)

    store = RegistryStore(fake.host, transport=httpx.MockTransport(digest_invalid))
    with pytest.raises(DigestMismatch, match="DIGEST_INVALID: provided digest did not match"):
        store.write(random_image(layers=1), ["app:1"])


def test_a_layer_this_store_put_in_one_repository_is_mounted_into_another(
    store: RegistryStore, fake: FakeRegistry
) -> None:
    base = random_image(layers=2, seed=8)
    store.write(base, ["base:1"])
    fake.requests.clear()
    store.write(append_layers(base, [random_layer(seed=9)]), ["app:1"])
    mounted = {r.url.params["mount"] for r in fake.calls("POST") if r.url.params.get("from") == "base"}
    assert mounted == {layer.digest for layer in base.layers}
