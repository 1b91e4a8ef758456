"""Docker archives: the ``docker save`` tar that ``docker load`` reads (``pybuild save``).

The format itself is written by ``lifecycle.oci.dockerarchive``, which the daemon
backend shares; this module names the tags as a user gives them (``myapp`` is
``myapp:latest``) and refuses digest references, which docker load cannot tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from lifecycle.backends.base import normalize_tag
from lifecycle.errors import ImageError
from lifecycle.oci import dockerarchive
from lifecycle.oci.image import Image

__all__ = ["write_docker_archive"]


def write_docker_archive(
    image: Image, tags: Sequence[str], out: BinaryIO, *, gzip_layers: bool = True
) -> None:
    """Write ``image`` tagged ``tags`` to ``out`` (which need not be seekable) as a docker archive."""
    dockerarchive.write_docker_archive(image, [_repo_tag(tag) for tag in tags], out, gzip_layers=gzip_layers)


def _repo_tag(tag: str) -> str:
    named = normalize_tag(tag)
    if "@" in named:
        raise ImageError("write docker archive", f"{tag!r} is a digest reference; docker load needs name:tag")
    return named
