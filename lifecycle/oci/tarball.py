"""Reproducible layer tars.

Entries are written in lexical order with a constant mtime (1980-01-01T00:00:01Z
unless a creation time is given), normalised uid/gid, and empty uname/gname,
so the same tree gives the same diffID on any machine (EXP-5, EXP-6).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

__all__ = ["DEFAULT_MTIME", "LayerTar", "walk_sorted"]

DEFAULT_MTIME = 315532801  # 1980-01-01T00:00:01Z: the lifecycle's constant (EXP-6)
_COPY_BUFSIZE = 1 << 20


def walk_sorted(root: Path) -> Iterator[Path]:
    """Every path below ``root``, depth first, siblings by name; links are not followed."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(path)


class LayerTar:
    """Writes one reproducible layer tar into a binary stream (e.g. a ``LayerSink``)."""

    def __init__(self, out: BinaryIO, *, mtime: int = DEFAULT_MTIME, uid: int = 0, gid: int = 0) -> None:
        self._tar = tarfile.TarFile(
            fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_COPY_BUFSIZE
        )
        self._mtime = mtime
        self._uid = uid
        self._gid = gid
        self._written: set[str] = set()
        self._links: dict[tuple[int, int], str] = {}

    def _info(self, name: str, kind: bytes, mode: int, uid: int | None, gid: int | None) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = self._mtime
        info.uid = self._uid if uid is None else uid
        info.gid = self._gid if gid is None else gid
        info.uname = info.gname = ""
        return info

    def _claim(self, path: str) -> str | None:
        return self._claim_name(str(PurePosixPath("/") / path))

    def _claim_name(self, name: str) -> str | None:
        """Claim a name that is already absolute and normalised; None if it was written before."""
        if name in self._written:
            return None
        self._written.add(name)
        return name

    def add_dir(self, path: str, mode: int = 0o755, uid: int | None = None, gid: int | None = None) -> None:
        self._dir_entry(self._claim(path), mode, uid, gid)

    def _dir_entry(self, name: str | None, mode: int, uid: int | None, gid: int | None) -> None:
        if name is not None and name != "/":
            self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid))

    def add_parents(self, path: str, modes: Callable[[str], int] | None = None) -> None:
        """Add every parent directory of ``path`` not yet written (EXP-5)."""
        for parent in reversed(PurePosixPath("/", path).parents):
            if str(parent) != "/":
                self.add_dir(str(parent), modes(str(parent)) if modes else 0o755, uid=0, gid=0)

    def add_file(
        self, path: str, data: bytes, mode: int = 0o644, uid: int | None = None, gid: int | None = None
    ) -> None:
        name = self._claim(path)
        if name is not None:
            info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))

    def add_symlink(self, path: str, target: str, uid: int | None = None, gid: int | None = None) -> None:
        self._symlink_entry(self._claim(path), target, uid, gid)

    def _symlink_entry(self, name: str | None, target: str, uid: int | None, gid: int | None) -> None:
        if name is not None:
            info = self._info(name, tarfile.SYMTYPE, 0o777, uid, gid)
            info.linkname = target
            self._tar.addfile(info)

    def add_member(self, info: tarfile.TarInfo, stream: IO[bytes] | None = None) -> None:
        """Copy an entry of another tar (a rootfs tarball, a .deb): its type, mode and owner kept.

        The name is normalised like every other entry, the mtime is clamped to this writer's
        (older package mtimes stay, so .pyc files stay valid), and of its PAX headers only
        xattrs (file capabilities) are kept, so nothing of the machine that made it leaks in.
        """
        name = self._claim(info.name)
        if name is None or name == "/":
            return
        entry = self._info(name, info.type, info.mode, info.uid, info.gid)
        entry.mtime = min(int(info.mtime), self._mtime)
        entry.size = info.size if info.isreg() else 0
        entry.linkname = str(PurePosixPath("/", info.linkname)) if info.islnk() else info.linkname
        entry.pax_headers = {k: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        self._tar.addfile(entry, stream if info.isreg() else None)

    def add_whiteout(self, path: str) -> None:
        """Mark ``path`` deleted in this layer (OCI whiteout file)."""
        p = PurePosixPath("/", path)
        self.add_file(str(p.parent / (".wh." + p.name)), b"", 0o644, 0, 0)

    def add_tree(self, src: Path, dest: str, *, include: Callable[[Path], bool] | None = None) -> None:
        """Add ``src`` (a dir, file or symlink) as ``dest`` and everything below it, owned by the writer."""
        self.add_parents(dest, lambda p: 0o755)
        name = str(PurePosixPath("/", dest))
        self._add_stat(os.fspath(src), name, src.lstat())
        if src.is_dir() and not src.is_symlink():
            self._add_children(os.fspath(src), name, include)

    def _add_children(self, directory: str, name: str, include: Callable[[Path], bool] | None) -> None:
        """Everything below ``directory``, as ``name/...``, depth first and sorted like ``walk_sorted``.

        Names are joined as strings: a pathlib object per entry costs more than tarfile itself
        on trees of many small files (bench/layers.py).
        """
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        prefix = name.rstrip("/") + "/"
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if include is None or include(Path(entry.path)):
                self._add_stat(entry.path, prefix + entry.name, st)
            if stat.S_ISDIR(st.st_mode):
                self._add_children(entry.path, prefix + entry.name, include)

    def _add_stat(self, path: str, name: str, st: os.stat_result) -> None:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            self._dir_entry(self._claim_name(name), mode, None, None)
        elif stat.S_ISLNK(st.st_mode):
            self._symlink_entry(self._claim_name(name), os.readlink(path), None, None)
        elif stat.S_ISREG(st.st_mode):
            self._add_regular(path, self._claim_name(name), st, mode)

    def _add_regular(self, path: str, name: str | None, st: os.stat_result, mode: int) -> None:
        if name is None:
            return
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info = self._info(name, tarfile.LNKTYPE, mode, None, None)
            info.linkname = self._links[key]
            self._tar.addfile(info)
            return
        self._links[key] = name
        info = self._info(name, tarfile.REGTYPE, mode, None, None)
        info.size = st.st_size
        with open(path, "rb") as fh:
            self._tar.addfile(info, fh)

    def close(self) -> None:
        self._tar.close()
