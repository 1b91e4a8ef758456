"""A writable copy of an image's root filesystem, and its changes as one reproducible layer.

The extracted rootfs cache is shared (its trees are hard-linked copies of each
other), so extending an image never touches it: ``working_copy`` makes a real
copy owned by the sandbox's host ids (``IdShift``). ``snapshot`` records each
path's inode, ctime, mtime, size, mode and owner; every write, chmod, chown,
link or rename changes one of them, so comparing two snapshots finds what a
Dockerfile changed without reading file contents.

``write_changes`` turns the difference into an OCI layer: changed and new
entries with their parent directories, OCI whiteouts for deleted paths, sorted,
owners mapped back to in-image ids, directory mtimes constant and file mtimes
clamped to it, empty uname/gname (EXP-5, EXP-6). Paths whose contents are
volatile by nature are never recorded (``VOLATILE``): kernel and runtime
mounts, temporary files, logs, and apt's downloaded indexes and package
caches, which differ with every ``apt-get update`` and are not part of the
image's software. So the same Dockerfile over the same base and the same mirror
state gives the same layer digest.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import ExtendError
from lifecycle.execution.extend_sandbox import IdShift
from lifecycle.oci.compress import write_layer
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar

__all__ = ["VOLATILE", "Changes", "Snapshot", "changes", "snapshot", "working_copy", "write_changes"]

VOLATILE = frozenset(
    {
        "dev", "proc", "sys", "tmp", "run", "var/tmp", "var/log",
        "var/cache/apt", "var/lib/apt/lists", "var/cache/ldconfig", "var/cache/debconf/config.dat-old",
        "var/cache/debconf/templates.dat-old", "var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend",
        "var/lib/dpkg/triggers/Lock", "var/lib/apt/extended_states.save",
    }
)  # fmt: skip
_NEWEST = 1 << 40  # beyond any clamp: LayerTar.add_member then writes its constant mtime

Signature = tuple[int, int, int, int, int, int, int]
Snapshot = dict[str, Signature]


@dataclass(frozen=True)
class Changes:
    changed: tuple[str, ...]
    deleted: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted)


def working_copy(source: Path, dest: Path, shift: IdShift) -> None:
    """Copy a cached rootfs to ``dest`` (new), owned by ``shift``'s host ids, with a 0755 root."""
    proc = subprocess.run(["cp", "-a", "--", str(source), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExtendError("copy image root filesystem", proc.stderr.strip() or f"cp exited {proc.returncode}")
    os.chmod(dest, 0o755)
    if shift.base is None:
        return
    seen: set[tuple[int, int]] = set()
    _shift_owner(str(dest), shift, seen)
    for directory, dirs, files in os.walk(dest):
        for name in (*dirs, *files):
            _shift_owner(os.path.join(directory, name), shift, seen)


def _shift_owner(path: str, shift: IdShift, seen: set[tuple[int, int]]) -> None:
    st = os.lstat(path)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
        if (st.st_dev, st.st_ino) in seen:
            return  # another name of a file already shifted
        seen.add((st.st_dev, st.st_ino))
    os.lchown(path, shift.to_host(st.st_uid), shift.to_host(st.st_gid))


def snapshot(root: Path) -> Snapshot:
    """The signature of every path below ``root`` but the volatile ones, by relative path."""
    found: Snapshot = {}
    _scan(os.fspath(root), "", found)
    return found


def _scan(directory: str, prefix: str, found: Snapshot) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            rel = prefix + entry.name
            if rel in VOLATILE:
                continue
            st = entry.stat(follow_symlinks=False)
            found[rel] = (
                st.st_ino,
                st.st_ctime_ns,
                st.st_mtime_ns,
                st.st_size,
                st.st_mode,
                st.st_uid,
                st.st_gid,
            )
            if stat.S_ISDIR(st.st_mode):
                _scan(entry.path, rel + "/", found)


def changes(before: Snapshot, after: Snapshot) -> Changes:
    changed = tuple(path for path, signature in after.items() if before.get(path) != signature)
    gone = {path for path in before if path not in after}
    deleted = tuple(path for path in gone if path.rpartition("/")[0] not in gone)
    return Changes(changed, deleted)


def write_changes(
    root: Path, found: Changes, directory: Path, shift: IdShift, *, mtime: int = DEFAULT_MTIME
) -> Layer:
    """One layer of ``found``'s entries (with their parents) and whiteouts, in walk order."""
    entries = set(found.changed)
    for path in found.changed:
        entries.update(_parents(path))
    whiteouts = {_whiteout_name(path): path for path in found.deleted}
    order = sorted([*entries, *whiteouts], key=lambda path: path.split("/"))

    def fill(tar: LayerTar) -> None:
        links: dict[tuple[int, int], str] = {}
        for path in order:
            if path in whiteouts:
                tar.add_whiteout(whiteouts[path])
            else:
                _add_entry(tar, root, path, shift, links)

    return write_layer(directory, fill, mtime=mtime)


def _parents(path: str) -> Iterable[str]:
    parts = path.split("/")
    return ("/".join(parts[:end]) for end in range(1, len(parts)))


def _whiteout_name(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/.wh.{name}" if parent else f".wh.{name}"


def _add_entry(
    tar: LayerTar, root: Path, path: str, shift: IdShift, links: dict[tuple[int, int], str]
) -> None:
    full = os.path.join(root, path)
    st = os.lstat(full)
    info = tarfile.TarInfo(path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = shift.to_image(st.st_uid), shift.to_image(st.st_gid)
    info.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mtime = tarfile.DIRTYPE, _NEWEST
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
        else:
            links[key] = path
            info.size = st.st_size
            with open(full, "rb") as stream:
                tar.add_member(info, stream)
            return
    else:
        return  # device nodes and sockets are not image content
    tar.add_member(info)
