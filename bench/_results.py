"""What every benchmark shares: timing, facts about the run, results JSON and README sections."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"

T = TypeVar("T")


def best_of(repeat: int, action: Callable[[], T]) -> tuple[float, T]:
    """The fastest wall-clock time of ``repeat`` runs, and what the fastest run returned."""
    best: tuple[float, T] | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = action()
        elapsed = time.perf_counter() - start
        if best is None or elapsed < best[0]:
            best = (elapsed, outcome)
    assert best is not None, "repeat must be at least 1"
    return best


def machine() -> dict[str, Any]:
    """Facts that make figures comparable: CPU, cores, Python."""
    model = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def checkout() -> dict[str, Any]:
    """The commit and whether lifecycle/ had local edits (others work in this tree in parallel)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return proc.stdout.strip()

    dirty = git("status", "--porcelain", "--", "lifecycle").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "lifecycle_dirty_files": len(dirty)}


def new_results(inputs: dict[str, Any], app: Path | None = None) -> dict[str, Any]:
    """A benchmark's results as they start: the load now, the machine, the checkout and its inputs
    (with ``app``, the app's directory in this checkout)."""
    return {
        "load_average_at_start": load_average(),
        "machine": machine(),
        "checkout": checkout(),
        "inputs": {"app": str(app.relative_to(REPO)), **inputs} if app else inputs,
    }


def latest_figures(facts: str) -> list[str]:
    """A summary's first lines: its heading and a paragraph that starts with ``facts``."""
    return ["### Latest figures", "", facts]


def run_facts(results: dict[str, Any], dirty: bool = False) -> str:
    """A summary's first words: the machine, the load average at the start and the commit (with
    ``dirty``, how many files under lifecycle/ had local edits)."""
    info, commit = results["machine"], results["checkout"]
    text = (
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}; load average at start "
        f"{' / '.join(map(str, results['load_average_at_start']))} (1/5/15 min); commit {commit['commit']}"
    )
    if dirty:
        text += f" ({commit['lifecycle_dirty_files']} dirty files under lifecycle/)"
    return text


def ratio_table(ratios: dict[str, Any], title: str = "ratio", spec: str = "") -> list[str]:
    """A two-column Markdown table of ``ratios``, each value formatted with ``spec``."""
    return [
        f"| {title} | |",
        "|---|---:|",
        *(f"| {name} | {value:{spec}} |" for name, value in ratios.items()),
    ]


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path


def report(
    name: str, results: dict[str, Any], summary: Callable[[dict[str, Any]], str], show: Iterable[str]
) -> None:
    """Print the ``show`` parts of ``results``, write them to bench/results/NAME.json and replace the
    benchmark's section of bench/README.md with ``summary(results)``."""
    print(json.dumps({key: results[key] for key in show if key in results}, indent=2))
    path = write_results(name, results)
    update_readme(name, summary(results))
    print(f"wrote {path} and bench/README.md")


def update_readme(name: str, section: str) -> None:
    """Replace this benchmark's section of bench/README.md (between its markers), or append it."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{begin}\n{section.strip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)
