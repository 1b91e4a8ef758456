"""The app copy honours project.toml include/exclude like pack, and keeps links."""

from __future__ import annotations

import os
from pathlib import Path

from lifecycle.platform.workspace import copy_app


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir() or p.is_symlink())


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for name in (
        "app.py",
        "lib/util.py",
        "tests/test_app.py",
        ".git/HEAD",
        "docs/a.md",
        "node_modules/x/y.js",
    ):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    os.symlink("app.py", src / "link.py")
    return src


def test_exclude_drops_matching_files_dirs_and_git(tmp_path: Path) -> None:
    copy_app(_source(tmp_path), tmp_path / "out", exclude=("tests", "*.md", "node_modules/"))
    assert _tree(tmp_path / "out") == ["app.py", "lib/util.py", "link.py"]
    assert (tmp_path / "out" / "link.py").is_symlink()


def test_include_keeps_only_matching_paths(tmp_path: Path) -> None:
    copy_app(_source(tmp_path), tmp_path / "out", include=("*.py",))
    assert _tree(tmp_path / "out") == ["app.py", "lib/util.py", "link.py", "tests/test_app.py"]
