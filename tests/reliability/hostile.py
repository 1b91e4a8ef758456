"""A corpus of hostile layer tars, and a jail that proves nothing left the extraction dir.

Each ``Case`` is a list of layers, each a list of ``Entry``; ``{victim}`` in a name or link
stands for the absolute path of a directory outside the target that holds files worth
attacking (``keep.txt``, ``dir/f``). ``expect`` says, per extractor, whether the case must be
refused (``"refuse"``) or may be extracted with the danger neutralised (``"neutral"``):

- ``rootfs``: ``lifecycle.execution.rootfs`` (build and run images),
- ``cache``: ``lifecycle.phases.cache_extract`` (cache restore; names under the layer prefix),
- ``buildpack``: ``lifecycle.platform.bpref.resolve_buildpack`` (a ``.tgz`` buildpack).

Whatever the outcome, ``Jail.check`` must find every file outside the target as it was.

Layer bombs (``BOMBS``) are not held in memory: ``LazyStream`` makes a tar (and its gzip) as an
extractor reads it, so a bomb of 64 GiB, or one with no end, costs only what is read of it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.oci.layer import Layer, MemoryBlobs
from lifecycle.oci.media import OCI_LAYER
from lifecycle.oci.models import Descriptor

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
CHR, BLK, FIFO = tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE
TB = 1 << 40
CACHE_PREFIX = "layers/acme_evil/cached"
EXTRACTORS = ("rootfs", "cache", "buildpack")


@dataclass(frozen=True)
class Entry:
    name: str
    kind: bytes = REG
    data: bytes = b""
    link: str = ""
    mode: int | None = None
    claimed_size: int | None = None  # a header that lies about its size
    raw: bool = False  # never prefixed (the cache extractor puts names under CACHE_PREFIX)


@dataclass(frozen=True)
class Case:
    name: str
    layers: tuple[tuple[Entry, ...], ...]
    expect: dict[str, str]
    why: str = ""
    message: str = ""  # a regex the refusal must match (for every extractor that refuses)
    check: Callable[[Path], None] | None = None  # a neutralised rootfs must pass this

    def outcome(self, extractor: str) -> str:
        return self.expect.get(extractor, self.expect.get("*", "either"))


def _no_setuid(root: Path) -> None:
    for path in root.rglob("*"):
        mode = path.lstat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} kept a setuid/setgid bit"


def _no_devices(root: Path) -> None:
    for path in root.rglob("*"):
        mode = path.lstat().st_mode
        assert not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)), f"{path} is a device node"


def _last_wins(root: Path) -> None:
    assert (root / "dup").read_bytes() == b"second"
    assert (root / "d").is_file() and (root / "f").is_dir()


def _path_max_chain(base: Path, victim: Path, steps: str = "abcdefghijklmnop") -> list[Entry]:
    """CVE-2025-4517: a symlink chain whose real path passes PATH_MAX, which blinds realpath().

    realpath() stops expanding at the long ``l...`` link and treats the ``..`` after it as
    climbing the long dirs (still inside); the kernel expands it to ``base`` and climbs out.
    """
    target_parent = os.path.relpath(victim, base)
    component = "d" * ((4096 - len(str(base)) - 1) // (len(steps) + 1))
    entries, path = [], ""
    for step in steps:
        entries.append(Entry(os.path.join(path, component), DIR, mode=0o777))
        entries.append(Entry(os.path.join(path, step), SYM, link=component))
        path = os.path.join(path, component)
    long_link = os.path.join(*steps, "l" * 254)
    entries.append(Entry(long_link, SYM, link=os.path.join(*[".."] * len(steps))))
    entries.append(Entry("escape", SYM, link=os.path.join(long_link, target_parent)))
    entries.append(Entry("flaglink", LNK, link="escape/keep.txt"))
    entries.append(Entry("flaglink", data=b"overwritten through a hard link"))
    entries.append(Entry("escape/planted", data=b"written through the chain"))
    return entries


def cases(base: Path, victim: Path) -> list[Case]:
    """Every case; ``base`` is the extraction dir and ``victim`` the dir to attack (for the chain)."""
    refuse_all = {"*": "refuse"}
    up = "../" * 12
    return [
        Case("dotdot-name", ((Entry("../../escaped", data=b"x"),),), refuse_all, message=r"\.\."),
        Case("dotdot-inside-name", ((Entry("a/../../../escaped", data=b"x"),),), refuse_all),
        Case(
            "absolute-name",
            ((Entry("{victim}/planted", data=b"x", raw=True),),),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "neutral"},
            why="a leading / is dropped (tar semantics): the file lands under the target",
        ),
        Case(
            "symlink-absolute-then-file-through-it",
            ((Entry("evil", SYM, link="{victim}"), Entry("evil/planted", data=b"x")),),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
            why="rootfs follows the link inside the root, like a chroot",
        ),
        Case(
            "symlink-relative-escape-then-file",
            ((Entry("evil", SYM, link=up + "victim"), Entry("evil/planted", data=b"x")),),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
        ),
        Case(
            "symlink-in-lower-layer-file-in-upper",
            ((Entry("evil", SYM, link="{victim}"),), (Entry("evil/keep.txt", data=b"pwned"),)),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
            why="tar's two-archive attack (CVE-2025-45582) across layers",
        ),
        Case(
            "symlink-to-host-file-then-overwrite",
            ((Entry("evil", SYM, link="{victim}/keep.txt"), Entry("evil", data=b"pwned")),),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
        ),
        Case(
            "symlink-to-host-dir-then-file-replacing-a-dir",
            ((Entry("x", SYM, link="{victim}"), Entry("x/dir", data=b"pwned")),),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
            why="replacing x/dir must not rmtree the host's dir",
        ),
        Case("hardlink-absolute", ((Entry("h", LNK, link="{victim}/keep.txt", raw=True),),), refuse_all),
        Case("hardlink-dotdot", ((Entry("h", LNK, link=up + "victim/keep.txt"),),), refuse_all),
        Case(
            "hardlink-through-symlink",
            ((Entry("s", SYM, link="{victim}"), Entry("h", LNK, link="s/keep.txt")),),
            refuse_all,
        ),
        Case(
            "hardlink-then-write-through-it",
            ((Entry("h", LNK, link="{victim}/keep.txt", raw=True), Entry("h", data=b"pwned")),),
            refuse_all,
        ),
        Case(
            "path-max-symlink-chain",
            (tuple(_path_max_chain(base, victim)),),
            {"rootfs": "either", "cache": "refuse", "buildpack": "refuse"},
            why="CVE-2025-4517: realpath() gives up past PATH_MAX; the kernel does not",
        ),
        Case(
            "device-nodes",
            (
                (
                    Entry("dev", DIR, mode=0o755),
                    Entry("dev/evil-mem", CHR, mode=0o666),
                    Entry("dev/evil-sda", BLK, mode=0o666),
                    Entry("dev/evil-fifo", FIFO, mode=0o666),
                ),
            ),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "refuse"},
            check=_no_devices,
        ),
        Case(
            "setuid-and-setgid-bits",
            (
                (
                    Entry("bin", DIR, mode=0o2755),
                    Entry("bin/rootshell", data=b"#!/bin/sh\n", mode=0o4755),
                    Entry("bin/groupshell", data=b"#!/bin/sh\n", mode=0o2755),
                ),
            ),
            {"*": "neutral"},
            check=_no_setuid,
        ),
        Case(
            "header-claims-one-terabyte",
            ((Entry("big", data=b"x" * 1024, claimed_size=TB),),),
            refuse_all,
        ),
        Case(
            "pax-header-claims-one-terabyte",
            ((Entry("pax", tarfile.XHDTYPE, data=b"\0" * (1 << 20), claimed_size=TB),),),
            refuse_all,
        ),
        Case(
            "duplicate-entries",
            (
                (
                    Entry("dup", data=b"first"),
                    Entry("dup", data=b"second"),
                    Entry("d", DIR),
                    Entry("d/inner", data=b"x"),
                    Entry("d", data=b"now a file"),
                    Entry("f", data=b"a file"),
                    Entry("f", DIR),
                ),
            ),
            {"rootfs": "neutral", "cache": "refuse", "buildpack": "either"},
            check=_last_wins,
        ),
        Case("whiteout-of-nothing", ((Entry("a", DIR),), (Entry(".wh.", data=b""),)), {"rootfs": "refuse"}),
        Case("whiteout-of-dot", ((Entry("a", DIR),), (Entry("a/.wh..", data=b""),)), {"rootfs": "refuse"}),
        Case(
            "whiteout-of-parent",
            ((Entry("a", DIR),), (Entry(".wh...", data=b""),)),
            {"rootfs": "refuse"},
            why="'.wh...' named the parent of the target: the whole rootfs cache went",
        ),
        Case(
            "whiteout-through-symlink",
            ((Entry("s", SYM, link="{victim}"),), (Entry("s/.wh.keep.txt", data=b""),)),
            {"rootfs": "neutral"},
        ),
        Case(
            "opaque-whiteout-through-symlink",
            ((Entry("s", SYM, link="{victim}"),), (Entry("s/.wh..wh..opq", data=b""),)),
            {"rootfs": "neutral"},
        ),
        Case(
            "whiteout-dotdot-parent",
            ((Entry("a", DIR),), (Entry("a/../../.wh.victim", data=b""),)),
            {"rootfs": "refuse"},
        ),
        Case(
            "symlink-loop",
            ((Entry("a", SYM, link="b"), Entry("b", SYM, link="a"), Entry("a/x", data=b"x")),),
            {"rootfs": "refuse", "cache": "refuse", "buildpack": "either"},
            message="symbolic links|not below|outside|link",
        ),
        Case(
            "file-as-parent",
            ((Entry("f", data=b"x"), Entry("f/x", data=b"x")),),
            {"rootfs": "refuse", "cache": "refuse", "buildpack": "refuse"},
        ),
        Case("root-entry-is-a-file", ((Entry(".", data=b"x", raw=True),),), {"rootfs": "refuse"}),
        Case(
            "mount-points-through-symlinks",
            ((Entry("cnb", SYM, link="{victim}"), Entry("etc", SYM, link="{victim}")),),
            {"rootfs": "neutral", "cache": "either", "buildpack": "refuse"},
            why="mount points and /etc/resolv.conf are made inside the root, never through a link",
        ),
    ]


def tar_bytes(entries: Iterable[Entry], victim: Path, prefix: str = "") -> bytes:
    """The uncompressed tar of ``entries``; ``prefix`` puts names (not raw ones) under a dir."""
    out = io.BytesIO()
    for entry in entries:
        out.write(_member(entry, victim, prefix))
    out.write(b"\0" * tarfile.RECORDSIZE)
    return out.getvalue()


def _expand(text: str, victim: Path) -> str:
    return text.replace("{victim}", str(victim))


def _member(entry: Entry, victim: Path, prefix: str) -> bytes:
    name = _expand(entry.name, victim)
    link = _expand(entry.link, victim)
    if prefix and not entry.raw:
        name = f"{prefix}/{name}"
        link = f"/{prefix}/{link}" if entry.kind == LNK and link else link
    info = tarfile.TarInfo(name)
    info.type = entry.kind
    info.linkname = link
    info.mode = entry.mode if entry.mode is not None else (0o755 if entry.kind == DIR else 0o644)
    info.mtime = 315532801
    data = entry.data if entry.kind in (REG, tarfile.XHDTYPE) else b""
    info.size = len(data)
    if entry.kind == tarfile.XHDTYPE:
        header = info.tobuf(tarfile.USTAR_FORMAT)
        header = _with_size(header, entry.claimed_size or len(data))
        return header + data + _padding(len(data))
    if entry.claimed_size is not None:
        info.size = entry.claimed_size
        return info.tobuf(tarfile.PAX_FORMAT) + data
    return info.tobuf(tarfile.PAX_FORMAT) + data + _padding(len(data))


def _with_size(header: bytes, size: int) -> bytes:
    """A ustar header with ``size`` in base-256 (any size), its checksum recomputed."""
    block = bytearray(header[: tarfile.BLOCKSIZE])
    block[124:136] = b"\x80" + size.to_bytes(11, "big")
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def memory_layer(raw: bytes, diff_id: str | None = None) -> Layer:
    """An uncompressed layer of ``raw``, claiming ``diff_id`` (its true one by default)."""
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    blobs = MemoryBlobs()
    blobs.blobs[digest] = raw
    return Layer(Descriptor(media_type=OCI_LAYER, digest=digest, size=len(raw)), diff_id or digest, blobs)


@dataclass
class Jail:
    """``root`` holds the target and a ``victim`` dir; ``check`` proves only the target changed."""

    root: Path
    targets: list[Path] = field(default_factory=list)
    _before: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    @property
    def victim(self) -> Path:
        return self.root / "victim"

    def target(self, name: str) -> Path:
        path = self.root / "deep" / "er" / name
        self.targets.append(path)
        return path

    def arm(self) -> Jail:
        self.victim.mkdir(parents=True)
        (self.victim / "keep.txt").write_text("the host's file")
        (self.victim / "dir").mkdir()
        (self.victim / "dir" / "f").write_text("the host's dir")
        (self.root / "deep" / "er").mkdir(parents=True)
        self._before = self.snapshot()
        return self

    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        found: dict[str, tuple[int, bytes]] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if any(here == t or here.is_relative_to(t) for t in self.targets):
                dirnames[:] = []
                continue
            for name in [*dirnames, *filenames]:
                path = here / name
                if any(path == t or path.is_relative_to(t) for t in self.targets):
                    continue
                st = path.lstat()
                body = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
                found[str(path.relative_to(self.root))] = (st.st_mode, body)
        return found

    def check(self) -> None:
        after = self.snapshot()
        changed = sorted(k for k in after.keys() | self._before.keys() if after.get(k) != self._before.get(k))
        assert not changed, f"written outside the target: {changed}"


# -- layer bombs, made as they are read ---------------------------------------------------------

_ZEROS = bytes(1 << 20)
GiB = 1 << 30


class LazyStream(io.RawIOBase):
    """A read-only file whose bytes ``chunks`` make as they are read; ``served`` counts them."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.served += n
        return n


