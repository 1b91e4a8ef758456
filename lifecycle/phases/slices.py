"""App slices: which app files go into which layer (EXP-4).

Globs follow Go's ``filepath.Match`` on paths relative to the app dir: ``*``
and ``?`` never cross a ``/``. A glob that matches a directory takes all of it.
Files taken by an earlier slice are not taken again; the rest form the last layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from lifecycle.oci.tarball import walk_sorted

__all__ = ["glob_matches", "split_slices"]


@lru_cache(maxsize=256)
def _compile(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob_matches(glob: str, relative: str) -> bool:
    """True if ``relative`` (or a directory above it) matches ``glob``."""
    pattern = _compile(glob.lstrip("./") if glob.startswith("./") else glob)
    parts = relative.split("/")
    return any(pattern.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def split_slices(app_dir: Path, slices: Sequence[Sequence[str]]) -> list[set[str]]:
    """For N slices, N+1 sets of relative file paths; the last holds what no slice took."""
    taken: list[set[str]] = [set() for _ in range(len(slices) + 1)]
    for path in walk_sorted(app_dir):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(app_dir).as_posix()
        index = next(
            (n for n, globs in enumerate(slices) if any(glob_matches(g, relative) for g in globs)),
            len(slices),
        )
        taken[index].add(relative)
    return taken
