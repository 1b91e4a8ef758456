"""Docker archives: the ``docker save`` tar that ``docker load`` reads.

Docker 20.10's ``docker load`` takes only this format, not an OCI layout
(ENVIRONMENT.md §2). The archive holds ``manifest.json``
(``[{"Config", "RepoTags", "Layers"}]``), the config blob as ``<hex>.json``,
one file per layer and the legacy ``repositories`` map.

By default a layer is its gzip blob, copied as is: ``docker load`` detects
the compression and checks the diffID of the uncompressed stream, so no
layer is decompressed here. ``gzip_layers=False`` writes the classic
uncompressed ``<diffID-hex>/layer.tar`` for readers that want plain tars.

``placeholders=N`` writes the bottom ``N`` layers as empty files
(``<diffID-hex>/placeholder.tar``): a daemon that already has that chain of
layers never opens them (imgutil's trick; see ``lifecycle.backends.daemon``).
Entries are written in a fixed order with fixed metadata, so the same image,
tags and options give the same archive bytes.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

from lifecycle.errors import ImageError
from lifecycle.oci.digest import hex_part
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.media import is_gzip_layer
from lifecycle.oci.tarball import DEFAULT_MTIME

__all__ = ["write_docker_archive"]

_COPY_BUFSIZE = 1 << 20
_SPOOL_IN_MEMORY = 64 << 20
_PLACEHOLDER = "placeholder.tar"


def write_docker_archive(
    image: Image,
    repo_tags: Sequence[str],
    out: BinaryIO,
    *,
    gzip_layers: bool = True,
    placeholders: int = 0,
) -> None:
    """Write ``image`` tagged ``repo_tags`` (each ``name:tag``) to ``out``, which need not be seekable."""
    for repo_tag in repo_tags:
        if "@" in repo_tag or ":" not in repo_tag.rsplit("/", 1)[-1]:
            raise ImageError(
                "write docker archive",
                f"{repo_tag!r} is a digest reference or has no tag; docker load needs name:tag",
            )
    config_name = hex_part(image.config_descriptor.digest) + ".json"
    layer_names = [_layer_name(layer, gzip_layers, i < placeholders) for i, layer in enumerate(image.layers)]
    with tarfile.open(fileobj=out, mode="w|", bufsize=_COPY_BUFSIZE, format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, config_name, image.raw_config)
        written: set[str] = set()
        for layer, name in zip(image.layers, layer_names, strict=True):
            _add_layer(tar, name, layer, written)
        manifest = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": layer_names}]
        _add_bytes(tar, "manifest.json", _json(manifest))
        _add_bytes(tar, "repositories", _json(_repositories(repo_tags, layer_names)))


def _layer_name(layer: Layer, gzip_layers: bool, placeholder: bool) -> str:
    if placeholder:
        return f"{hex_part(layer.diff_id)}/{_PLACEHOLDER}"
    if gzip_layers and is_gzip_layer(layer.media_type):
        return f"{hex_part(layer.digest)}/layer.tar.gz"
    return f"{hex_part(layer.diff_id)}/layer.tar"


def _repositories(repo_tags: Sequence[str], layer_names: list[str]) -> dict[str, dict[str, str]]:
    """Legacy ``{repo: {tag: top layer id}}``; docker load prefers manifest.json but some tools read it."""
    if not layer_names:
        return {}
    top = layer_names[-1].split("/", 1)[0]
    repositories: dict[str, dict[str, str]] = {}
    for repo_tag in repo_tags:
        repo, tag = repo_tag.rsplit(":", 1)
        repositories.setdefault(repo, {})[tag] = top
    return repositories


def _add_layer(tar: tarfile.TarFile, name: str, layer: Layer, written: set[str]) -> None:
    """Each name once: a layer used twice, or a directory holding two names, is stored once."""
    if name in written:
        return
    written.add(name)
    directory_name = name.split("/", 1)[0]
    if directory_name not in written:
        written.add(directory_name)
        directory = tarfile.TarInfo(directory_name)
        directory.type = tarfile.DIRTYPE
        _add(tar, directory, mode=0o755)
    if name.endswith(_PLACEHOLDER):
        _add_bytes(tar, name, b"")
    elif name.endswith(".gz") or not is_gzip_layer(layer.media_type):
        with layer.compressed() as blob:
            _add(tar, _file_info(name, layer.size), blob)
    else:
        _add_uncompressed(tar, name, layer)


def _add_uncompressed(tar: tarfile.TarFile, name: str, layer: Layer) -> None:
    """A tar entry needs its size up front: spool the uncompressed stream first."""
    with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY) as spool:
        with layer.uncompressed() as stream:
            shutil.copyfileobj(stream, spool, _COPY_BUFSIZE)
        size = spool.tell()
        spool.seek(0)
        _add(tar, _file_info(name, size), spool)  # type: ignore[arg-type]


def _file_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add(tar, _file_info(name, len(data)), io.BytesIO(data))


def _add(
    tar: tarfile.TarFile, info: tarfile.TarInfo, content: BinaryIO | None = None, mode: int = 0o644
) -> None:
    info.mode = mode
    info.mtime = DEFAULT_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, content)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
