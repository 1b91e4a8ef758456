"""The registry backend against the real CNCF distribution registry (and skopeo as the judge)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.images import random_image
from support.registry import Registry, RegistryFactory
from support.registry_proxy import RegistryProxy, registry_proxy
from support.tools import Tool

from lifecycle.backends.registry import Credentials, RegistryError, RegistryStore
from lifecycle.errors import ImageNotFound
from lifecycle.oci.media import OCI_INDEX
from lifecycle.oci.models import Index, Platform
from lifecycle.oci.mutate import edit_image_config
from lifecycle.oci.validate import validate

UPLOADS = "/blobs/uploads/"


@pytest.fixture
def repo() -> str:
    return f"it/{secrets.token_hex(4)}"


@pytest.fixture
def store(registry: Registry) -> Iterator[RegistryStore]:
    with RegistryStore(registry.host) as opened:
        yield opened


@pytest.fixture(scope="module")
def auth_registry(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(auth=True)


def inspect_digest(skopeo: Tool, reference: str, *flags: str) -> str:
    result = skopeo("inspect", "--tls-verify=false", *flags, f"docker://{reference}")
    return str(json.loads(result.stdout)["Digest"])


def basic(registry: Registry) -> str:
    assert registry.credentials is not None
    return base64.b64encode(registry.credentials.colon_pair.encode()).decode()


def test_a_pushed_image_reads_back_and_skopeo_sees_the_same_digest(
    store: RegistryStore, registry: Registry, repo: str, skopeo: Tool
) -> None:
    image = random_image(layers=3, size=40_000)
    assert store.write(image, [f"{repo}:1"]) == image.digest
    again = store.image(f"{repo}:1")
    assert (again.raw_manifest, again.raw_config) == (image.raw_manifest, image.raw_config)
    validate(again)
    assert inspect_digest(skopeo, f"{registry.host}/{repo}:1") == image.digest
    assert store.stats.layer_bytes_written == sum(layer.size for layer in image.layers)


def test_a_second_push_uploads_no_layer_bytes(store: RegistryStore, registry: Registry, repo: str) -> None:
    image = random_image(layers=3)
    store.write(image, [f"{repo}:1"])
    written = store.stats.layer_bytes_written
    mark = registry.log_mark()
    store.write(image, [f"{repo}:2"])
    log = registry.access_log(since=mark)
    assert not [e for e in log if UPLOADS in e.path or e.method == "PATCH"]
    assert {e.method for e in log} == {"HEAD", "PUT"}
    assert store.stats.layer_bytes_written == written
    assert store.resolve(f"{repo}:2") == image.digest


def test_a_cross_repository_mount_moves_no_layer_bytes(
    store: RegistryStore, registry: Registry, repo: str
) -> None:
    store.write(random_image(layers=2, seed=7), [f"{repo}-base:1"])
    base = store.image(f"{repo}-base:1")
    mark = registry.log_mark()
    store.write(base, [f"{repo}-app:1"])
    log = registry.access_log(since=mark)
    mounts = [e for e in log if e.method == "POST" and e.query.get("mount")]
    assert {(e.query["mount"], e.query["from"], e.status) for e in mounts} == {
        (layer.digest, f"{repo}-base", 201) for layer in base.layers
    }
    layer_puts = [
        e
        for e in log
        if e.method in ("PUT", "PATCH") and e.query.get("digest") in {lay.digest for lay in base.layers}
    ]
    assert layer_puts == []
    assert store.stats.layer_bytes_read == 0 and store.stats.blobs_mounted == 2
    validate(store.image(f"{repo}-app:1"))


def test_pull_by_digest_and_by_full_reference(store: RegistryStore, registry: Registry, repo: str) -> None:
    image = random_image(layers=1)
    store.write(image, [f"{repo}:1"])
    by_digest = store.image(f"{registry.host}/{repo}@{image.digest}")
    assert by_digest.raw_manifest == image.raw_manifest
    validate(by_digest)
    with pytest.raises(
        ImageNotFound, match=f"failed to pull {registry.host}/{repo}:nope: .*MANIFEST_UNKNOWN"
    ):
        store.image(f"docker://{registry.host}/{repo}:nope")


def test_an_index_of_two_platforms_resolves_to_linux_amd64(
    store: RegistryStore, repo: str, skopeo: Tool, registry: Registry
) -> None:
    arm = edit_image_config(random_image(layers=1, seed=1), architecture="arm64")
    amd = random_image(layers=1, seed=2)
    entries = []
    for image, arch in ((arm, "arm64"), (amd, "amd64")):
        store.write(image, [f"{repo}@{image.digest}"])
        entries.append(
            image.descriptor().model_copy(update={"platform": Platform(os="linux", architecture=arch)})
        )
    raw_index = Index(media_type=OCI_INDEX, manifests=entries).to_bytes()
    index_digest = store.put_manifest(f"{repo}:multi", raw_index, OCI_INDEX)
    assert store.resolve(f"{repo}:multi") == index_digest
    assert store.image(f"{repo}:multi").digest == amd.digest
    assert store.image(f"{repo}:multi", platform="linux/arm64").digest == arm.digest
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo}:multi").stdout
    assert raw.encode() == raw_index


def test_tags_and_catalog_are_listed_page_by_page(registry: Registry, repo: str) -> None:
    with RegistryStore(registry.host, page_size=1) as store:
        store.write(random_image(layers=1), [f"{repo}:b", f"{repo}:a", f"{repo}-x:c"])
        mark = registry.log_mark()
        assert store.tags(repo) == [f"{repo}:a", f"{repo}:b"]
        assert {repo, f"{repo}-x"} <= set(store.catalog())
        log = registry.access_log(since=mark)
    # distribution 2.8 pages the catalog but answers tags/list in one page whatever n is
    assert any(e.path == "/v2/_catalog" and e.query.get("last") for e in log)


def test_large_layers_go_up_in_patch_chunks(registry: Registry, repo: str) -> None:
    image = random_image(layers=1, size=200_000)
    with RegistryStore(registry.host, chunk_threshold=50_000, chunk_size=32_768) as store:
        mark = registry.log_mark()
        store.write(image, [f"{repo}:1"])
        validate(store.image(f"{repo}:1"))
    patches = [e for e in registry.access_log(since=mark) if e.method == "PATCH"]
    assert len(patches) == -(-image.layers[0].size // 32_768)


def test_delete_removes_the_manifest(store: RegistryStore, repo: str) -> None:
    image = random_image(layers=1)
    store.write(image, [f"{repo}:1"])
    store.delete(f"{repo}:1")
    assert store.resolve(f"{repo}:1") is None


# -- credentials ------------------------------------------------------------------------------------


def test_anonymous_push_to_an_htpasswd_registry_is_one_clear_401(auth_registry: Registry, repo: str) -> None:
    with RegistryStore(auth_registry.host) as store, pytest.raises(RegistryError) as raised:
        store.write(random_image(layers=1), [f"{repo}:1"])
    assert str(raised.value) == (
        f"failed to push {auth_registry.host}/{repo}: 401 unauthorized "
        f"(log in: docker login {auth_registry.host} or set CNB_REGISTRY_AUTH)"
    )


def test_wrong_password_is_a_401_that_does_not_repeat_it(auth_registry: Registry, repo: str) -> None:
    wrong = Credentials("pybuild", "wrong-Secret-9")
    with (
        RegistryStore(auth_registry.host, credentials=wrong) as store,
        pytest.raises(RegistryError, match="refused the credentials") as raised,
    ):
        store.resolve(f"{repo}:1")
    assert "wrong-Secret-9" not in str(raised.value)


def test_docker_config_credentials_work(auth_registry: Registry, repo: str, skopeo: Tool) -> None:
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": basic(auth_registry)}}}))
    image = random_image(layers=2)
    with RegistryStore(auth_registry.host) as store:
        store.write(image, [f"{repo}:1"])
        validate(store.image(f"{repo}:1"))
    assert auth_registry.credentials is not None
    creds = auth_registry.credentials.colon_pair
    assert inspect_digest(skopeo, f"{auth_registry.host}/{repo}:1", "--creds", creds) == image.digest


def test_cnb_registry_auth_credentials_work(
    auth_registry: Registry, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({auth_registry.host: f"Basic {basic(auth_registry)}"}))
    with RegistryStore(auth_registry.host) as store:
        store.write(random_image(layers=1), [f"{repo}:1"])
        assert store.tags(repo) == [f"{repo}:1"]


def test_bearer_token_flow_through_a_token_auth_proxy(registry: Registry, repo: str) -> None:
    with registry_proxy(registry.host, users={"me": "tok-pass"}) as proxy:
        image = random_image(layers=3)
        with RegistryStore(proxy.host, credentials=Credentials("me", "tok-pass")) as store:
            store.write(image, [f"{repo}:1"])
            validate(store.image(f"{repo}:1"))
        assert_tokens_were_asked_once_per_scope(proxy, repo)
        with RegistryStore(proxy.host) as anonymous, pytest.raises(RegistryError, match="401 unauthorized"):
            anonymous.image(f"{repo}:1")


def assert_tokens_were_asked_once_per_scope(proxy: RegistryProxy, repo: str) -> None:
    asked = [(tuple(scopes), user) for scopes, user in proxy.token_requests]
    assert asked == [((f"repository:{repo}:pull",), "me"), ((f"repository:{repo}:pull,push",), "me")]
    bearer = [s for s in proxy.seen if s.authorization.startswith("Bearer ")]
    assert len(bearer) > 10


# -- TLS --------------------------------------------------------------------------------------------


def test_tls_registry_is_trusted_through_ssl_cert_file(
    registry_factory: RegistryFactory, repo: str, monkeypatch: pytest.MonkeyPatch, skopeo: Tool
) -> None:
    tls = registry_factory(tls=True)
    assert tls.ca_path is not None
    image = random_image(layers=1)
    with RegistryStore(tls.host, insecure=False) as untrusted, pytest.raises(RegistryError) as raised:
        untrusted.resolve(f"{repo}:1")
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value) and "SSL_CERT_FILE" in str(raised.value)
    monkeypatch.setenv("SSL_CERT_FILE", os.fspath(tls.ca_path))
    with RegistryStore(tls.host, insecure=False) as store:
        store.write(image, [f"{repo}:1"])
        validate(store.image(f"{repo}:1"))
    result = skopeo("inspect", "--cert-dir", os.fspath(tls.cert_dir), f"docker://{tls.host}/{repo}:1")
    assert json.loads(result.stdout)["Digest"] == image.digest
