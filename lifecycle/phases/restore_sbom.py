"""Layer SBOMs back beside the layers restore brings back (RES-4, BLD-13).

The previous image's SBOM layer (``<layers>/sbom/launch``) and the cache's (``sbom/cache``)
are unpacked to ``<layers>/sbom``; each restored layer's ``<kind>/<id>/<layer>/sbom.<ext>``
is copied to ``<id>/<layer>.sbom.<ext>``, where the buildpack wrote it; then ``<layers>/sbom``
goes, so the build phase gathers SBOMs afresh. Launch- and build-level SBOMs are never restored.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.phases.cache_extract import remove_tree
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
    try:
        staging.mkdir(exist_ok=True)
        for kind, unpack in sorted(sources.items()):
            unpack(staging / kind)
        for buildpack, name in layers:
            _copy_layer_sboms(staging, layers_dir / escape_id(buildpack.buildpack.id), name)
    finally:
        remove_tree(staging)


def _copy_layer_sboms(staging: Path, bp_dir: Path, name: str) -> None:
    for kind in ("launch", "cache"):
        found = staging / kind / bp_dir.name / name
        for path in sorted(found.glob("sbom.*")) if found.is_dir() else ():
            ext = path.name.removeprefix("sbom.")
            dest = bp_dir / f"{name}.sbom.{ext}"
            if ext in MEDIA_TYPES and path.is_file() and not path.is_symlink() and not dest.exists():
                shutil.copyfile(path, dest)
