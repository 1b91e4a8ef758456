"""Layer SBOMs back beside the layers restore brings back (RES-4, BLD-13).

The previous image's SBOM layer (``<layers>/sbom/launch``) and the cache's (``sbom/cache``)
are unpacked to ``<layers>/sbom``; each restored layer's ``<kind>/<id>/<layer>/sbom.<ext>``
is copied to ``<id>/<layer>.sbom.<ext>``, where the buildpack wrote it; then ``<layers>/sbom``
goes, so the build phase gathers SBOMs afresh. Launch- and build-level SBOMs are never restored.

No symbolic link is followed: not one the unpacked layers hold (a dir of them linking to a host
dir), nor one `bin/detect` left in the layers dir (`<layers>/sbom` is removed and made afresh;
an SBOM is written beside its layer only where nothing, not even a link, is).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.fsutil import UnsafePath, copy_plain, is_plain_dir, make_dirs, remove_tree
from lifecycle.phases.sbom import MEDIA_TYPES

__all__ = ["restore_sboms"]

Unpack = Callable[[Path], None]


def restore_sboms(
    layers_dir: Path, layers: Sequence[tuple[BuildpackDescriptor, str]], sources: dict[str, Unpack]
) -> None:
    """Unpack ``sources`` (``launch``, ``cache``) and copy the SBOMs of ``layers`` into place."""
    if not layers or not sources:
        return
    staging = layers_dir / "sbom"
    remove_tree(staging)
    try:
        make_dirs(layers_dir, "sbom")
        for kind, unpack in sorted(sources.items()):
            unpack(staging / kind)
        for buildpack, name in layers:
            _copy_layer_sboms(staging, layers_dir / escape_id(buildpack.buildpack.id), name)
    finally:
        remove_tree(staging)


def _copy_layer_sboms(staging: Path, bp_dir: Path, name: str) -> None:
    for kind in ("launch", "cache"):
        found = _real_dir(staging, kind, bp_dir.name, name)
        for path in sorted(found.glob("sbom.*")) if found is not None else ():
            ext = path.name.removeprefix("sbom.")
            dest = bp_dir / f"{name}.sbom.{ext}"
            if ext in MEDIA_TYPES and not os.path.lexists(dest):
                try:
                    copy_plain(path, dest)
                except UnsafePath:
                    continue  # a link or special file in the unpacked layer: not an SBOM


def _real_dir(root: Path, *parts: str) -> Path | None:
    """``root/parts`` when every one is a real dir, else None (a link is never entered)."""
    path = root
    for part in parts:
        path = path / part
        try:
            if not is_plain_dir(path):
                return None
        except UnsafePath:
            return None
    return path
