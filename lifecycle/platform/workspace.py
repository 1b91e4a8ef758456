"""Prepare a build's host directories: the app copy, platform env, layers.

The source is copied (honouring project.toml include/exclude) so buildpacks
may write to ``/workspace`` without touching the user's tree.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifecycle.errors import ConfigError

__all__ = ["copy_app", "write_platform_env"]

_ALWAYS_EXCLUDED = (".git",)


def _selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    def hit(patterns: Sequence[str]) -> bool:
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        return any(
            fnmatch.fnmatch(p, pat.strip("/")) or fnmatch.fnmatch(parts[-1], pat)
            for pat in patterns
            for p in prefixes
        )

    if include:
        return hit(include)
    return not hit([*exclude, *_ALWAYS_EXCLUDED])


def copy_app(source: Path, dest: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
    """Copy ``source`` into ``dest`` (created), keeping links and modes, filtered like pack."""
    if not source.is_dir():
        raise ConfigError("read app source", f"{source} is not a directory (check --path)")
    dest.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(source):
        rel_root = Path(root).relative_to(source)
        for name in sorted(dirs):
            rel = (rel_root / name).as_posix()
            src = Path(root) / name
            if not _selected(rel, include, exclude) and not include:
                dirs.remove(name)
            elif src.is_symlink():
                dirs.remove(name)
                if _selected(rel, include, exclude):
                    os.symlink(os.readlink(src), dest / rel)
            else:
                (dest / rel).mkdir(exist_ok=True)
                shutil.copystat(src, dest / rel)
        for name in files:
            rel = (rel_root / name).as_posix()
            if _selected(rel, include, exclude):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, dest / rel, follow_symlinks=False)


def write_platform_env(platform_dir: Path, env: Mapping[str, str]) -> None:
    """``/platform/env/<NAME>`` files, values verbatim (cnb-spec.md §4)."""
    env_dir = platform_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for name, value in env.items():
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError("set build env", f"{name!r} is not a valid variable name")
        (env_dir / name).write_text(value)
