"""What the benchmarks' ``run`` functions share: the common options, a fresh ``PYBUILD_HOME`` and a
scratch directory that go away afterwards, running an action over many items in threads, and
stopping a process a benchmark started."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bench._pybuild import DEFAULT_STACK_CACHE, DEFAULT_WORKDIR, fresh_home, remove_tree

T = TypeVar("T")


def comma_list(text: str) -> list[str]:
    """``a,b,,c`` -> ``["a", "b", "c"]`` (``''`` for none)."""
    return [part for part in text.split(",") if part]


def parser(name: str, doc: str | None, bridge: str | None = None) -> argparse.ArgumentParser:
    """``python -m bench NAME``'s options: ``--workdir``, ``--stack-cache`` and ``--keep``; with
    ``bridge`` (its default), ``--docker`` builders to compare with and the private dockerd's
    ``--bridge``."""
    options = argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc)
    options.add_argument(
        "--workdir", default=str(DEFAULT_WORKDIR), help="fresh homes and scratch directories go here"
    )
    options.add_argument(
        "--stack-cache", default=str(DEFAULT_STACK_CACHE), help="persistent mmdebstrap cache"
    )
    options.add_argument(
        "--keep", action="store_true", help="keep the home and scratch directories (for debugging)"
    )
    if bridge is not None:
        options.add_argument(
            "--docker",
            default=["buildkit", "classic"],
            type=comma_list,
            help="docker builders to compare, comma-separated: buildkit, classic ('' for none)",
        )
        options.add_argument("--bridge", default=bridge, help=f"bridge for the private dockerd ({bridge})")
    return options


@contextlib.contextmanager
def workspace(name: str, options: argparse.Namespace, scratch: str) -> Iterator[tuple[Path, Path]]:
    """A fresh ``PYBUILD_HOME`` (set in os.environ; stack caches from ``--stack-cache``) and a scratch
    directory ``pybuild-bench-SCRATCH-*``, both under ``--workdir``; removed at the end unless
    ``--keep``."""
    workdir = Path(options.workdir)
    home = fresh_home(workdir, name, Path(options.stack_cache))
    directory = Path(tempfile.mkdtemp(prefix=f"pybuild-bench-{scratch}-", dir=workdir))
    try:
        yield home, directory
    finally:
        if not options.keep:
            remove_tree(home)
            shutil.rmtree(directory, ignore_errors=True)


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM to ``proc`` (one this benchmark started), SIGKILL if it has not ended in ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parallel(action: Callable[[str], T], items: list[str], threads: int) -> list[T]:
    """``action`` over ``items`` in order, or in ``threads`` threads; the results in item order."""
    if threads <= 1:
        return [action(item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(action, items))
