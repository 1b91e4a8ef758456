"""An image's config bytes, re-made from ``docker image inspect`` and ``docker history``.

Docker has no API for the raw config short of ``docker save`` (every layer
streamed). But an image ID *is* the sha256 of the config bytes, so a
re-made config can be checked: pybuild writes canonical JSON (sorted keys, no
spaces, no empty fields; ``lifecycle.oci.models``), and inspect plus history
hold every field it writes. When the hash matches, the re-made bytes are the
image's own ("bytes are truth"). When it does not (an image from
``docker build``, whose config carries fields inspect hides and is not
canonical), the re-made config is still right for what pybuild reads
(labels, env, entrypoint, user, diffIDs, history), but its digest is not the
image ID; the store says which case it is.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from lifecycle.oci.models import canonical_json

__all__ = ["ZERO_TIME", "remade_config"]

# Go's zero time.Time: what docker reports for an absent "created".
ZERO_TIME = "0001-01-01T00:00:00Z"
_ZERO_UNIX = -62135596800


def remade_config(inspect: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> bytes:
    """Canonical config JSON from an inspect document and a history list (newest first, as docker gives)."""
    diff_ids = list((inspect.get("RootFS") or {}).get("Layers") or [])
    config: dict[str, Any] = {
        "architecture": inspect.get("Architecture") or "amd64",
        "os": inspect.get("Os") or "linux",
        "config": _non_empty(inspect.get("Config") or {}),
        "rootfs": {"type": (inspect.get("RootFS") or {}).get("Type") or "layers", "diff_ids": diff_ids},
    }
    optional = {
        "created": inspect.get("Created"),
        "author": inspect.get("Author"),
        "variant": inspect.get("Variant"),
        "os.version": inspect.get("OsVersion"),
    }
    config.update({key: value for key, value in optional.items() if value and value != ZERO_TIME})
    entries = _history(list(reversed(history)), len(diff_ids))
    if entries:
        config["history"] = entries
    return canonical_json(config)


def _non_empty(container_config: Mapping[str, Any]) -> dict[str, Any]:
    """Inspect shows every field of docker's struct; a written config has only those with a value."""
    return {key: value for key, value in container_config.items() if value not in (None, "", False, [], {})}


def _history(entries: list[Mapping[str, Any]], layer_count: int) -> list[dict[str, Any]]:
    """History entries oldest first; ``empty_layer`` where sizes say so.

    Docker reports no ``empty_layer`` flag, only a size per entry (0 for an
    empty one). With one entry per layer, none is empty; otherwise the
    zero-size entries are, when that makes the count right.
    """
    sized = [entry for entry in entries if entry.get("Size")]
    mark_empty = len(entries) != layer_count and len(sized) == layer_count
    return [_history_entry(entry, mark_empty and not entry.get("Size")) for entry in entries]


def _history_entry(entry: Mapping[str, Any], empty_layer: bool) -> dict[str, Any]:
    made: dict[str, Any] = {}
    created = entry.get("Created")
    if isinstance(created, int) and created != _ZERO_UNIX:
        made["created"] = _rfc3339(created)
    if entry.get("CreatedBy"):
        made["created_by"] = entry["CreatedBy"]
    if entry.get("Comment"):
        made["comment"] = entry["Comment"]
    if empty_layer:
        made["empty_layer"] = True
    return made


def _rfc3339(unix_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(unix_seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
