"""Test images built in code.

From the host's static busybox, written by hand (independent of ``lifecycle.oci``, so clients
check it and it checks us): a rootfs tar and an OCI layout. Random images built with our own OCI
core (``random_image``, ``random_layer``), for unit and contract tests. All are reproducible
(fixed mtimes and owners, gzip without timestamp), so digests are stable.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
import random
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.models import ContainerConfig, History, ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import LayerTar

from .tools import unavailable

BUSYBOX = Path("/bin/busybox")
APPLETS = ("cat", "echo", "ls", "sh", "true")
MOUNT_POINTS = ("dev", "etc", "proc", "tmp")
CREATED = "1980-01-01T00:00:01Z"
_MTIME = 315532801  # CREATED as a Unix time: DESIGN.md's reproducible mtime
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class OciImage:
    """An image in an OCI layout; `reference` is ``LAYOUT:TAG`` (skopeo ``oci:``, umoci ``--image``)."""

    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digest: str
    diff_id: str

    @property
    def reference(self) -> str:
        return f"{self.layout}:{self.tag}"


def busybox_rootfs_tar(dest: Path) -> Path:
    """A root filesystem: static /bin/busybox, symlinks for `APPLETS`, and empty `MOUNT_POINTS`."""
    if not BUSYBOX.is_file():
        unavailable(f"{BUSYBOX} is missing: apt-get install busybox-static")
    with tarfile.open(dest, "w") as tar:
        for directory in ("bin", *MOUNT_POINTS):
            tar.addfile(_entry(directory, tarfile.DIRTYPE, 0o755))
        busybox = _entry("bin/busybox", tarfile.REGTYPE, 0o755)
        busybox.size = BUSYBOX.stat().st_size
        with BUSYBOX.open("rb") as binary:
            tar.addfile(busybox, binary)
        for applet in APPLETS:
            link = _entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            tar.addfile(link)
    return dest


def write_oci_layout(layout: Path, rootfs_tar: Path, tag: str) -> OciImage:
    """Write a one-layer image for this machine's architecture into a new OCI layout at `layout`."""
    rootfs = rootfs_tar.read_bytes()
    layer = _write_blob(layout, LAYER_TYPE, gzip.compress(rootfs, compresslevel=1, mtime=0))
    diff_id = _sha256(rootfs)
    config = _write_blob(layout, CONFIG_TYPE, _canonical_json(_image_config(diff_id)))
    manifest_body = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": config, "layers": [layer]}
    manifest = _write_blob(layout, MANIFEST_TYPE, _canonical_json(manifest_body))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{**manifest, "annotations": {REF_NAME: tag}}],
    }
    (layout / "index.json").write_bytes(_canonical_json(index))
    (layout / "oci-layout").write_bytes(_canonical_json({"imageLayoutVersion": "1.0.0"}))
    return OciImage(layout, tag, manifest["digest"], config["digest"], layer["digest"], diff_id)


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, _MTIME
    return info


def _image_config(diff_id: str) -> dict[str, Any]:
    return {
        "created": CREATED,
        "architecture": _ARCHITECTURES.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "pybuild tests: busybox rootfs"}],
    }


def _write_blob(layout: Path, media_type: str, blob: bytes) -> dict[str, Any]:
    digest = _sha256(blob)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return {"mediaType": media_type, "digest": digest, "size": len(blob)}


def _sha256(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# -- random images built with our own OCI core (like go-containerregistry's random.Image) ------------


def random_layer(*, size: int = 1024, files: int = 2, seed: int = 0, directory: Path | None = None) -> Layer:
    """A gzip layer of `files` files holding `size` random bytes in all, under ``/random/<seed>/``.

    With `directory` the blob is written there by ``LayerSink`` (a ``FileBlobs`` layer, which a
    layout can hard-link); without it the blob is kept in a ``MemoryBlobs``.
    """
    rng = random.Random(seed)
    contents = [rng.randbytes(share) for share in _split(size, files)]

    def fill(tar: LayerTar) -> None:
        tar.add_parents(f"/random/{seed}/file-0")
        tar.add_dir(f"/random/{seed}")
        for number, content in enumerate(contents):
            tar.add_file(f"/random/{seed}/file-{number}", content)

    if directory is not None:
        return write_layer(directory, fill)
    return _memory_layer(fill)


def random_image(layers: int = 3, size: int = 1024, seed: int = 0, *, directory: Path | None = None) -> Image:
    """An image of `layers` random layers (`size` bytes each) with one history entry per layer.

    Different seeds give different layers; the same arguments give the same digest.
    """
    handles = [
        random_layer(size=size, seed=seed * 1000 + number, directory=directory) for number in range(layers)
    ]
    history = [History(created=CREATED, created_by=f"random layer {number}") for number in range(layers)]
    config = ImageConfig(
        created=CREATED,
        config=ContainerConfig(env=["PATH=/bin"], labels={"org.example.seed": str(seed)}),
        history=history,
    )
    return new_image(config, handles)


def _split(total: int, parts: int) -> list[int]:
    share, rest = divmod(total, max(parts, 1))
    return [share + (1 if number < rest else 0) for number in range(max(parts, 1))]


def _memory_layer(fill: Callable[[LayerTar], None]) -> Layer:
    """The same blob ``write_layer`` makes, held in memory (so digests match the file variant)."""
    with tempfile.TemporaryDirectory(prefix="random-layer-") as scratch:
        on_disk = write_layer(Path(scratch), fill)
        with on_disk.compressed() as stream:
            blobs = MemoryBlobs()
            blobs.blobs[on_disk.digest] = stream.read()
    return Layer(on_disk.descriptor, on_disk.diff_id, blobs)
