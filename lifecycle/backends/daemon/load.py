"""``docker load`` that sends only the layers a daemon lacks.

dockerd 20.10 (``image/tarexport/load.go``) walks an archive's layers bottom
up and looks each up by *chain ID* (the layer together with every layer below
it); only when that chain is missing does it open the layer's file. So the
bottom layers whose chain the daemon has can be empty placeholder files
(imgutil's trick), and the archive carries only the rest. Checked against
dockerd 20.10.24: empty (or even absent) files load fine when the chain
exists; when it does not, the load fails with ``invalid diffID for layer N``
(the empty file's diffID) and creates and tags nothing, and the store then
sends the full archive.

A layer the daemon has above a *different* lower layer (an app layer reused
over a changed one) is a different chain and is sent: the daemon's layer
store is keyed by chain, not by diffID.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from lifecycle.errors import ImageError

__all__ = ["ArchiveWriter", "LayerChains", "chain_ids", "load_archive", "load_errors"]

_CHUNK = 1 << 20

ArchiveWriter = Callable[[BinaryIO], None]


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI chain IDs: ``chain[0] = diff[0]``, ``chain[n] = sha256(chain[n-1] + " " + diff[n])``."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            joined = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return chains


class LayerChains:
    """Which bottom layers of an image a daemon has, learned from the images it holds.

    Layers are kept by the images that use them, so an image whose diffIDs
    start with ours proves the daemon has that chain. Each image is inspected
    once per store (an ID names fixed content). Hints (the image a tag points
    to now, the base image, images our layers came from) are looked at first;
    only when none shares a bottom layer with us are all images looked at, so
    a rebuild over a known base costs a few inspects, not one per image.
    """

    def __init__(self, image_ids: Callable[[], list[str]], diff_ids_of: Callable[[str], list[str]]) -> None:
        self._image_ids = image_ids
        self._diff_ids_of = diff_ids_of
        self._known: dict[str, list[str]] = {}

    def present(self, diff_ids: Sequence[str], hints: Iterable[str] = ()) -> int:
        """How many bottom layers of ``diff_ids`` the daemon already has as one chain."""
        best = self._longest(diff_ids, _unique(hints))
        if best == 0:
            best = self._longest(diff_ids, self._image_ids())
        return best

    def _longest(self, diff_ids: Sequence[str], image_ids: Iterable[str]) -> int:
        best = 0
        for image_id in image_ids:
            best = max(best, _common_prefix(self._layers(image_id), diff_ids))
            if best == len(diff_ids):
                break
        return best

    def _layers(self, image_id: str) -> list[str]:
        if image_id not in self._known:
            self._known[image_id] = self._diff_ids_of(image_id)
        return self._known[image_id]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _common_prefix(theirs: Sequence[str], ours: Sequence[str]) -> int:
    count = 0
    for mine, other in zip(ours, theirs, strict=False):
        if mine != other:
            break
        count += 1
    return count


def load_archive(load: Callable[[Iterator[bytes]], Iterable[Any]], write: ArchiveWriter) -> tuple[int, str]:
    """Stream the archive ``write`` produces into ``load``; returns (bytes sent, error or "")."""
    sent = 0

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal sent
        for chunk in chunks:
            sent += len(chunk)
            yield chunk

    with _ArchivePipe(write) as chunks:
        error = load_errors(load(counted(chunks)))
    return sent, error


def load_errors(messages: Iterable[Any]) -> str:
    """The first error in docker load's JSON progress stream, or "" (errors come with HTTP 200)."""
    error = ""
    for message in messages:
        if isinstance(message, dict) and not error:
            error = str(message.get("error") or message.get("message") or "")
    return error.strip().splitlines()[0] if error.strip() else ""


class _ArchivePipe:
    """The archive as chunks, written by a thread into a pipe: streamed, never held whole."""

    def __init__(self, write: ArchiveWriter) -> None:
        self._write = write
        self._failure: list[BaseException] = []
        read_fd, self._write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb")
        self._thread = threading.Thread(target=self._produce, name="docker-archive", daemon=True)

    def _produce(self) -> None:
        try:
            with os.fdopen(self._write_fd, "wb") as out:
                self._write(out)
        except BaseException as exc:  # re-raised in the caller's thread by __exit__
            self._failure.append(exc)

    def _chunks(self) -> Iterator[bytes]:
        while chunk := self._reader.read(_CHUNK):
            yield chunk

    def __enter__(self) -> Iterator[bytes]:
        self._thread.start()
        return self._chunks()

    def __exit__(self, *exc: object) -> None:
        self._reader.close()  # a writer still running gets EPIPE and stops
        self._thread.join()
        failure = next((f for f in self._failure if not isinstance(f, BrokenPipeError)), None)
        if failure is not None:
            if isinstance(failure, ImageError):
                raise failure
            raise ImageError("write docker archive", str(failure)) from failure
