"""Unpacking one cached layer tar into the layers dir, checked against its diffID (RES-3).

The tar comes from a cache, which is outside our control: every entry must sit under the
layer's own path (``/layers/<id>/<name>``), go through real dirs this extraction made (never
a symlink), and be a dir, file, symlink or hard link; the whole stream must hash to the
diffID recorded for the layer. What it unpacks to is capped in bytes and entries
(``lifecycle.oci.limits``: ``PYBUILD_MAX_LAYER_BYTES``, ``PYBUILD_MAX_LAYER_ENTRIES``), so a
cache holding a layer bomb costs a refusal, not a full disk. Anything else removes what was
unpacked and raises ``CacheError``, so a corrupt cache costs a rebuild of the layer, never a
wrong one.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from lifecycle.execution.rootfs import DiffIdReader
from lifecycle.fsutil import remove_tree
from lifecycle.oci.limits import LayerBudget
from lifecycle.phases.cache import CacheError

__all__ = ["extract_layer", "remove_tree"]

_CHUNK = 1 << 20
_MODE_BITS = 0o1777  # setuid and setgid bits are never restored


@dataclass
class _Unpacker:
    root: Path
    prefix: PurePosixPath
    dirs: dict[str, tuple[int, int]] = field(default_factory=dict)  # rel -> (mode, mtime)
    files: set[str] = field(default_factory=set)

    def relative(self, name: str) -> str | None:
        """``name`` relative to the layer dir; None for the dirs above it; error elsewhere."""
        path = PurePosixPath("/", name)
        if path == self.prefix:
            return ""
        if path in self.prefix.parents:
            return None
        try:
            rel = path.relative_to(self.prefix)
        except ValueError:
            raise CacheError("restore cached layer", f"entry {name!r} is outside {self.prefix}") from None
        if any(part in ("", ".", "..") for part in rel.parts):
            raise CacheError("restore cached layer", f"entry {name!r} is not a plain path")
        return rel.as_posix()

    def target(self, rel: str) -> str:
        parent = PurePosixPath(rel).parent.as_posix() if "/" in rel else ""
        if rel and parent not in self.dirs:
            raise CacheError("restore cached layer", f"{rel!r} is not below a dir of the layer")
        return os.path.join(self.root, rel) if rel else str(self.root)

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        rel = self.relative(member.name)
        if rel is None:
            return
        path = self.target(rel)
        if member.isdir():
            self._dir(rel, path, member)
        elif member.isreg():
            self._file(rel, path, member, tar.extractfile(member))
        elif member.issym():
            os.symlink(member.linkname, path)
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        elif member.islnk():
            source = self.relative(member.linkname)
            if source is None or source not in self.files:
                raise CacheError("restore cached layer", f"hard link {rel!r} points outside the layer")
            os.link(self.target(source), path, follow_symlinks=False)
        else:
            raise CacheError("restore cached layer", f"{rel!r} is not a file, dir or link")

    def _dir(self, rel: str, path: str, member: tarfile.TarInfo) -> None:
        if rel not in self.dirs:
            os.mkdir(path, 0o700)
        self.dirs[rel] = (member.mode & _MODE_BITS, int(member.mtime))

    def _file(self, rel: str, path: str, member: tarfile.TarInfo, data: IO[bytes] | None) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            if data is not None:
                shutil.copyfileobj(data, out, _CHUNK)
            os.fchmod(out.fileno(), member.mode & _MODE_BITS)
        os.utime(path, (member.mtime, member.mtime))
        self.files.add(rel)

    def finish(self) -> None:
        """Dir modes and mtimes last, deepest first: a read-only dir still gets its children."""
        if "" not in self.dirs:
            raise CacheError("restore cached layer", f"the tar has no entry for {self.prefix}")
        for rel in sorted(self.dirs, key=lambda r: (-r.count("/"), r)):
            mode, mtime = self.dirs[rel]
            path = self.target(rel)
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


def extract_layer(stream: BinaryIO, prefix: str, dest: Path, diff_id: str) -> None:
    """Unpack the layer at ``prefix`` in ``stream`` into ``dest`` (which must not exist).

    ``dest`` exists afterwards only if every entry was valid and the stream hashed to
    ``diff_id``; otherwise it is removed and ``CacheError`` says why.
    """
    budget = LayerBudget(f"the cached layer {prefix}", "restore cached layer", CacheError)
    reader = DiffIdReader(budget.stream(stream))
    unpacker = _Unpacker(dest, PurePosixPath("/", prefix))
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            while (member := tar.next()) is not None:
                tar.members.clear()  # stream mode keeps every header otherwise
                budget.entry(member)
                unpacker.add(member, tar)
        actual = reader.diff_id()
        if actual != diff_id:
            raise CacheError("restore cached layer", f"content hashes to {actual}, expected {diff_id}")
        unpacker.finish()
    except (tarfile.TarError, OSError, EOFError) as exc:
        remove_tree(dest)
        raise CacheError("restore cached layer", f"{prefix}: {exc}") from None
    except CacheError:
        remove_tree(dest)
        raise
