"""Prepare a build's host directories: the app copy and the platform env.

The source is copied (honouring project.toml include/exclude, as pack does) so
buildpacks may write to ``/workspace`` without touching the user's tree.
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


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    """gitignore-like: a pattern matches the path, any parent of it, or its base name."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatchcase(prefix, pattern.strip("/")) or fnmatch.fnmatchcase(parts[-1], pattern)
        for pattern in patterns
        for prefix in prefixes
    )


def copy_app(source: Path, dest: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
    """Copy ``source`` into ``dest`` keeping links and modes: only ``include`` if given, minus ``exclude``."""
    if not source.is_dir():
        raise ConfigError("read app source", f"{source} is not a directory (check --path)")
    excluded = [*exclude, *_ALWAYS_EXCLUDED]
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copystat(source, dest)
    for root, dirs, files in os.walk(source):
        here = Path(root).relative_to(source)
        dirs[:] = [d for d in dirs if not _matches((here / d).as_posix(), excluded)]
        for name in sorted(dirs):
            src = Path(root) / name
            if not include or _matches((here / name).as_posix(), include):
                (dest / here / name).mkdir(parents=True, exist_ok=True)
                shutil.copystat(src, dest / here / name, follow_symlinks=False)
        for name in files:
            relative = (here / name).as_posix()
            if _matches(relative, excluded) or (include and not _matches(relative, include)):
                continue
            (dest / here).mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(root) / name, dest / relative, follow_symlinks=False)


def write_platform_env(platform_dir: Path, env: Mapping[str, str]) -> None:
    """``/platform/env/<NAME>`` files, values verbatim (cnb-spec.md §4)."""
    env_dir = platform_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for name, value in env.items():
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError("set build env", f"{name!r} is not a valid variable name")
        (env_dir / name).write_text(value)
