"""Image root filesystems, extracted once per layer chain and cached.

Layers are applied in order with OCI whiteouts, as a container runtime applies
them inside a chroot: a symlink met on the way to an entry is followed *inside*
the root filesystem (an absolute target starts at its root, ``..`` stops there),
so no entry, hard link, whiteout or mount point ever reaches a path outside it.
Names with ``..`` are refused, device nodes are skipped, setuid and setgid bits
are dropped (nothing runs setuid under bubblewrap's no_new_privs, and such files
would be a hazard on the host), and every layer must hash to its diffID, since
the cache is keyed by diffIDs. What a layer or an archive unpacks to is capped in
bytes and entries (``lifecycle.oci.limits``), so a layer bomb is refused. The
finished tree appears under its final name in one rename, so a killed extraction
is never used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from lifecycle.errors import DigestMismatch, ImageError, PybuildError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.limits import LayerBudget

__all__ = [
    "MOUNT_FILES",
    "MOUNT_POINTS",
    "DiffIdReader",
    "chain_id",
    "extract_archive",
    "extract_rootfs",
    "resolve_inside",
    "rootfs_cache",
]

# Directories bwrap binds over; a read-only root must already have them.
MOUNT_POINTS = ("workspace", "layers", "platform", "cnb/buildpacks", "tmp", "proc", "dev", "sys")
# Files the runner binds from the host when the network is shared.
MOUNT_FILES = ("etc/resolv.conf", "etc/hosts")
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_MAX_LINKS = 40  # symlinks followed resolving one path, as the kernel's ELOOP limit
_MAX_HEADER = 1 << 20  # a PAX or GNU long-name header is read into memory whole
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_KEPT_MODE = ~(stat.S_ISUID | stat.S_ISGID)
_CHUNK = 1 << 20
# "/" as images have it: bwrap started as an unprivileged uid must enter it (sandbox_user.py).
_ROOT_MODE = 0o755
_PRIVATE_MODE = 0o700  # what mkdtemp made before


def chain_id(layers: Sequence[Layer]) -> str:
    """A name for the filesystem these layers make, in this order (diffIDs only)."""
    return hashlib.sha256("\n".join(layer.diff_id for layer in layers).encode()).hexdigest()


def rootfs_cache(image: Image, cache_dir: Path, *, base_layers: int = 0) -> Path:
    """The extracted root filesystem of ``image``, extracting it on first use.

    With ``base_layers``, the base's own filesystem is cached too and the image's
    starts as a hard-linked copy of it, so apps on one run image share one
    extraction. Extraction never writes into a shared file: a replaced or
    deleted path is unlinked first.
    """
    return _cached(tuple(image.layers), cache_dir, base_layers)


def _cached(layers: tuple[Layer, ...], cache_dir: Path, base_layers: int) -> Path:
    final = cache_dir / chain_id(layers)
    if final.is_dir():
        _traversable(final)
        return final
    seed = _cached(layers[:base_layers], cache_dir, 0) if 0 < base_layers < len(layers) else None
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".extract-"))
    try:
        os.chmod(scratch, _ROOT_MODE)  # a layer's own "./" entry may still set it
        if seed is not None:
            _link_copy(seed, scratch)
        extract_rootfs(layers[base_layers if seed else 0 :], scratch)
        os.replace(scratch, final)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not final.is_dir():
            raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return final


def _traversable(root: Path) -> None:
    """A root filesystem extracted with ``mkdtemp``'s 0700 and no "./" entry: open it to the sandbox uid."""
    if stat.S_IMODE(os.stat(root).st_mode) == _PRIVATE_MODE:
        os.chmod(root, _ROOT_MODE)


