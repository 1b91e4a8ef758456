"""Hostile manifests, configs, indexes and labels: malformed, oversized, or not matching their digest.

Against the OCI layout (the local store and ``oci:DIR``) and the registry client (an in-memory
registry that lies on purpose), every one must end in a typed error, never a traceback, and a
lie about bytes must be caught before the bytes are used. A registry whose answers never end
(chunked, or with a ``Content-Length`` that lies) must be cut off at the cap for what it sends:
the fake counts what it streamed, so the bound is on bytes, not on time.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.images import random_image
from support.registry_fake import TOKEN_REALM, FakeRegistry, digest_of, fake_store

from lifecycle.backends.layout import Layout
from lifecycle.errors import DigestMismatch, ImageError, PybuildError, StoreCorrupt
from lifecycle.execution.rootfs import extract_rootfs
from lifecycle.oci.image import Image
from lifecycle.oci.media import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from lifecycle.oci.models import MAX_API_DOCUMENT_BYTES, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, canonical_json
from lifecycle.oci.validate import validate
from lifecycle.platform.buildpackage_file import open_cnb
from lifecycle.platform.buildpackage_sources import package_sources

from .figures import record

TAG = "hostile"
Doc = dict[str, Any]


def _valid(tmp_path: Path) -> tuple[Doc, Doc, dict[str, bytes]]:
    """A real one-layer image as documents and blobs, for the cases to spoil."""
    image = random_image(layers=1, seed=7)
    blobs = {}
    for layer in image.layers:
        with layer.compressed() as stream:
            blobs[layer.digest] = stream.read()
    return json.loads(image.raw_manifest), json.loads(image.raw_config), blobs


def _store(root: Path, manifest: bytes, config: bytes | None, blobs: dict[str, bytes]) -> Layout:
    """A layout whose tag names ``manifest`` as given; blobs are stored under the names given."""
    layout = Layout(root, create=True)
    for digest, data in blobs.items():
        (root / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    if config is not None:
        layout.write_blob(config)
    digest = layout.write_blob(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": TAG},
            }
        ],
    }
    (root / "index.json").write_bytes(canonical_json(index))
    return layout


def _case_documents(tmp_path: Path) -> dict[str, tuple[bytes, bytes | None, dict[str, bytes], str]]:
    """name -> (manifest bytes, config bytes to store, extra blobs, regex the error must match)."""
    manifest, config, blobs = _valid(tmp_path)
    good_config = canonical_json(config)

    def with_manifest(change: Callable[[Doc], None]) -> bytes:
        doc = json.loads(canonical_json(manifest))
        change(doc)
        return canonical_json(doc)

    def pointing_at(config_bytes: bytes) -> bytes:
        def change(doc: Doc) -> None:
            doc["config"] = {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config_bytes),
                "size": len(config_bytes),
            }

        return with_manifest(change)

    big_label = dict(config)
    big_label["config"] = {"Labels": {"io.example.huge": "x" * (MAX_CONFIG_BYTES + 1)}}
    big_config = canonical_json(big_label)
    other_config = canonical_json({**config, "author": "someone else"})
    lying_blobs = {digest_of(other_config): good_config}
    two_diff_ids = canonical_json(
        {
            **config,
            "rootfs": {"type": "layers", "diff_ids": [*config["rootfs"]["diff_ids"], "sha256:" + "1" * 64]},
        }
    )
    return {
        "not-json": (b"\x00\xffnot json", good_config, blobs, "not a JSON object"),
        "json-array": (b"[]", good_config, blobs, "not a JSON object"),
        "deeply-nested": (
            b'{"config":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
            good_config,
            blobs,
            "manifest",
        ),
        "wrong-types": (with_manifest(lambda d: d.update(config="sha256:x")), good_config, blobs, "config"),
        "negative-size": (with_manifest(lambda d: d["config"].update(size=-1)), good_config, blobs, "size"),
        "config-digest-traversal": (
            with_manifest(lambda d: d["config"].update(digest="sha256:../../../../etc/passwd")),
            good_config,
            blobs,
            "digest",
        ),
        "layer-digest-traversal": (
            with_manifest(
                lambda d: d["layers"][0].update(digest="sha256:x/../../../v2/other/manifests/latest")
            ),
            good_config,
            blobs,
            "digest",
        ),
        "layer-media-type-as-manifest": (
            with_manifest(lambda d: d.update(mediaType=OCI_LAYER_GZIP)),
            good_config,
            blobs,
            "not an image manifest",
        ),
        "oversized-manifest": (
            with_manifest(lambda d: d.update(annotations={"x": "y" * MAX_MANIFEST_BYTES})),
            good_config,
            blobs,
            "bytes allowed",
        ),
        "oversized-config": (pointing_at(big_config), big_config, blobs, "bytes allowed"),
        "config-bytes-do-not-match-digest": (
            pointing_at(other_config),
            None,
            {**blobs, **lying_blobs},
            "hashes to",
        ),
        "diff-ids-do-not-match-layers": (pointing_at(two_diff_ids), two_diff_ids, blobs, "diff_ids"),
    }


CASES = sorted(_case_documents(Path("/nonexistent")))


@pytest.mark.parametrize("case", CASES)
def test_hostile_manifest_in_a_layout_gives_a_typed_error(tmp_path: Path, case: str) -> None:
    manifest, config, blobs, message = _case_documents(tmp_path)[case]
    layout = _store(tmp_path / "layout", manifest, config, blobs)
    record("hostile_inputs", "image_documents", 1)
    with pytest.raises(ImageError, match=message) as raised:
        layout.image(TAG)
    assert "\n" not in str(raised.value)


def test_index_json_that_is_not_an_index_is_store_corrupt(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout", create=True)
    for raw in (b"[" * 100_000, b"{}garbage", b'{"manifests": 3}'):
        (layout.root / "index.json").write_bytes(raw)
        with pytest.raises(StoreCorrupt, match="restore it or remove the layout"):
            layout.tags()


def test_index_chain_deeper_than_the_limit_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    image = random_image(layers=1, seed=1)
    layout = Layout(tmp_path / "layout", create=True)
    layout.write(image, ["base"])
    desc = image.descriptor()
    for _ in range(600):
        index = canonical_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [json.loads(desc.to_bytes())]}
        )
        digest = layout.write_blob(index)
        desc = desc.model_copy(update={"media_type": OCI_INDEX, "digest": digest, "size": len(index)})
    with pytest.raises(ImageError, match="nest more than"):
        layout.image(desc.digest)


def test_layer_blob_not_matching_its_digest_or_diffid_is_caught_before_use(tmp_path: Path) -> None:
    honest = random_image(layers=1, seed=2)
    other = random_image(layers=1, seed=3)
    with other.layers[0].compressed() as stream:
        wrong_bytes = stream.read()
    manifest, config = honest.raw_manifest, honest.raw_config
    layout = _store(tmp_path / "layout", manifest, config, {honest.layers[0].digest: wrong_bytes})
    image = layout.image(TAG)  # lazy: nothing read yet
    with pytest.raises(DigestMismatch):
        validate(image)
    with pytest.raises(DigestMismatch):
        Layout(tmp_path / "copy", create=True).write(image, ["copied"])  # a copy is verified
    with pytest.raises(DigestMismatch, match="diffID"):
        extract_rootfs(image, tmp_path / "root")
    assert Layout(tmp_path / "copy").tags() == []


def test_gc_of_a_store_with_a_corrupt_manifest_blob_fails_typed_and_deletes_nothing(tmp_path: Path) -> None:
    image = random_image(layers=2, seed=4)
    layout = Layout(tmp_path / "layout", create=True)
    layout.write(image, ["app"])
    (layout.root / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).write_bytes(b"[" * 100_000)
    before = sorted(p.name for p in (layout.root / "blobs" / "sha256").iterdir())
    with pytest.raises(ImageError):
        layout.gc()
    assert sorted(p.name for p in (layout.root / "blobs" / "sha256").iterdir()) == before


# -- the registry client against a registry that lies ----------------------------------------------


CHUNK = 64 << 10


@dataclass
class Flood:
    """A body made as it is read, ``CHUNK`` bytes at a time: ``total`` bytes, four times the
    largest cap, so a client without caps reads it all and fails the test rather than hanging.

    ``length`` is the Content-Length header to send (a lie, or None for chunked); ``sent``
    counts the bytes handed to the client, which is what a cap must bound.
    """

    status: int = 200
    length: int | None = None
    total: int = 4 * MAX_API_DOCUMENT_BYTES
    headers: dict[str, str] = field(default_factory=dict)
    fill: bytes = b" "
    sent: int = 0

    def body(self) -> Iterator[bytes]:
        piece = self.fill * (CHUNK // len(self.fill))
        while self.sent < self.total:
            chunk = piece[: self.total - self.sent]
            self.sent += len(chunk)
            yield chunk

    def response(self) -> httpx.Response:
        headers = dict(self.headers)
        if self.length is not None:
            headers["Content-Length"] = str(self.length)
        return httpx.Response(self.status, content=self.body(), headers=headers)


class LyingRegistry(FakeRegistry):
    """Serves what ``lies`` says for a path (bytes, and optionally a Docker-Content-Digest), and
    a ``Flood`` for a GET of a path in ``floods``."""

    lies: dict[str, tuple[bytes, str | None]]
    floods: dict[str, Flood]

    def handle(self, request: httpx.Request) -> httpx.Response:
        flood = getattr(self, "floods", {}).get(request.url.path)
        if flood is not None and request.method == "GET":
            return flood.response()
        lie = getattr(self, "lies", {}).get(request.url.path)
        if lie is None:
            return super().handle(request)
        body, digest = lie
        headers = {"Content-Type": OCI_MANIFEST}
        if digest:
            headers["Docker-Content-Digest"] = digest
        return httpx.Response(200, content=b"" if request.method == "HEAD" else body, headers=headers)


def _pushed(fake: LyingRegistry) -> Image:
    image = random_image(layers=1, seed=9)
    with fake_store(fake) as store:
        store.write(image, ["app:1"])
    return image


Lie = Callable[[Image], tuple[bytes, str | None]]
REGISTRY_CASES: dict[str, tuple[Lie, str]] = {
    "tag-bytes-differ-from-docker-content-digest": (
        lambda img: (b'{"schemaVersion":2}', img.digest),
        "hashes to",
    ),
    "not-json": (lambda img: (b"\xff\xfe garbage", None), "not a JSON object"),
    "json-array": (lambda img: (b"[" * 50 + b"]" * 50, None), "not a JSON object"),
    "oversized": (
        lambda img: (img.raw_manifest[:-1] + b',"x":"' + b"y" * MAX_MANIFEST_BYTES + b'"}', None),
        "bytes allowed",
    ),
    "deeply-nested": (
        lambda img: (b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}", None),
        "nested too deeply",
    ),
}


@pytest.mark.parametrize("case", sorted(REGISTRY_CASES))
def test_hostile_manifest_from_a_registry_gives_a_typed_error(case: str) -> None:
    make, message = REGISTRY_CASES[case]
    fake = LyingRegistry()
    image = _pushed(fake)
    fake.lies = {"/v2/app/manifests/1": make(image)}
    record("hostile_inputs", "image_documents", 1)
    with fake_store(fake) as store, pytest.raises(ImageError, match=message) as raised:
        store.image("app:1")
    assert "\n" not in str(raised.value)


def test_registry_serving_other_bytes_for_a_digest_is_caught() -> None:
    fake = LyingRegistry()
    image = _pushed(fake)
    other = random_image(layers=1, seed=10)
    fake.lies = {
        f"/v2/app/manifests/{image.digest}": (other.raw_manifest, image.digest),
        f"/v2/app/blobs/{image.config_descriptor.digest}": (other.raw_config, None),
    }
    with fake_store(fake) as store:
        with pytest.raises(DigestMismatch):
            store.image(f"app@{image.digest}")
        fake.lies.pop(f"/v2/app/manifests/{image.digest}")
        with pytest.raises(DigestMismatch):
            store.image("app:1")


def test_registry_serving_a_wrong_layer_blob_fails_validation_and_copies(tmp_path: Path) -> None:
    fake = LyingRegistry()
    image = _pushed(fake)
    other = random_image(layers=1, seed=11)
    with other.layers[0].compressed() as stream:
        fake.lies = {f"/v2/app/blobs/{image.layers[0].digest}": (stream.read(), None)}
    with fake_store(fake) as store:
        pulled = store.image("app:1")
        with pytest.raises(DigestMismatch):
            validate(pulled)
        with pytest.raises(DigestMismatch):
            Layout(tmp_path / "store", create=True).write(pulled, ["pulled"])


# -- a registry whose answers never end --------------------------------------------------------

_MANIFEST_PATH = "/v2/app/manifests/1"
_GiB = 1 << 30


FloodCase = tuple[str, Flood, int, str]


def _flood_cases(image: Image) -> dict[str, FloodCase]:
    """name -> (path, flood, the cap that must stop it, regex of the error)."""
    config_path = f"/v2/app/blobs/{image.config_descriptor.digest}"
    manifest_cap = rf"manifest of .*app:1 at https://\S+/v2/app/manifests/1 .*{MAX_MANIFEST_BYTES} bytes"
    return {
        "manifest-chunked": (_MANIFEST_PATH, Flood(), MAX_MANIFEST_BYTES, manifest_cap + " allowed"),
        "manifest-content-length-too-small": (
            _MANIFEST_PATH,
            Flood(length=100),
            MAX_MANIFEST_BYTES,
            manifest_cap,
        ),
        "manifest-huge-content-length": (
            _MANIFEST_PATH,
            Flood(length=64 * _GiB),
            0,
            rf"says it is {64 * _GiB} bytes \(Content-Length\), more than the {MAX_MANIFEST_BYTES} bytes",
        ),
        "config-chunked": (config_path, Flood(), MAX_CONFIG_BYTES, rf"config of .*{MAX_CONFIG_BYTES} bytes"),
        "config-content-length-lies": (
            config_path,
            Flood(length=image.config_descriptor.size),
            MAX_CONFIG_BYTES,
            rf"at https://\S+{config_path} goes on, more than the {MAX_CONFIG_BYTES} bytes",
        ),
        "error-body-404": (
            _MANIFEST_PATH,
            Flood(status=404),
            MAX_API_DOCUMENT_BYTES,
            rf"{_MANIFEST_PATH} goes on, more than the {MAX_API_DOCUMENT_BYTES} bytes",
        ),
        "error-body-503-not-retried": (
            _MANIFEST_PATH,
            Flood(status=503, length=20),
            MAX_API_DOCUMENT_BYTES,
            rf"more than the {MAX_API_DOCUMENT_BYTES} bytes",
        ),
        "redirect-body": (
            _MANIFEST_PATH,
            Flood(status=307, headers={"Location": "/v2/app/manifests/elsewhere"}),
            MAX_API_DOCUMENT_BYTES,
            rf"{_MANIFEST_PATH} goes on, more than the {MAX_API_DOCUMENT_BYTES} bytes",
        ),
        "compressed-manifest": (
            _MANIFEST_PATH,
            Flood(total=CHUNK, headers={"Content-Encoding": "gzip"}),
            0,
            "Content-Encoding: gzip, which pybuild does not accept",
        ),
    }


FLOOD_CASES = sorted(_flood_cases(random_image(layers=1, seed=9)))


@pytest.mark.parametrize("case", FLOOD_CASES)
def test_a_registry_answer_without_end_is_cut_off_at_its_cap(case: str) -> None:
    fake = LyingRegistry()
    image = _pushed(fake)
    path, flood, cap, message = _flood_cases(image)[case]
    fake.floods = {path: flood}
    record("hostile_inputs", "registry_floods", 1)
    with fake_store(fake) as store, pytest.raises(ImageError, match=message) as raised:
        store.image("app:1")
    assert "\n" not in str(raised.value)
    assert flood.sent <= cap + CHUNK, f"{flood.sent} bytes streamed for a cap of {cap}"


def test_a_listing_without_end_is_cut_off_at_its_cap() -> None:
    fake = LyingRegistry()
    _pushed(fake)
    for path in ("/v2/app/tags/list", "/v2/_catalog"):
        flood = Flood(fill=b'{"tags":["a",', length=10)
        fake.floods = {path: flood}
        with fake_store(fake) as store, pytest.raises(ImageError, match=r"listing at .* bytes allowed"):
            store.tags(None if path == "/v2/_catalog" else "app")
        assert flood.sent <= MAX_API_DOCUMENT_BYTES + CHUNK


@pytest.mark.parametrize("where", ["token", "challenge"])
def test_an_auth_answer_without_end_is_cut_off_at_its_cap(where: str) -> None:
    """The token answer, and the 401 body httpx reads whole before the token flow retries."""
    fake = LyingRegistry(auth="bearer")
    _pushed(fake)
    challenge = f'Bearer realm="{TOKEN_REALM}",service="fake-registry",scope="repository:app:pull"'
    flood = Flood(status=401, headers={"WWW-Authenticate": challenge})
    path = "/token" if where == "token" else _MANIFEST_PATH
    fake.floods = {path: Flood() if where == "token" else flood}
    with fake_store(fake) as store, pytest.raises(ImageError, match=r"more than the .* bytes allowed"):
        store.image("app:1")
    assert fake.floods[path].sent <= MAX_API_DOCUMENT_BYTES + CHUNK


@pytest.mark.parametrize("length", [None, 100])
def test_a_layer_blob_longer_than_its_descriptor_stops_at_its_size(
    tmp_path: Path, length: int | None
) -> None:
    """A layer is streamed to a file: a registry sending more than the descriptor says is cut off."""
    fake = LyingRegistry()
    image = _pushed(fake)
    flood = Flood(length=length)
    fake.floods = {f"/v2/app/blobs/{image.layers[0].digest}": flood}
    with fake_store(fake) as store:
        pulled = store.image("app:1")
        with pytest.raises(DigestMismatch, match=f"more than the {image.layers[0].size} bytes"):
            Layout(tmp_path / "store", create=True).write(pulled, ["pulled"])
    assert flood.sent <= image.layers[0].size + (1 << 20) + CHUNK
    assert Layout(tmp_path / "store").tags() == []


def test_a_layer_blob_that_ends_short_is_refused(tmp_path: Path) -> None:
    fake = LyingRegistry()
    image = _pushed(fake)
    layer = image.layers[0]
    with layer.compressed() as stream:
        honest = stream.read()
    fake.lies = {f"/v2/app/blobs/{layer.digest}": (honest[: layer.size // 2], None)}
    with fake_store(fake) as store:
        pulled = store.image("app:1")
        with pytest.raises(
            DigestMismatch, match=f"sent {layer.size // 2} bytes .* not the {layer.size} bytes"
        ):
            extract_rootfs(pulled, tmp_path / "root")


# -- .cnb buildpackage files (an OCI layout in a tar) ---------------------------------------------


def _cnb(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _index_of(raw_manifest: bytes) -> bytes:
    desc = {"mediaType": OCI_MANIFEST, "digest": digest_of(raw_manifest), "size": len(raw_manifest)}
    return canonical_json({"schemaVersion": 2, "manifests": [desc]})


def _blob_name(data: bytes) -> str:
    return "blobs/sha256/" + digest_of(data).removeprefix("sha256:")


def _cnb_cases() -> dict[str, dict[str, bytes] | bytes]:
    """name -> members, or raw file bytes."""
    image = random_image(layers=1, seed=12)
    nested = b'{"config":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    good = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        _blob_name(image.raw_config): image.raw_config,
        _blob_name(image.raw_manifest): image.raw_manifest,
    }
    return {
        "not-a-tar": b"\x00garbage" * 100,
        "gzip-not-tar": b"\x1f\x8b\x08\x00" + b"\x00" * 100,
        "no-index": dict(good),
        "index-deeply-nested": {**good, "index.json": b"[" * 100_000},
        "index-oversized": {**good, "index.json": b" " * (MAX_MANIFEST_BYTES + 1)},
        "index-names-a-missing-blob": {**good, "index.json": _index_of(b"{}")},
        "manifest-blob-deeply-nested": {**good, _blob_name(nested): nested, "index.json": _index_of(nested)},
        "manifest-blob-not-utf8": {**good, _blob_name(b"\xff{"): b"\xff{", "index.json": _index_of(b"\xff{")},
        "manifest-blob-lies-about-its-digest": {
            **good,
            _blob_name(image.raw_manifest): b'{"x":1}',
            "index.json": _index_of(image.raw_manifest),
        },
        "traversal-member-names": {
            **good,
            "../../../evil": b"x",
            "/etc/passwd": b"x",
            "index.json": _index_of(image.raw_manifest),
        },
    }


@pytest.mark.parametrize("case", sorted(_cnb_cases()))
def test_hostile_cnb_files_give_typed_errors(tmp_path: Path, case: str) -> None:
    content = _cnb_cases()[case]
    path = tmp_path / f"{case}.cnb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _cnb(path, content)
    record("hostile_inputs", "cnb_files", 1)
    try:
        image = open_cnb(path)
    except PybuildError as exc:
        assert "\n" not in str(exc)
        return
    # read but not a buildpackage: it must still fail typed when used as one
    with pytest.raises(PybuildError):
        package_sources(image, str(path), tmp_path / "cache")


def test_a_cnb_whose_indexes_nest_without_end_is_refused(tmp_path: Path) -> None:
    image = random_image(layers=1, seed=13)
    members = {
        _blob_name(image.raw_config): image.raw_config,
        _blob_name(image.raw_manifest): image.raw_manifest,
    }
    document = image.raw_manifest
    for _ in range(50):
        document = _index_of(document)
        members[_blob_name(document)] = document
    members["index.json"] = _index_of(document)
    with pytest.raises(ImageError, match="nest more than"):
        open_cnb(_cnb(tmp_path / "chain.cnb", members))
