"""File content hashes that cost a stat call while files do not change: git's index, in small.

``StatCache`` maps a path to its size, mtime, ctime, inode and device and the sha256 of its
content, and trusts the hash while the stat is unchanged, with git's racy rule: an entry whose
file changed within ``RACY_NS`` of when it was hashed is hashed again, since a later write in the
same timestamp tick would not show in the stat. ``tree_sha256`` hashes a directory as a listing of
every entry (relative path, type, mode, owner, symlink target, content hash; no link followed);
``package_signature`` is a cheaper stat-only signature of an installed package. Standard library
only: ``build_inputs`` runs before ``pybuild build`` loads anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["RACY_NS", "SKIPPED_NAMES", "StatCache", "package_signature", "write_atomically"]

FORMAT = 1
RACY_NS = 2_000_000_000  # git's racy-clean margin, widened for coarse filesystem timestamps
SKIPPED_NAMES = frozenset({".git"})  # the app copy always leaves these out (platform/workspace.py)
_CHUNK = 1 << 20


class StatCache:
    """sha256 of files by path, trusted while their stat is unchanged and not racy (see module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = {}
        self._visited: set[str] = set()
        self._roots: set[str] = set()
        self._dirty = False
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_bytes())
            if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
                entries = loaded.get("entries")
                self._entries = entries if isinstance(entries, dict) else {}

    def file_sha256(self, path: str, st: os.stat_result) -> str:
        """The content hash of regular file ``path`` whose lstat is ``st``."""
        signature = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        self._visited.add(path)
        entry = self._entries.get(path)
        if (
            isinstance(entry, list)
            and len(entry) == 7
            and entry[:5] == signature
            and max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS <= entry[5]
        ):
            return str(entry[6])
        hashed_at = time.time_ns()
        digest = _sha256_file(path)
        self._entries[path] = [*signature, hashed_at, digest]
        self._dirty = True
        return digest

    def tree_sha256(self, root: Path) -> str:
        """One hash of every entry under directory ``root`` (the root itself followed if a link)."""
        top = os.path.abspath(root)
        self._roots.add(top)
        hasher = hashlib.sha256()
        st = os.stat(top)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, "not a directory", top)
        hasher.update(_line(".", st, ""))
        for relative, path, entry_st in _walk(top, ""):
            hasher.update(_line(relative, entry_st, self._content(path, entry_st)))
        return hasher.hexdigest()

    def path_sha256(self, path: Path) -> str:
        """The content hash of one file (a link is followed, as reading it would)."""
        absolute = os.path.abspath(path)
        st = os.stat(absolute)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file", absolute)
        return self.file_sha256(absolute, st)

    def _content(self, path: str, st: os.stat_result) -> str:
        if stat.S_ISREG(st.st_mode):
            return self.file_sha256(path, st)
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(path)
        return ""

    def save(self) -> None:
        """Write the cache if anything changed: entries visited, plus those of trees not walked."""

        def kept(path: str) -> bool:
            return path in self._visited or not any(path.startswith(root + os.sep) for root in self._roots)

        entries = {path: entry for path, entry in self._entries.items() if kept(path)}
        if not self._dirty and len(entries) == len(self._entries):
            return
        document = {"format": FORMAT, "entries": entries}
        write_atomically(self.path, json.dumps(document, separators=(",", ":")).encode())
        self._entries, self._dirty = entries, False


def _walk(top: str, prefix: str) -> Iterator[tuple[str, str, os.stat_result]]:
    with os.scandir(top) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        relative = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        yield relative, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(entry.path, relative + "/")


def _line(relative: str, st: os.stat_result, content: str) -> bytes:
    kind = stat.S_IFMT(st.st_mode) >> 12
    fields = [relative, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content]
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _sha256_file(path: str) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def package_signature(root: Path) -> str:
    """A stat signature of every file under ``root`` but ``__pycache__``: another install differs."""
    hasher = hashlib.sha256(os.path.abspath(root).encode())
    for relative, _, st in _walk(os.path.abspath(root), ""):
        if "__pycache__" in relative.split("/"):
            continue
        hasher.update(_line(relative, st, f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"))
    return hasher.hexdigest()


def write_atomically(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{time.time_ns()}.tmp")  # not tempfile: ~4 ms
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
