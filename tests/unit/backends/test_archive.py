"""Docker archives as ``docker save`` writes them; docker itself reads them in the integration tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from support.images import random_image, random_layer

from lifecycle.backends.archive import write_docker_archive
from lifecycle.errors import ImageError
from lifecycle.oci.digest import hex_part
from lifecycle.oci.image import Image
from lifecycle.oci.mutate import append_layers


def archive(image: Image, tags: list[str], **options: bool) -> dict[str, bytes]:
    out = io.BytesIO()
    write_docker_archive(image, tags, out, **options)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar.getmembers() if m.isfile()}


def test_manifest_json_names_config_tags_and_layers_in_order() -> None:
    image = random_image(layers=2)
    files = archive(image, ["app:1", "app"])
    (entry,) = json.loads(files["manifest.json"])
    assert entry == {
        "Config": hex_part(image.config_descriptor.digest) + ".json",
        "RepoTags": ["app:1", "app:latest"],
        "Layers": [f"{hex_part(layer.digest)}/layer.tar.gz" for layer in image.layers],
    }


def test_the_config_is_stored_byte_for_byte() -> None:
    image = random_image()
    assert archive(image, ["app:1"])[hex_part(image.config_descriptor.digest) + ".json"] == image.raw_config


def test_gzip_layers_are_the_blobs_themselves() -> None:
    image = random_image(layers=2)
    files = archive(image, ["app:1"])
    for layer in image.layers:
        with layer.compressed() as blob:
            assert files[f"{hex_part(layer.digest)}/layer.tar.gz"] == blob.read()


def test_uncompressed_layers_are_named_by_diff_id_and_hash_to_it() -> None:
    image = random_image(layers=2, size=200_000)
    files = archive(image, ["app:1"], gzip_layers=False)
    (entry,) = json.loads(files["manifest.json"])
    assert entry["Layers"] == [f"{hex_part(layer.diff_id)}/layer.tar" for layer in image.layers]
    for layer in image.layers:
        data = files[f"{hex_part(layer.diff_id)}/layer.tar"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.diff_id


def test_each_gzip_layer_decompresses_to_its_diff_id() -> None:
    image = random_image(layers=3)
    files = archive(image, ["app:1"])
    for layer in image.layers:
        data = gzip.decompress(files[f"{hex_part(layer.digest)}/layer.tar.gz"])
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.diff_id


def test_repositories_maps_each_tag_to_the_top_layer() -> None:
    image = random_image(layers=2)
    files = archive(image, ["localhost:5000/team/app:1", "app:2"])
    top = hex_part(image.layers[-1].digest)
    assert json.loads(files["repositories"]) == {"localhost:5000/team/app": {"1": top}, "app": {"2": top}}


def test_a_layer_used_twice_is_stored_once() -> None:
    layer = random_layer(seed=1)
    image = append_layers(random_image(layers=0), [layer, random_layer(seed=2), layer])
    out = io.BytesIO()
    write_docker_archive(image, ["app:1"], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))
    assert json.loads(archive(image, ["app:1"])["manifest.json"])[0]["Layers"][2] == (
        f"{hex_part(layer.digest)}/layer.tar.gz"
    )


def test_the_archive_is_reproducible() -> None:
    first, second = io.BytesIO(), io.BytesIO()
    write_docker_archive(random_image(seed=3), ["app:1"], first)
    write_docker_archive(random_image(seed=3), ["app:1"], second)
    assert first.getvalue() == second.getvalue()


class PipeLike(io.RawIOBase):
    """A write-only stream that cannot tell or seek, like stdout piped to ``docker load``."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        self.data += chunk
        return len(chunk)


def test_the_output_need_not_be_seekable() -> None:
    pipe = PipeLike()
    write_docker_archive(random_image(), ["app:1"], pipe)  # type: ignore[arg-type]
    with tarfile.open(fileobj=io.BytesIO(bytes(pipe.data))) as tar:
        assert "manifest.json" in tar.getnames()


def test_a_digest_reference_cannot_be_a_repo_tag() -> None:
    with pytest.raises(ImageError, match="docker load needs name:tag"):
        archive(random_image(), ["app@sha256:" + "0" * 64])
