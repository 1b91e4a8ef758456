"""Buildpack SBOM files: checked against ``sbom-formats`` and gathered under ``<layers>/sbom`` (BLD-13).

A buildpack writes ``launch.sbom.<ext>``, ``build.sbom.<ext>`` or
``<layer>.sbom.<ext>`` (``ext`` is ``cdx.json``, ``spdx.json`` or ``syft.json``).
Each goes to ``<layers>/sbom/{launch|build|cache}/<id>/[<layer>/]sbom.<ext>``:
launch when the file or its layer is for launch, else build, and cache as well
for a cache layer. The exporter ships ``sbom/launch`` as one layer (EXP-2).

The files and dirs are the buildpack's and are copied on the host: an SBOM that is a symbolic
link (it would copy a host file into the image) or a symbolic link on the way to a copy (the
copy would overwrite a host file) is refused; a link where a copy goes is replaced, never
written through (`lifecycle.fsutil`).
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.layers import LayerTypes
from lifecycle.fsutil import copy_plain, is_plain_dir, make_dirs

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
    try:
        for source, kind, sub, ext in _copies(bp_dir, allowed, layer_types):
            dest = make_dirs(layers_dir, "sbom", kind, esc, *([sub] if sub else [])) / f"sbom.{ext}"
            copy_plain(source, dest)
            made.append(dest)
    except OSError as exc:
        raise SbomError(str(exc)) from None
    return made


def _copies(
    bp_dir: Path, allowed: set[str], layer_types: dict[str, LayerTypes]
) -> list[tuple[Path, str, str, str]]:
    """``(source, kind, layer, ext)`` for every SBOM copy to make, checking each file's format."""
    if not is_plain_dir(bp_dir):
        return []
    copies = []
    for path in sorted(bp_dir.glob("*.sbom.*")):
        parts = _split(path.name)
        if parts is None:
            continue
        owner, ext = parts
        if MEDIA_TYPES[ext] not in allowed:
            raise SbomError(
                f"{path}: SBOM type {MEDIA_TYPES[ext]} is not in the buildpack's sbom-formats (declare it)"
            )
        copies += [(path, kind, sub, ext) for kind, sub in _destinations(owner, layer_types)]
    return copies


def _destinations(owner: str, layer_types: dict[str, LayerTypes]) -> list[tuple[str, str]]:
    if owner in ("launch", "build"):
        return [(owner, "")]
    types = layer_types.get(owner, LayerTypes())
    kinds = ["launch" if types.launch else "build"] + (["cache"] if types.cache else [])
    return [(kind, owner) for kind in kinds]
