"""One root filesystem layer: package contents streamed in, plus what every CNB stack image needs.

Entries from packages (a ``.deb``'s data.tar, an mmdebstrap tarball) pass through a filter on
their way into a reproducible ``LayerTar``, never onto disk: names lose their ``./``, device
nodes are dropped (a rootless unpack cannot make them; runtimes mount their own /dev), owners
and modes are kept and mtimes clamped. Stack files replace package entries at the same path;
the skeleton fills in only what packages left out: the mount points /workspace, /layers,
/platform, /cnb/buildpacks, /proc, /dev, /sys and /tmp (bwrap cannot bind onto a path missing
from a read-only root, ENVIRONMENT.md §5) and the user's home (cnb-spec.md §4).
"""

from __future__ import annotations

import io
import shlex
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.stack_debs import Member
from lifecycle.platform.stack_spec import UserSpec

__all__ = [
    "Entry",
    "RootfsFacts",
    "RootfsPlan",
    "account_files",
    "skeleton",
    "tarball_members",
    "write_rootfs",
]

# Files whose content the image labels are made from.
_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_DPKG_STATUS = "/var/lib/dpkg/status"
_CAPTURED = frozenset({*_OS_RELEASE, _DPKG_STATUS})
_PROGRESS_STEP = 1 << 22
_HOSTS = b"127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"


@dataclass(frozen=True)
class Entry:
    """A file, directory or symlink the stack adds itself; ``content`` is a symlink's target."""

    path: str
    mode: int = 0o644
    kind: Literal["file", "dir", "symlink"] = "file"
    content: bytes = b""
    uid: int = 0
    gid: int = 0

    def write(self, tar: LayerTar) -> None:
        if self.kind == "dir":
            tar.add_dir(self.path, self.mode, self.uid, self.gid)
        elif self.kind == "symlink":
            tar.add_symlink(self.path, self.content.decode(), self.uid, self.gid)
        else:
            tar.add_file(self.path, self.content, self.mode, self.uid, self.gid)


@dataclass(frozen=True)
class RootfsPlan:
    """``overrides`` replace package entries at their path; ``defaults`` go only where none is."""

    overrides: tuple[Entry, ...] = ()
    defaults: tuple[Entry, ...] = ()


@dataclass
class RootfsFacts:
    """What the written layer says about itself, read from its own files on the way through."""

    files: dict[str, bytes] = field(default_factory=dict)

    def os_release(self) -> dict[str, str]:
        raw = next((self.files[p] for p in _OS_RELEASE if p in self.files), b"")
        pairs = (line.split("=", 1) for line in raw.decode(errors="replace").splitlines() if "=" in line)
        return {key.strip(): _unquote(value) for key, value in pairs}

    def dpkg_packages(self) -> dict[str, str]:
        """``{package: version}`` of every installed package in ``/var/lib/dpkg/status``."""
        installed = {}
        for stanza in self.files.get(_DPKG_STATUS, b"").decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
            if fields.get("Status", "").endswith(" installed"):
                installed[fields["Package"]] = fields["Version"]
        return dict(sorted(installed.items()))


def _unquote(value: str) -> str:
    """os-release values are shell words (os-release(5)); a malformed one is taken as written."""
    try:
        return " ".join(shlex.split(value))
    except ValueError:
        return value.strip()


def skeleton(user: UserSpec) -> RootfsPlan:
    """What a CNB build or run image needs whatever its packages."""
    user_dirs = (user.home, "/workspace", "/layers")
    return RootfsPlan(
        # The runtime mounts its own; the bootstrapping host's must not leak into the image.
        overrides=(Entry("/etc/resolv.conf"), Entry("/etc/hostname")),
        defaults=(
            *(Entry(p, 0o755, "dir") for p in ("/dev", "/cnb", "/cnb/buildpacks", "/home", "/platform")),
            *(Entry(p, 0o555, "dir") for p in ("/proc", "/sys")),
            Entry("/tmp", 0o1777, "dir"),
            Entry("/root", 0o700, "dir"),
            *(Entry(p, 0o755, "dir", uid=user.uid, gid=user.gid) for p in user_dirs),
            Entry("/etc/hosts", content=_HOSTS),
        ),
    )


def account_files(user: UserSpec) -> tuple[Entry, ...]:
    """``/etc/passwd`` and ``/etc/group`` with root and the stack user, for images without shadow tools."""
    passwd = f"root:x:0:0:root:/root:/bin/sh\n{user.name}:x:{user.uid}:{user.gid}::{user.home}:{user.shell}\n"
    group = f"root:x:0:\n{user.name}:x:{user.gid}:\n"
    return Entry("/etc/passwd", content=passwd.encode()), Entry("/etc/group", content=group.encode())


def write_rootfs(tar: LayerTar, members: Iterable[Member], plan: RootfsPlan) -> RootfsFacts:
    """Stream ``members`` into ``tar`` through the filter, then the plan's remaining entries."""
    facts = RootfsFacts()
    pending = {entry.path: entry for entry in plan.overrides}
    for info, stream in members:
        if info.ischr() or info.isblk() or info.isfifo():
            continue
        name = str(PurePosixPath("/", info.name))
        override = pending.pop(name, None)
        if override is not None:
            _write_entry(tar, override, facts)
        elif name in _CAPTURED and stream is not None:
            content = stream.read()
            facts.files.setdefault(name, content)
            tar.add_member(info, io.BytesIO(content))
        else:
            tar.add_member(info, stream)
    for entry in [*pending.values(), *plan.defaults]:
        tar.add_parents(entry.path)
        _write_entry(tar, entry, facts)
    return facts


def _write_entry(tar: LayerTar, entry: Entry, facts: RootfsFacts) -> None:
    if entry.path in _CAPTURED and entry.kind == "file":
        facts.files.setdefault(entry.path, entry.content)
    entry.write(tar)


def tarball_members(path: Path, advance: Callable[[int], None]) -> Iterator[Member]:
    """Every entry of a rootfs tarball, read once front to back; ``advance`` gets bytes read so far."""
    with path.open("rb", buffering=0) as raw:
        counted = _CountingReader(raw, advance)
        with tarfile.open(fileobj=io.BufferedReader(counted, 1 << 20), mode="r|") as tar:
            for info in tar:
                yield info, tar.extractfile(info) if info.isreg() else None
        advance(counted.count)


class _CountingReader(io.RawIOBase):
    """Reports progress every few MiB, not per tar block, to keep a live display cheap."""

    def __init__(self, inner: io.FileIO, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer) or 0
        if (self.count + n) // _PROGRESS_STEP > self.count // _PROGRESS_STEP:
            self._advance(self.count + n)
        self.count += n
        return n