def _link_copy(source: Path, dest: Path) -> None:
    """Copy a tree as hard links, keeping owners and modes of directories (GNU cp)."""
    dest.rmdir()
    proc = subprocess.run(["cp", "-a", "--link", str(source), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError("copy cached root filesystem", proc.stderr.strip() or f"cp exited {proc.returncode}")


def extract_rootfs(layers: Sequence[Layer] | Image, dest: Path) -> None:
    """Apply ``layers`` (or an image's layers) in order onto ``dest``, then add mount points."""
    handles = layers.layers if isinstance(layers, Image) else layers
    dest.mkdir(parents=True, exist_ok=True)
    for index, layer in enumerate(handles):
        action = f"extract layer {index} ({layer.digest[:19]})"
        try:
            _apply_layer(layer, dest)
        except DigestMismatch as exc:
            raise DigestMismatch(action, exc.cause) from exc
        except ImageError as exc:
            raise ImageError(action, exc.cause) from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ImageError(action, str(exc)) from exc
    try:
        _add_mount_points(dest)
    except OSError as exc:
        raise ImageError("add mount points", str(exc)) from exc


def _add_mount_points(dest: Path) -> None:
    for mount_point in MOUNT_POINTS:
        _inside(dest, mount_point.split("/"), create=True)
    for mount_file in MOUNT_FILES:
        parent, _, name = mount_file.rpartition("/")
        path = _inside(dest, parent.split("/"), create=True) / name
        if path.is_symlink():
            path.unlink()
        if not path.exists():
            os.close(
                os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            )


class DiffIdReader:
    """The layer stream for tarfile, hashed on the way (the diffID)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        return data

    def diff_id(self) -> str:
        """Read what tarfile left (end blocks, padding), then the digest of everything."""
        while chunk := self._stream.read(_CHUNK):
            self._hash.update(chunk)
        return "sha256:" + self._hash.hexdigest()


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads an extended header into memory whole: refuse one that claims a huge size."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED and self.size > _MAX_HEADER:
            raise tarfile.ReadError(f"an extended header claims {self.size} bytes (limit {_MAX_HEADER})")
        return super()._proc_member(archive)  # type: ignore[misc, no-any-return]


def _apply_layer(layer: Layer, dest: Path) -> None:
    budget = LayerBudget("the layer", "read layer", ImageError)
    with layer.uncompressed() as stream:
        hashed = DiffIdReader(budget.stream(stream))
        with tarfile.open(fileobj=hashed, mode="r|", tarinfo=_BoundedTarInfo) as tar:  # type: ignore[call-overload]
            while (member := tar.next()) is not None:
                tar.members.clear()  # stream mode keeps every header otherwise
                budget.entry(member)
                _apply_member(tar, member, dest)
        actual = hashed.diff_id()
    if actual != layer.diff_id:
        raise DigestMismatch(
            "verify layer", f"its content hashes to {actual}, not its diffID {layer.diff_id}"
        )


def _parts(name: str, what: str) -> list[str]:
    """The components of an entry name; a leading ``/`` is dropped, ``..`` refused."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ImageError("read layer", f"{what} {name!r} has a '..' component (it would leave the root)")
    return parts


def _apply_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    parts = _parts(member.name, "entry")
    if not parts:
        if not member.isdir():
            raise ImageError("read layer", f"entry {member.name!r} names the root but is not a directory")
        tar.extract(member.replace(name=".", deep=False), dest, filter=_keep_owner)
        return
    base = parts[-1]
    if base.startswith(_WHITEOUT):
        _whiteout(dest, parts[:-1], base)
        return
    if member.isdev():
        return
    parent = _inside(dest, parts[:-1], create=True)
    path = parent / base
    _replace_existing(path, member)
    if member.islnk():
        _hard_link(dest, member, path)
        return
    rel = os.path.relpath(path, dest)
    tar.extract(member.replace(name=rel, deep=False), dest, filter=_keep_owner)


def _inside(root: Path, parts: Sequence[str], *, create: bool) -> Path:
    """The real directory ``parts`` names in ``root`` (see `resolve_inside`); ``create`` makes
    missing directories, 0755."""
    return resolve_inside(root, parts, make_dir=(lambda path: os.mkdir(path, 0o755)) if create else None)


def resolve_inside(
    root: Path,
    parts: Sequence[str],
    *,
    make_dir: Callable[[Path], None] | None = None,
    error: type[PybuildError] = ImageError,
    action: str = "read layer",
) -> Path:
    """The real directory ``parts`` names in ``root``, symlinks followed as if ``root`` were ``/``.

    The result has no symlink in it below ``root``. A missing directory is made with
    ``make_dir``; without it, it raises ``FileNotFoundError``. A loop of links or a part that
    is not a directory is ``error(action, ...)``.
    """
    resolved: list[str] = []
    pending = list(parts)
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            del resolved[-1:]
            continue
        here = root.joinpath(*resolved, part)
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            if make_dir is None:
                raise
            make_dir(here)
            mode = stat.S_IFDIR
        if stat.S_ISLNK(mode):
            links += 1
            if links > _MAX_LINKS:
                raise error(action, f"/{'/'.join(parts)}: too many levels of symbolic links")
            target = os.readlink(here)
            if target.startswith("/"):
                resolved = []
            pending[:0] = target.split("/")
        elif stat.S_ISDIR(mode):
            resolved.append(part)
        else:
            raise error(action, f"/{'/'.join(parts)}: /{'/'.join([*resolved, part])} is not a directory")
    return root.joinpath(*resolved)


def _keep_owner(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's ``tar`` filter, but root keeps the image's owners and modes (minus setuid/setgid)."""
    checked = tarfile.tar_filter(member, path)
    if os.geteuid() == 0:
        return checked.replace(uid=member.uid, gid=member.gid, mode=member.mode & _KEPT_MODE, deep=False)
    return checked


def _replace_existing(path: Path, member: tarfile.TarInfo) -> None:
    """A file from an upper layer replaces whatever a lower one put there (never followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        if not member.isdir():
            shutil.rmtree(path)
    else:
        path.unlink()


def _hard_link(dest: Path, member: tarfile.TarInfo, path: Path) -> None:
    """A hard link to a file already in the root filesystem, and only that."""
    parts = _parts(member.linkname, "hard link target")
    try:
        source = _inside(dest, parts[:-1], create=False) / parts[-1] if parts else dest
        regular = stat.S_ISREG(os.lstat(source).st_mode)
    except FileNotFoundError:
        regular = False
    if not regular:
        raise ImageError(
            "read layer", f"hard link {member.name!r} points to {member.linkname!r}, not a file in the image"
        )
    os.link(source, path, follow_symlinks=False)


def _whiteout(dest: Path, parent: Sequence[str], base: str) -> None:
    victim = base[len(_WHITEOUT) :]
    if base != _OPAQUE and victim in ("", ".", ".."):
        raise ImageError("read layer", f"whiteout {'/'.join([*parent, base])!r} names no file")
    try:
        directory = _inside(dest, parent, create=False)
    except FileNotFoundError:
        return  # nothing below to hide
    if base == _OPAQUE:
        for child in list(directory.iterdir()):
            _remove(child)
    else:
        _remove(directory / victim)


def _remove(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    shutil.rmtree(path) if stat.S_ISDIR(mode) else path.unlink()


# -- archives (a .tgz buildpack): no diffID, and nothing in them is ever followed -----------


def extract_archive(stream: BinaryIO, dest: Path) -> None:
    """Extract a tar (compressed or not) into ``dest``, stricter than an image layer.

    Nothing is resolved, not even inside ``dest``: every entry must go through real dirs, a
    symbolic link must be relative and, once everything is written, resolve inside ``dest``
    (a chain of links included), a hard link must name a regular file already extracted, and
    devices and FIFOs are refused. Modes lose setuid, setgid and group/other write bits, and
    owners are not kept (tarfile's ``data`` filter). What it unpacks to is capped as a layer's
    is (``lifecycle.oci.limits``). A refusal is an `ImageError`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    budget = LayerBudget("the archive", "read archive", ImageError)
    try:
        with tarfile.open(fileobj=stream, mode="r|*", tarinfo=_BoundedTarInfo) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every header
                budget.entry(member)
                _archive_member(tar, member, dest)
        _check_links(dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError("read archive", str(exc)) from exc


def _archive_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    parts = _parts(member.name, "entry")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise ImageError("read archive", f"entry {member.name!r} is not a file, dir or link")
    if not parts:
        if not member.isdir():
            raise ImageError("read archive", f"entry {member.name!r} names the root but is not a directory")
        return
    if member.issym() and member.linkname.startswith("/"):
        raise ImageError(
            "read archive", f"symbolic link {member.name!r} points to an absolute path (make it relative)"
        )
    path = _real_dir(dest, parts[:-1], member.name, create=True) / parts[-1]
    _replace_existing(path, member)
    if member.islnk():
        target = _parts(member.linkname, "hard link target")
        source = _real_dir(dest, target[:-1], member.linkname, create=False) / target[-1] if target else dest
        if not stat.S_ISREG(os.lstat(source).st_mode):
            raise ImageError("read archive", f"hard link {member.name!r} does not point to a file in it")
        os.link(source, path, follow_symlinks=False)
        return
    rel = os.path.relpath(path, dest)
    tar.extract(member.replace(name=rel, deep=False), dest, filter="data")


def _real_dir(root: Path, parts: Sequence[str], name: str, *, create: bool) -> Path:
    """``root/parts``, every one a real dir (made when missing with ``create``), never a link."""
    here = root
    for part in parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            if not create:
                raise ImageError(
                    "read archive", f"{name!r}: {here.relative_to(root)} does not exist"
                ) from None
            os.mkdir(here, 0o755)
            continue
        if stat.S_ISLNK(mode):
            raise ImageError(
                "read archive",
                f"{name!r} goes through {here.relative_to(root)}, a symbolic link (never followed)",
            )
        if not stat.S_ISDIR(mode):
            raise ImageError("read archive", f"{name!r}: {here.relative_to(root)} is not a directory")
    return here


def _check_links(root: Path) -> None:
    """Every symbolic link under ``root`` resolves inside it, as the kernel would resolve it."""
    for directory, dirs, files in os.walk(root):
        at = Path(directory).relative_to(root).parts
        for name in [*dirs, *files]:
            path = Path(directory, name)
            if path.is_symlink() and _escapes(root, list(at), os.readlink(path)):
                raise ImageError(
                    "read archive", f"symbolic link {path.relative_to(root)} points outside the archive"
                )


def _escapes(root: Path, at: list[str], target: str) -> bool:
    """Whether ``target``, a link in dir ``at``, leaves ``root`` (links on the way followed)."""
    if target.startswith("/"):
        return True
    resolved, pending, links = at, target.split("/"), 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return True
            resolved = resolved[:-1]
            continue
        here = root.joinpath(*resolved, part)
        if not here.is_symlink():
            resolved = [*resolved, part]  # a dir, a file or nothing: the rest is read as written
            continue
        links += 1
        if links > _MAX_LINKS:
            raise ImageError("read archive", f"{here.relative_to(root)}: too many levels of symbolic links")
        link = os.readlink(here)
        if link.startswith("/"):
            return True
        pending[:0] = link.split("/")
    return False