def zero_files(names: Iterable[str], size: int) -> Iterator[bytes]:
    """Tar members: a file of ``size`` zero bytes for each name, made a MiB at a time."""
    for name in names:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 315532801
        yield info.tobuf(tarfile.GNU_FORMAT)
        left = size
        while left:
            piece = min(left, len(_ZEROS))
            yield _ZEROS[:piece]
            left -= piece
        yield bytes(-size % tarfile.BLOCKSIZE)


def gzipped(chunks: Iterable[bytes], guard: int | None = None) -> Iterator[bytes]:
    """``chunks`` through gzip, compressed as they are asked for (zeros shrink about 1000:1).

    With ``guard``, making more than that many uncompressed bytes fails the test: an extractor
    that no cap stops must not fill the disk running it.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    made = 0
    for chunk in chunks:
        made += len(chunk)
        if guard is not None and made > guard:
            raise AssertionError(f"the extractor read {made} bytes of a bomb: no cap stopped it")
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


def _dirs(prefix: str) -> Iterator[bytes]:
    """Entries for ``prefix`` and its parents, as a cache tar has them."""
    parts = prefix.split("/") if prefix else []
    for n in range(1, len(parts) + 1):
        info = tarfile.TarInfo("/".join(parts[:n]))
        info.type, info.mode = DIR, 0o755
        yield info.tobuf(tarfile.GNU_FORMAT)


def _names(prefix: str, stem: str) -> Iterator[str]:
    return (f"{prefix}/{stem}{n}" if prefix else f"{stem}{n}" for n in itertools.count())


def _end() -> Iterator[bytes]:
    yield bytes(2 * tarfile.BLOCKSIZE)


def _forever(chunk: bytes) -> Iterator[bytes]:
    return itertools.repeat(chunk)


# name -> (uncompressed tar stream under ``prefix``, the cap it must hit: "bytes" or "entries",
# and whether an extractor that stops at the end of the archive may accept it)
BOMBS: dict[str, tuple[Callable[[str], Iterator[bytes]], str, bool]] = {
    "one-64GiB-file": (
        lambda p: itertools.chain(_dirs(p), zero_files(_names(p, "big"), 64 * GiB), _end()),
        "bytes",
        False,
    ),
    "endless-256KiB-files": (
        lambda p: itertools.chain(_dirs(p), zero_files(_names(p, "f"), 256 << 10)),
        "bytes",
        False,
    ),
    "endless-empty-files": (
        lambda p: itertools.chain(_dirs(p), zero_files(_names(p, "e"), 0)),
        "entries",
        False,
    ),
    "endless-zeros-after-the-end": (
        lambda p: itertools.chain(
            _dirs(p), zero_files(itertools.islice(_names(p, "ok"), 1), 100), _end(), _forever(_ZEROS)
        ),
        "bytes",
        True,
    ),
}
