"""DESIGN.md's import layering: a lifecycle module imports its own package or packages below it.

Modules are parsed with `ast`, never imported, so every import counts: inside functions and under
``if TYPE_CHECKING:`` too (a type-only import across layers is still a dependency on that layer).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

LIFECYCLE_DIR = Path(__file__).resolve().parents[2] / "lifecycle"
LAYERS = ("cli", "platform", "phases", "execution", "cnb", "appimage", "backends", "oci", "launcher")
# Leaves may be imported by anyone; each may import only the lifecycle modules listed here.
LEAVES = {"api": ("errors",), "env": ("errors",), "errors": (), "fsutil": ()}
ROOT = "lifecycle"  # lifecycle/__init__.py: imports leaves only, so any module may import it
ENTRY_POINTS = {"__main__": "cli"}
BACKENDS_BASE = "base"  # lifecycle/backends/base.py: the one backends module every backend may import
# The local store is an OCI layout with names (DESIGN.md): the one backend built on another.
BUILT_ON = {"store": "layout"}
ORDER = " > ".join(LAYERS)


@dataclass(frozen=True)
class SourceModule:
    name: str
    source: str
    is_package: bool = False

    @property
    def path(self) -> str:
        return self.name.replace(".", "/") + ("/__init__.py" if self.is_package else ".py")


@dataclass(frozen=True)
class Import:
    target: str
    line: int


def modules_under(directory: Path) -> list[SourceModule]:
    modules = []
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules.append(SourceModule(name, path.read_text(), is_package))
    return modules


def imports_of(module: SourceModule, known: frozenset[str]) -> Iterator[Import]:
    """Absolute names of what `module` imports; ``from P import N`` means module P.N when it exists."""
    for node in ast.walk(ast.parse(module.source, filename=module.path)):
        if isinstance(node, ast.Import):
            yield from (Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.module, node.level)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(submodule if submodule in known else base, node.lineno)


def _absolute(module: SourceModule, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, *(name.split(".") if name else [])])


def unit_of(name: str) -> str | None:
    """The layer or leaf a lifecycle module belongs to, or None outside lifecycle."""
    parts = name.split(".")
    if parts[0] != ROOT:
        return None
    return ROOT if len(parts) == 1 else ENTRY_POINTS.get(parts[1], parts[1])


def forbidden(importer: str, target: str) -> str | None:
    """Why `importer` must not import `target`, or None when the import is allowed."""
    source, destination = unit_of(importer), unit_of(target)
    if destination is None:
        return None
    if source == destination:
        return _across_backends(importer, target) if source == "backends" else None
    if source in LEAVES:
        allowed = LEAVES[source]
        return None if destination in allowed else f"leaf `{source}` may import only {list(allowed)}"
    if source == ROOT:
        return None if destination in LEAVES else "the package root may import only leaves"
    if destination in LEAVES or destination == ROOT:
        return None
    if destination not in LAYERS:
        return f"`{destination}` is not a layer in DESIGN.md"
    if source in LAYERS and LAYERS.index(destination) < LAYERS.index(source):
        return f"`{destination}` is above `{source}`"
    return None


def _across_backends(importer: str, target: str) -> str | None:
    own, other = _backend_of(importer), _backend_of(target)
    if own is None or other in (own, BACKENDS_BASE) or (other is not None and BUILT_ON.get(own) == other):
        return None
    return f"a backend may import only lifecycle.backends.{BACKENDS_BASE} among backends"


def _backend_of(name: str) -> str | None:
    """`local` for lifecycle.backends.local[.x]; None for the package itself, which may pick any."""
    parts = name.split(".")
    return parts[2] if len(parts) > 2 else None


def _with_packages(names: Iterable[str]) -> frozenset[str]:
    """The module names and every package above them, even a package with no __init__.py yet."""
    split = [name.split(".") for name in names]
    return frozenset(".".join(parts[:end]) for parts in split for end in range(1, len(parts) + 1))


def violations(modules: Sequence[SourceModule]) -> list[str]:
    known = _with_packages(module.name for module in modules)
    placed = {*LAYERS, *LEAVES, ROOT}
    problems = [
        f"{module.path}: `{unit_of(module.name)}` has no place in DESIGN.md's layers (add it there and here)"
        for module in modules
        if unit_of(module.name) not in placed
    ]
    for module in modules:
        for imported in imports_of(module, known):
            reason = forbidden(module.name, imported.target)
            if reason is not None:
                problems.append(f"{module.path}:{imported.line}: imports {imported.target}: {reason}")
    return problems


def test_lifecycle_imports_flow_downward_only() -> None:
    modules = modules_under(LIFECYCLE_DIR)
    assert any(module.name == "lifecycle.errors" for module in modules), f"not scanned: {LIFECYCLE_DIR}"

    problems = violations(modules)

    assert not problems, f"imports against DESIGN.md's layering ({ORDER}):\n" + "\n".join(problems)


def check(name: str, source: str, *, package: bool = False, others: Sequence[str] = ()) -> list[str]:
    """Violations of one synthetic module, with `others` existing as empty modules beside it."""
    return violations([SourceModule(name, source, package), *(SourceModule(other, "") for other in others)])


@pytest.mark.parametrize(
    ("name", "source", "others", "reason"),
    [
        ("lifecycle.oci.digest", "from lifecycle.cnb import models", (), "`cnb` is above `oci`"),
        ("lifecycle.oci.tar", "from ..phases.build import Builder", (), "`phases` is above `oci`"),
        ("lifecycle.launcher.plan", "import lifecycle.cli.main", (), "`cli` is above `launcher`"),
        ("lifecycle.appimage", "from lifecycle.cnb.labels import Labels", (), "`cnb` is above `appimage`"),
        (
            "lifecycle.oci.image",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lifecycle.appimage import App",
            (),
            "`appimage` is above `oci`",
        ),
        (
            "lifecycle.execution.runner",
            "def run():\n    from lifecycle import platform",
            ("lifecycle.platform.build",),
            "`platform` is above",
        ),
        ("lifecycle.env", "from lifecycle.oci import digest", (), "leaf `env` may import only ['errors']"),
        (
            "lifecycle.errors",
            "from lifecycle import api",
            ("lifecycle.api",),
            "leaf `errors` may import only []",
        ),
        (
            "lifecycle.backends.daemon",
            "from lifecycle.backends import registry",
            ("lifecycle.backends.registry",),
            "a backend",
        ),
        (
            "lifecycle.backends.daemon",
            "from . import registry",
            ("lifecycle.backends.registry",),
            "a backend",
        ),
        ("lifecycle.backends.daemon", "from lifecycle.backends import ImageStore", (), "a backend"),
        ("lifecycle.backends.base", "from .local import LocalStore", (), "a backend"),
        ("lifecycle.cli.main", "from lifecycle.stacks import tiny", (), "`stacks` is not a layer"),
        ("lifecycle.stacks", "import os", (), "`stacks` has no place"),
    ],
)
def test_checker_reports_import_against_layering(
    name: str, source: str, others: Sequence[str], reason: str
) -> None:
    problems = check(name, source, others=others)

    assert len(problems) == 1, problems
    assert reason in problems[0]


def test_checker_reports_file_and_line() -> None:
    problems = check(
        "lifecycle.oci.digest", '"""Doc."""\n\nimport json\nfrom lifecycle.phases import build\n'
    )

    assert problems == ["lifecycle/oci/digest.py:4: imports lifecycle.phases: `phases` is above `oci`"]


def test_checker_holds_the_package_root_to_leaves() -> None:
    problems = check("lifecycle", "from lifecycle.cli import main\nfrom . import errors", package=True)

    assert problems == [
        "lifecycle/__init__.py:1: imports lifecycle.cli: the package root may import only leaves"
    ]


@pytest.mark.parametrize(
    ("name", "source", "others"),
    [
        (
            "lifecycle.cli.main",
            "import click\nfrom lifecycle.platform import build\nfrom lifecycle.errors import E",
            (),
        ),
        ("lifecycle.__main__", "from lifecycle.cli.main import main", ()),
        ("lifecycle.cnb.labels", "from lifecycle.appimage import AppImage", ()),
        (
            "lifecycle.oci.tar",
            "from . import digest\nfrom .digest import sha256\nfrom ..launcher import plan",
            (),
        ),
        (
            "lifecycle.phases.build",
            "from lifecycle import api, env, errors",
            ("lifecycle.api", "lifecycle.env"),
        ),
        (
            "lifecycle.api",
            "from lifecycle.errors import ConfigError\nfrom . import errors",
            ("lifecycle.errors",),
        ),
        ("lifecycle.backends.registry", "from .base import ImageStore\nfrom lifecycle.oci import image", ()),
        (
            "lifecycle.backends.registry.client",
            "from . import auth\nfrom .. import base",
            ("lifecycle.backends.base",),
        ),
        ("lifecycle.launcher.plan", "import lifecycle\nfrom lifecycle import errors", ()),
    ],
)
def test_checker_allows_imports_within_and_below(name: str, source: str, others: Sequence[str]) -> None:
    assert check(name, source, others=others) == []


def test_checker_lets_the_backends_package_pick_any_backend() -> None:
    source = "from .local import LocalStore\nfrom .registry import RegistryStore"

    assert check("lifecycle.backends", source, package=True) == []
