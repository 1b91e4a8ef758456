"""Host-side file work for an extension Dockerfile: ``COPY``/``ADD``, ``WORKDIR``, user lookups.

Everything is written by pybuild itself into the working copy of the image's
root filesystem, never through a path outside it: destination directories are
resolved inside the root as a container sees them (an absolute symlink starts
at the image's root, ``..`` stops there), a final symlink is replaced rather
than followed, and sources must stay inside the extension's context directory
(symlinks included). New entries get in-image owners through the ``IdShift``.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lifecycle.errors import ExtendError, ImageError
from lifecycle.execution.extend_sandbox import IdShift
from lifecycle.execution.rootfs import extract_archive, resolve_inside

__all__ = ["copy_into", "home_of", "lookup_user", "make_workdir"]


def lookup_user(root: Path, user: str) -> tuple[int, int]:
    """``name-or-uid[:name-or-gid]`` as ids, from the image's /etc/passwd and /etc/group."""
    name, _, group = (user or "0").partition(":")
    passwd = _table(root, "etc/passwd")
    entry = next((row for row in passwd if name in (row[0], row[2])), None)
    if entry is not None:
        uid, gid = int(entry[2]), int(entry[3])
    elif name.isdigit():
        uid, gid = int(name), 0
    else:
        raise ExtendError("apply USER", f"user {name!r} is not in the image's /etc/passwd")
    if group:
        groups = _table(root, "etc/group")
        match = next((row for row in groups if group in (row[0], row[2])), None)
        if match is not None:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise ExtendError("apply USER", f"group {group!r} is not in the image's /etc/group")
    return uid, gid


def home_of(root: Path, uid: int) -> str:
    entry = next((row for row in _table(root, "etc/passwd") if row[2] == str(uid)), None)
    return entry[5] if entry is not None and len(entry) > 5 and entry[5] else "/"


def _table(root: Path, name: str) -> list[list[str]]:
    try:
        text = (_resolve(root, PurePosixPath(name).parent.parts) / PurePosixPath(name).name).read_text()
    except (OSError, UnicodeDecodeError, ExtendError):
        return []
    rows = [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]
    return [
        row
        for row in rows
        if len(row) >= 4 and row[2].isdigit() and (name.endswith("group") or row[3].isdigit())
    ]


def make_workdir(root: Path, path: str, shift: IdShift) -> None:
    _resolve(root, PurePosixPath(path).parts, shift=shift)


def _resolve(root: Path, parts: Sequence[str], *, shift: IdShift | None = None) -> Path:
    """The real directory ``parts`` names inside ``root``; with ``shift``, missing ones are made."""

    def make_dir(path: Path) -> None:
        assert shift is not None
        os.mkdir(path, 0o755)
        os.lchown(path, shift.to_host(0), shift.to_host(0))

    wanted = [part for part in parts if part not in ("", "/", ".")]
    try:
        return resolve_inside(
            root,
            wanted,
            make_dir=make_dir if shift else None,
            error=ExtendError,
            action="resolve path in image",
        )
    except FileNotFoundError as exc:
        missing = Path(exc.filename or "").relative_to(root) if exc.filename else Path(*wanted)
        raise ExtendError("resolve path in image", f"/{missing} does not exist") from None


def copy_into(
    root: Path,
    context: Path,
    sources: Sequence[str],
    dest: str,
    *,
    owner: tuple[int, int],
    mode: int | None,
    shift: IdShift,
    scratch: Path,
    unpack: bool = False,
) -> None:
    """``COPY``/``ADD`` ``sources`` (in ``context``) to ``dest`` (absolute, in the image)."""
    matches = [match for source in sources for match in _matches(context, source)]
    into_dir = dest.endswith("/") or len(matches) > 1
    target = PurePosixPath(dest)
    if not into_dir and target.parts[1:] and _is_dir(root, target):
        into_dir = True
    ids = (shift.to_host(owner[0]), shift.to_host(owner[1]))
    for match in matches:
        if unpack and match.is_file() and tarfile.is_tarfile(match):
            _unpack(root, match, target, (ids, mode), shift, scratch)
        elif match.is_dir():
            _copy_tree(match, _resolve(root, target.parts, shift=shift), ids, mode)
        else:
            where = target if into_dir else target.parent
            name = match.name if into_dir else target.name
            _copy_entry(match, _resolve(root, where.parts, shift=shift) / name, ids, mode)


def _matches(context: Path, source: str) -> list[Path]:
    relative = os.path.normpath(source.lstrip("/") or ".")
    if relative == ".." or relative.startswith("../"):
        raise ExtendError("apply COPY", f"source {source!r} is outside the extension's context {context}")
    found = (
        sorted(glob.glob(glob.escape(str(context)) + "/" + relative)) if relative != "." else [str(context)]
    )
    if not found:
        raise ExtendError("apply COPY", f"source {source!r} is not in the extension's context {context}")
    real_context = os.path.realpath(context)
    for path in found:
        real = os.path.realpath(path)
        if real != real_context and not real.startswith(real_context + os.sep):
            raise ExtendError(
                "apply COPY", f"source {source!r} leads outside the extension's context {context}"
            )
    return [Path(os.path.realpath(path)) for path in found]


def _is_dir(root: Path, target: PurePosixPath) -> bool:
    try:
        parent = _resolve(root, target.parent.parts)
    except ExtendError:
        return False
    return stat.S_ISDIR(os.lstat(parent / target.name).st_mode) if (parent / target.name).exists() else False


def _copy_tree(source: Path, dest: Path, ids: tuple[int, int], mode: int | None) -> None:
    for child in sorted(source.iterdir()):
        _copy_entry(child, dest / child.name, ids, mode)


def _copy_entry(source: Path, dest: Path, ids: tuple[int, int], mode: int | None) -> None:
    st = os.lstat(source)
    existing = _lstat(dest)
    if existing is not None and not (stat.S_ISDIR(existing.st_mode) and stat.S_ISDIR(st.st_mode)):
        shutil.rmtree(dest) if stat.S_ISDIR(existing.st_mode) else dest.unlink()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), dest)
    elif stat.S_ISDIR(st.st_mode):
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            os.mkdir(dest, 0o700)
        _copy_tree(source, dest, ids, mode)
    elif stat.S_ISREG(st.st_mode):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with source.open("rb") as src, os.fdopen(os.open(dest, flags, 0o600), "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        return
    os.lchown(dest, *ids)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dest, mode if mode is not None else stat.S_IMODE(st.st_mode))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _unpack(
    root: Path,
    archive: Path,
    target: PurePosixPath,
    attributes: tuple[tuple[int, int], int | None],
    shift: IdShift,
    scratch: Path,
) -> None:
    """``ADD`` of a local tar archive: unpacked by the hardened extractor, then copied like a tree."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".add-") as unpacked:
        try:
            with archive.open("rb") as stream:
                extract_archive(stream, Path(unpacked))
        except (ImageError, OSError) as exc:
            raise ExtendError("apply ADD", f"cannot unpack {archive.name}: {exc}") from exc
        _copy_tree(Path(unpacked), _resolve(root, target.parts, shift=shift), *attributes)
