"""Figures the reliability tests report (inputs tried, kills survived, images checked, peak RSS).

Tests ``record`` into sections; at the end of the session ``conftest`` merges them into
``bench/results/reliability.json`` under ``ci`` or ``soak`` (``PYBUILD_TEST_SOAK=1``, ``make soak``),
so a CI run never overwrites the soak figures or the other way round.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import threading
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"
SOAK_ENV = "PYBUILD_TEST_SOAK"  # PYBUILD_TEST_*: kept by tests/conftest.py, which clears PYBUILD_*

_figures: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def soak() -> bool:
    return os.environ.get(SOAK_ENV) == "1"


def scaled(ci: int, soak_count: int) -> int:
    """``soak_count`` under ``make soak``, else the CI size."""
    return soak_count if soak() else ci


def record(section: str, key: str, value: Any = 1, *, how: str = "add") -> None:
    """``add`` to a count, keep the ``max``, or ``set`` a value."""
    with _lock:
        figures = _figures.setdefault(section, {})
        if how == "add":
            figures[key] = figures.get(key, 0) + value
        elif how == "max":
            figures[key] = max(figures.get(key, value), value)
        else:
            figures[key] = value


def write(path: Path = RESULTS) -> None:
    """Merge this session's figures into ``path`` (sections not run this time are kept)."""
    if not _figures:
        return
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    mode = "soak" if soak() else "ci"
    run = document.get(mode, {})
    sections = run.setdefault("sections", {})
    for name, figures in _figures.items():
        sections.setdefault(name, {}).update(figures)
    run["updated"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    document[mode] = run
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
