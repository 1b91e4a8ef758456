"""Names with rules: buildpack IDs (GEN-3), layer names (BLD-5) and process types (BLD-10).

Each check raises ValueError with a message that names the value and the fix
(`"app" is reserved (...)`), so it serves pydantic validators and plain callers.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

__all__ = [
    "RESERVED_BUILDPACK_IDS",
    "RESERVED_LAYER_NAMES",
    "BuildpackId",
    "ProcessType",
    "check_buildpack_id",
    "check_layer_name",
    "check_process_type",
    "escape_id",
]

_BUILDPACK_ID = re.compile(r"[A-Za-z0-9./-]+")
_PROCESS_TYPE = re.compile(r"[A-Za-z0-9._-]+")

RESERVED_BUILDPACK_IDS = frozenset({"app", "config", "generated", "sbom"})
"""IDs that would clash with the lifecycle's own dirs under `<layers>` (GEN-3)."""

RESERVED_LAYER_NAMES = frozenset({"build", "launch", "store"})
"""Layer names that would clash with launch.toml, build.toml and store.toml (BLD-5)."""


def _is_dots(name: str) -> bool:
    # "." and ".." pass the character rules but would escape their parent dir on disk.
    return set(name) == {"."}


def check_buildpack_id(buildpack_id: str) -> str:
    """Return `buildpack_id` if it is a valid, unreserved buildpack ID (GEN-3).

    An ID becomes a path (`/cnb/buildpacks/<id>/<version>`, a package's layer): a part that is
    empty, `.` or `..` (`a//b`, `../x`) would name another dir, so it is refused too.
    """
    parts = buildpack_id.split("/")
    if not _BUILDPACK_ID.fullmatch(buildpack_id) or any(not part or _is_dots(part) for part in parts):
        raise ValueError(
            f'"{buildpack_id}" is not a valid buildpack ID (use letters, digits, ".", "/" and "-")'
        )
    if buildpack_id in RESERVED_BUILDPACK_IDS:
        raise ValueError(
            f'"{buildpack_id}" is reserved (choose an ID other than app, config, generated, sbom)'
        )
    return buildpack_id


def escape_id(buildpack_id: str) -> str:
    """The on-disk form of an ID, e.g. `acme/node` -> `acme_node` (GEN-3 [L])."""
    return buildpack_id.replace("/", "_")


def check_layer_name(name: str) -> str:
    """Return `name` if a buildpack may use it as a layer name (BLD-5)."""
    if name in RESERVED_LAYER_NAMES:
        raise ValueError(
            f'layer name "{name}" is reserved (rename the layer: build, launch, store are reserved)'
        )
    if not name or "/" in name or _is_dots(name):
        raise ValueError(f'layer name "{name}" is not a valid dir name (use a plain file name)')
    return name


def check_process_type(process_type: str) -> str:
    """Return `process_type` if it matches `[A-Za-z0-9._-]+` (BLD-10)."""
    if not _PROCESS_TYPE.fullmatch(process_type) or _is_dots(process_type):
        raise ValueError(
            f'"{process_type}" is not a valid process type (use letters, digits, ".", "_" and "-")'
        )
    return process_type


BuildpackId = Annotated[str, AfterValidator(check_buildpack_id)]
ProcessType = Annotated[str, AfterValidator(check_process_type)]
