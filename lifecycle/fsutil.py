"""File operations that never follow a symbolic link, for dirs a buildpack could write into.

The lifecycle runs on the host, often as root, and reads and writes the layers dir (and the
app dir) after buildpacks could leave anything there from their sandbox. A symbolic link a
buildpack left would be resolved here against the host's filesystem: a host file read into
the image, or a host file written. So every function here reads only regular files, opened
with ``O_NOFOLLOW``; makes or enters only real dirs; and replaces whatever sits where it
writes in one rename, never writing through it. What it refuses raises `UnsafePath`, an
`OSError` whose message names the path and the fix.

A leaf module: any layer may use it (the launcher's export-time scan as well as the phases).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "UnsafePath",
    "copy_plain",
    "is_plain_dir",
    "make_dirs",
    "read_plain",
    "remove_tree",
    "write_replacing",
]

_CHUNK = 1 << 20
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path that is a symbolic link, or not the kind of file expected there: never followed."""

    def __init__(self, path: Path, problem: str, fix: str, code: int = errno.ELOOP) -> None:
        super().__init__(code, f"{path} {problem} ({fix})")
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def is_plain_dir(path: Path) -> bool:
    """True for a real dir, False when nothing or a non-dir is there; `UnsafePath` for a symbolic link."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(mode):
        raise UnsafePath(path, "is a symbolic link", "refusing to follow it: make it a plain dir")
    return stat.S_ISDIR(mode)


def make_dirs(root: Path, *parts: str) -> Path:
    """``root/parts...``, making the missing dirs below ``root``; a symbolic link on the way is refused.

    ``root`` itself is the caller's (a layers dir the platform chose) and is taken as it is.
    """
    path = root
    for part in parts:
        if part in ("", ".", "..") or "/" in part:
            raise UnsafePath(
                path / part, "is not a plain name", "use a name without '/' or '..'", errno.EINVAL
            )
        path = path / part
        try:
            os.mkdir(path)
            continue
        except FileExistsError:
            pass
        if not is_plain_dir(path):
            raise UnsafePath(path, "is not a directory", "remove it", errno.ENOTDIR)
    return path


def read_plain(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (not a link, FIFO or device), at most ``limit`` of them."""
    with _open_plain(path) as source:
        data = source.read() if limit is None else source.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise UnsafePath(path, f"is larger than {limit} bytes", "write a smaller file", errno.EFBIG)
    return data


def copy_plain(source: Path, dest: Path) -> None:
    """Copy the regular file ``source`` to ``dest`` (see `read_plain`, `write_replacing`)."""
    with _open_plain(source) as reader:
        _replace(dest, lambda out: shutil.copyfileobj(reader, out, _CHUNK))


def write_replacing(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in one rename: whatever is at ``path`` (a link too) is replaced.

    The dir ``path`` is in must be a real dir, not a symbolic link.
    """
    _replace(path, lambda out: out.write(data))


def remove_tree(path: Path) -> None:
    """Remove ``path``: a link or file is unlinked (never followed); a dir goes with all below it.

    Dirs are made writable first, since layers may hold read-only dirs (a Go module cache); a
    symbolic link inside is removed, never entered. Errors on the way are ignored.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        path.unlink(missing_ok=True)
        return
    os.chmod(path, stat.S_IRWXU)
    for root, dirs, _ in os.walk(path):  # never descends into a link (followlinks=False)
        for name in dirs:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def _open_plain(path: Path) -> BinaryIO:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(path, "is a symbolic link", "write a plain file") from None
        raise
    source = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        source.close()
        raise UnsafePath(path, "is not a regular file", "write a plain file", errno.EINVAL)
    return source


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    if os.path.islink(path.parent):
        raise UnsafePath(path.parent, "is a symbolic link", "refusing to write through it")
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temporary, _CREATE_FLAGS, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
