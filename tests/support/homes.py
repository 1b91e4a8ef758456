"""PYBUILD_HOME helpers shared by tests."""

from __future__ import annotations

from pathlib import Path


def use_stack_cache(home: Path, cache: Path) -> None:
    """Point `home`'s stack caches at the session's, so a slow bootstrap runs once per session."""
    (home / "cache").mkdir(parents=True, exist_ok=True)
    for name in ("stacks", "debs"):
        (cache / name).mkdir(exist_ok=True)
        link = home / "cache" / name
        if not link.exists():
            link.symlink_to(cache / name)
