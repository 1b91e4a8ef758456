"""Image root filesystems, extracted once per layer chain and cached.

Layers are applied in order with OCI whiteouts; entries that would land
outside the target (``..``, absolute links) are refused by tarfile's ``tar``
filter, and device nodes are skipped. The finished tree appears under its
final name in one rename, so a killed extraction is never used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lifecycle.errors import ImageError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer

__all__ = ["MOUNT_FILES", "MOUNT_POINTS", "chain_id", "extract_rootfs", "rootfs_cache"]

# Directories bwrap binds over; a read-only root must already have them.
MOUNT_POINTS = ("workspace", "layers", "platform", "cnb/buildpacks", "tmp", "proc", "dev", "sys")
# Files the runner binds from the host when the network is shared.
MOUNT_FILES = ("etc/resolv.conf", "etc/hosts")
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


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
        return final
    seed = _cached(layers[:base_layers], cache_dir, 0) if 0 < base_layers < len(layers) else None
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".extract-"))
    try:
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


def _link_copy(source: Path, dest: Path) -> None:
    """Copy a tree as hard links, keeping owners and modes of directories (GNU cp)."""
    dest.rmdir()
    proc = subprocess.run(["cp", "-a", "--link", str(source), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError("copy cached root filesystem", proc.stderr.strip() or f"cp exited {proc.returncode}")


def extract_rootfs(layers: Sequence[Layer] | Image, dest: Path) -> None:
    """Apply ``layers`` (or an image's layers) in order onto ``dest``, then add mount points."""
    handles = layers.layers if isinstance(layers, Image) else layers
    for index, layer in enumerate(handles):
        try:
            _apply_layer(layer, dest)
        except (tarfile.TarError, OSError) as exc:
            raise ImageError(f"extract layer {index} ({layer.digest[:19]})", str(exc)) from exc
    for mount_point in MOUNT_POINTS:
        (dest / mount_point).mkdir(parents=True, exist_ok=True)
    for mount_file in MOUNT_FILES:
        path = dest / mount_file
        if path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def _apply_layer(layer: Layer, dest: Path) -> None:
    with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name.lstrip("/").removeprefix("./")
            base = os.path.basename(name)
            if base.startswith(_WHITEOUT):
                _whiteout(dest, os.path.dirname(name), base)
            elif member.isdev():
                continue
            else:
                _replace_existing(dest / name, member)
                tar.extract(member, dest, filter=_keep_owner)


def _keep_owner(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's ``tar`` filter, but root keeps the image's owners and modes."""
    checked = tarfile.tar_filter(member, path)
    if os.geteuid() == 0:
        return checked.replace(uid=member.uid, gid=member.gid, mode=member.mode, deep=False)
    return checked


def _replace_existing(path: Path, member: tarfile.TarInfo) -> None:
    """A file from an upper layer replaces whatever a lower one put there."""
    if path.is_symlink() or (path.exists() and not (path.is_dir() and member.isdir())):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _whiteout(dest: Path, parent: str, base: str) -> None:
    directory = dest / parent
    if not directory.resolve().is_relative_to(dest.resolve()):
        raise ImageError("apply whiteout", f"{parent}/{base} points outside the root filesystem")
    if base == _OPAQUE:
        if directory.is_dir():
            for child in directory.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        return
    victim = directory / base[len(_WHITEOUT) :]
    if victim.is_dir() and not victim.is_symlink():
        shutil.rmtree(victim)
    elif victim.exists() or victim.is_symlink():
        victim.unlink()
