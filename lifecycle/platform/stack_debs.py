"""Debian packages without dpkg: a download cache of ``.deb`` files and a reader of their contents.

``apt-get download`` fetches the candidate version of each package from the host's configured
mirror into ``$PYBUILD_HOME/cache/debs``; a file already there with the expected SHA-256 is
used as is, so a rebuild needs no network. A ``.deb`` is an ``ar`` archive; its ``data.tar``
entries are streamed straight into a layer; the version we record is the one apt chose.
Debian 12 compresses both with xz; zstd (Ubuntu) would need a dependency, so it is refused.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote

from lifecycle.errors import StackError

__all__ = [
    "Deb",
    "Member",
    "busybox_applets",
    "deb_file",
    "deb_members",
    "fetch_debs",
    "read_deb",
]

Member = tuple[tarfile.TarInfo, IO[bytes] | None]

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    path: Path


@dataclass(frozen=True)
class _Candidate:
    package: str
    version: str
    filename: str
    sha256: str


def fetch_debs(packages: Sequence[str], cache: Path) -> list[Deb]:
    """The ``.deb`` of each package's candidate version, downloaded unless cached."""
    cache.mkdir(parents=True, exist_ok=True)
    candidates = _candidates(packages, cache)
    missing = [c for c in candidates if not _is_cached(cache / c.filename, c.sha256)]
    if missing:
        _download(missing, cache)
    return [Deb(c.package, c.version, cache / c.filename) for c in candidates]


def _candidates(packages: Sequence[str], cache: Path) -> list[_Candidate]:
    # apt-get leaves out packages whose file is in its working dir, so ask from an empty one.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".uris-") as empty:
        out = _apt_get(["download", "--print-uris", *packages], Path(empty))
    found: dict[str, _Candidate] = {}
    for line in out.splitlines():
        if not line.startswith("'"):  # a URI line: 'URI' FILENAME SIZE SHA256:HEX
            continue
        _uri, filename, _size, checksum = line.split()
        package, version, _arch = filename.removesuffix(".deb").split("_")
        found[package] = _Candidate(package, unquote(version), filename, checksum.split(":", 1)[1].lower())
    absent = [p for p in packages if p not in found]
    if absent:
        raise StackError("download Debian packages", f"apt-get offers no .deb for {', '.join(absent)}")
    return [found[p] for p in packages]


def _is_cached(path: Path, sha256: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def _download(candidates: Sequence[_Candidate], cache: Path) -> None:
    """Download into a private dir, check each file, then move it into the cache in one rename."""
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        _apt_get(["download", *(f"{c.package}={c.version}" for c in candidates)], Path(tmp))
        for candidate in candidates:
            fetched = Path(tmp) / candidate.filename
            if not _is_cached(fetched, candidate.sha256):
                raise StackError("download Debian packages", f"{candidate.filename}: SHA-256 mismatch")
            fetched.replace(cache / candidate.filename)


def _apt_get(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["apt-get", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise StackError("download Debian packages", "apt-get not found: build stacks on Debian") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("E:")] or [done.stderr.strip()]
        fix = "check the package names in stack.toml, or run apt-get update"
        raise StackError("download Debian packages", f"apt-get {args[0]}: {errors[-1]} ({fix})")
    return done.stdout


def read_deb(path: Path) -> dict[str, bytes]:
    """The members of a ``.deb`` (an ``ar`` archive): ``debian-binary``, ``control.tar.*``, ``data.tar.*``."""
    raw = path.read_bytes()
    if not raw.startswith(_AR_MAGIC):
        raise StackError(f"read {path.name}", "not a Debian package (no ar header)")
    members: dict[str, bytes] = {}
    pos = len(_AR_MAGIC)
    while pos + _AR_HEADER <= len(raw):
        header = raw[pos : pos + _AR_HEADER]
        if header[58:60] != b"`\n":
            raise StackError(f"read {path.name}", f"corrupt ar member header at byte {pos}")
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58])
        members[name] = raw[pos + _AR_HEADER : pos + _AR_HEADER + size]
        pos += _AR_HEADER + size + size % 2  # members are padded to an even offset
    return members


def _open_tar(members: dict[str, bytes], stem: str, deb: str) -> tarfile.TarFile:
    name = next((n for n in members if n.startswith(stem)), None)
    if name is None:
        raise StackError(f"read {deb}", f"no {stem}.* member")
    if name.endswith(".zst"):
        raise StackError(f"read {deb}", f"{name} is zstd-compressed; use Debian packages (xz) instead")
    return tarfile.open(fileobj=io.BytesIO(members[name]), mode="r:*")


def deb_members(path: Path) -> Iterator[Member]:
    """Every entry of the ``.deb``'s ``data.tar``, with a stream for regular files."""
    with _open_tar(read_deb(path), "data.tar", path.name) as tar:
        for info in tar:
            yield info, tar.extractfile(info) if info.isreg() else None


def deb_file(debs: Sequence[Deb], path: str) -> bytes:
    """The content of the regular file at ``path`` in the first package that has it."""
    wanted = PurePosixPath("/", path)
    for deb in debs:
        for info, stream in deb_members(deb.path):
            if stream is not None and PurePosixPath("/", info.name) == wanted:
                return stream.read()
    raise StackError("find busybox", f"no package in the stack installs {path}")


def busybox_applets(binary: bytes, scratch: Path) -> list[str]:
    """Where this busybox wants its applets (``/bin/ls``, ``/usr/bin/env`` ...): ask it."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".busybox-") as tmp:
        exe = Path(tmp) / "busybox"
        exe.write_bytes(binary)
        exe.chmod(0o755)
        try:
            listed = subprocess.run([exe, "--list-full"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise StackError("list busybox applets", f"running the packaged busybox failed: {exc}") from None
    return sorted("/" + line.strip() for line in listed.splitlines() if line.strip())
