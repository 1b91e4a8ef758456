"""Buildpack SBOM files: checked against ``sbom-formats`` and gathered under ``<layers>/sbom`` (BLD-13).

A buildpack writes ``launch.sbom.<ext>``, ``build.sbom.<ext>`` or
``<layer>.sbom.<ext>`` (``ext`` is ``cdx.json``, ``spdx.json`` or ``syft.json``).
Each goes to ``<layers>/sbom/{launch|build|cache}/<id>/[<layer>/]sbom.<ext>``:
launch when the file or its layer is for launch, else build, and cache as well
for a cache layer. The exporter ships ``sbom/launch`` as one layer (EXP-2).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.layers import LayerTypes

__all__ = ["MEDIA_TYPES", "SbomError", "collect_sbom"]

MEDIA_TYPES = {
    "cdx.json": "application/vnd.cyclonedx+json",
    "spdx.json": "application/spdx+json",
    "syft.json": "application/vnd.syft+json",
}


class SbomError(ValueError):
    """An SBOM file in a format the buildpack did not declare."""


def _split(name: str) -> tuple[str, str] | None:
    for ext in MEDIA_TYPES:
        suffix = f".sbom.{ext}"
        if name.endswith(suffix):
            return name[: -len(suffix)], ext
    return None


def collect_sbom(
    bp_dir: Path, layers_dir: Path, buildpack: BuildpackDescriptor, layer_types: dict[str, LayerTypes]
) -> list[Path]:
    """Copy this buildpack's SBOM files into ``<layers>/sbom``; the copies made."""
    allowed = set(buildpack.buildpack.sbom_formats)
    esc = escape_id(buildpack.buildpack.id)
    made: list[Path] = []
    for path in sorted(bp_dir.glob("*.sbom.*")):
        parts = _split(path.name)
        if parts is None:
            continue
        owner, ext = parts
        if MEDIA_TYPES[ext] not in allowed:
            raise SbomError(
                f"{path}: SBOM type {MEDIA_TYPES[ext]} is not in the buildpack's sbom-formats (declare it)"
            )
        for kind, sub in _destinations(owner, layer_types):
            dest = layers_dir / "sbom" / kind / esc / sub / f"sbom.{ext}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            made.append(dest)
    return made


def _destinations(owner: str, layer_types: dict[str, LayerTypes]) -> list[tuple[str, str]]:
    if owner in ("launch", "build"):
        return [(owner, "")]
    types = layer_types.get(owner, LayerTypes())
    kinds = ["launch" if types.launch else "build"] + (["cache"] if types.cache else [])
    return [(kind, owner) for kind in kinds]
