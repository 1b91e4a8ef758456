"""Temporary files that become blobs: created beside their destination, readable like any blob.

``tempfile.mkstemp`` makes files mode 0600 whatever the umask; a blob renamed from one would
be unreadable to other users of a shared layout, unlike blobs skopeo or umoci write.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["create_temp", "naming"]

_MODE = 0o644  # further restricted by the umask, as for any new file


def create_temp(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new, empty file named ``<prefix><random>.tmp`` in ``directory``: its descriptor and path."""
    while True:
        path = directory / f"{prefix}{secrets.token_hex(8)}.tmp"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _MODE), path
        except FileExistsError:
            continue


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Name ``path`` in an ``OSError`` that names no file: a write to a file object that fails
    (a full disk) says only "No space left on device", and the user needs to know where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise
