"""`.cnb` files as other tools write them: absolute member names, an index in front of the image."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.errors import BlobNotFound, ImageError
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.media import OCI_INDEX
from lifecycle.oci.models import Index, Platform
from lifecycle.oci.validate import validate
from lifecycle.platform.buildpackage_file import open_cnb, write_cnb


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_pack_style_absolute_names_and_a_nested_platform_index_are_read(tmp_path: Path) -> None:
    image = random_image(layers=2)
    write_cnb(image, tmp_path / "ours.cnb")
    members = {"/" + name: data for name, data in _members(tmp_path / "ours.cnb").items()}
    other = Platform(os="linux", architecture="arm64")
    wanted = Platform(os="linux", architecture="amd64")
    nested = Index(
        schema_version=2,
        manifests=[
            image.descriptor().model_copy(update={"platform": other, "digest": "sha256:" + "f" * 64}),
            image.descriptor().model_copy(update={"platform": wanted}),
        ],
    ).to_bytes()
    members[f"/blobs/sha256/{sha256_digest(nested)[7:]}"] = nested
    top = Index(schema_version=2, media_type=OCI_INDEX, manifests=[])
    desc = image.descriptor().model_copy(update={"media_type": OCI_INDEX, "digest": sha256_digest(nested)})
    members["/index.json"] = top.model_copy(update={"manifests": [desc]}).to_bytes()
    _write_tar(tmp_path / "pack.cnb", members)
    read = open_cnb(tmp_path / "pack.cnb")
    assert read.digest == image.digest
    validate(read)


def test_index_json_is_a_plain_oci_index_of_the_one_manifest(tmp_path: Path) -> None:
    image = random_image(layers=1)
    write_cnb(image, tmp_path / "x.cnb")
    index = json.loads(_members(tmp_path / "x.cnb")["index.json"])
    assert index["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in index["manifests"]] == [image.digest]


def test_a_file_that_is_not_a_tar_or_lacks_a_blob_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.cnb").write_bytes(b"not a tar")
    with pytest.raises(ImageError, match=r"not a \.cnb file \(an uncompressed tar\)"):
        open_cnb(tmp_path / "junk.cnb")
    image = random_image(layers=1)
    write_cnb(image, tmp_path / "x.cnb")
    members = _members(tmp_path / "x.cnb")
    del members[f"blobs/sha256/{image.config_descriptor.digest[7:]}"]
    _write_tar(tmp_path / "broken.cnb", members)
    with pytest.raises(BlobNotFound, match="is missing from the archive"):
        open_cnb(tmp_path / "broken.cnb")


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    image = random_image(layers=1)
    lost = Layer(image.layers[0].descriptor, image.layers[0].diff_id, MemoryBlobs())  # its blob is gone
    with pytest.raises(BlobNotFound):
        write_cnb(Image(image.raw_manifest, image.raw_config, (lost,)), tmp_path / "x.cnb")
    assert list(tmp_path.iterdir()) == []
