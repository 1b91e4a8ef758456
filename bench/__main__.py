"""Run benchmarks: ``python -m bench [NAME ...] [-- OPTIONS]``; no NAME runs every benchmark.

A benchmark is any public module of this package with a ``run(argv: list[str]) -> None``;
adding ``bench/build.py`` with such a function is all it takes to add one.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

Benchmark = Callable[[list[str]], None]


def benchmarks() -> dict[str, Benchmark]:
    """Every public module of this package that has a ``run`` function, by name."""
    found: dict[str, Benchmark] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("_"):
            continue
        run = getattr(importlib.import_module(f"bench.{module.name}"), "run", None)
        if callable(run):
            found[module.name] = run
    return found


def main(argv: list[str]) -> int:
    names, options = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    available = benchmarks()
    if any(name in ("-h", "--help") for name in names):
        print(__doc__)
        print("benchmarks:", ", ".join(sorted(available)))
        return 0
    unknown = [name for name in names if name not in available]
    if unknown:
        print(
            f"unknown benchmark {', '.join(unknown)}; known: {', '.join(sorted(available))}", file=sys.stderr
        )
        return 2
    for name in names or sorted(available):
        print(f"== {name}", flush=True)
        available[name](options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
