"""``pybuild run``: start an image's process under bubblewrap, no daemon needed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from lifecycle.appimage import LIFECYCLE_METADATA, AppImage
from lifecycle.backends.store import pybuild_home
from lifecycle.errors import ConfigError, PybuildError
from lifecycle.execution.bwrap import run_container
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.oci.image import Image
from lifecycle.platform.targets import open_target

__all__ = ["run_image"]


def _user(image: Image) -> tuple[int, int]:
    user = image.config.config.user or "0"
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ConfigError("run image", f"user {user!r} is not numeric (set User to UID:GID)")
    return int(uid), int(gid or uid)


def _base_layers(image: Image) -> int:
    """How many layers the run image contributed, so its extraction is shared (0 if unknown)."""
    try:
        top = json.loads(image.labels.get(LIFECYCLE_METADATA, "{}"))["runImage"]["topLayer"]
        return AppImage(image).base_layer_count(top)
    except (ValueError, KeyError, TypeError, PybuildError):
        return 0


def run_image(
    ref: str,
    *,
    process: str | None = None,
    entrypoint: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    network: str = "host",
) -> int:
    """Run the image's entrypoint (or ``/cnb/process/<process>``, or ``entrypoint``) with ``args``."""
    target = open_target(ref)
    image = target.store.image(target.name)
    config = image.config.config
    rootfs = rootfs_cache(image, pybuild_home() / "cache" / "rootfs", base_layers=_base_layers(image))
    if entrypoint:
        argv = [entrypoint, *args]
    else:
        first = [f"/cnb/process/{process}"] if process else list(config.entrypoint or [])
        argv = [*first, *(args or ([] if process else config.cmd or []))]
    if not argv:
        raise ConfigError("run image", f"{target.display} has no entrypoint or command (pass one after --)")
    uid, gid = _user(image)
    values = {**config.env_dict(), **(env or {})}
    return run_container(
        rootfs, argv, values, cwd=config.working_dir or "/", uid=uid, gid=gid, network=network
    )
