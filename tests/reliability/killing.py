"""Run the CLI and SIGKILL it at a chosen moment; check what it leaves behind.

A moment is a delay from the start, or a delay after a line of output (a phase header such as
``===> EXPORTING``), so kills land both at random and inside the phase that writes. The whole
process group goes (bwrap children too, which also have ``--die-with-parent``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from support.cli import ROOT

from lifecycle.backends.layout import Layout
from lifecycle.backends.registry import RegistryStore
from lifecycle.oci.validate import validate

PHASES = ("===> DETECTING", "===> RESTORING", "===> BUILDING", "===> EXPORTING")


@dataclass(frozen=True)
class Moment:
    delay: float
    after: str | None = None  # a line of output to wait for first

    def __str__(self) -> str:
        return f"{self.delay:.2f}s after {self.after or 'start'}"


@dataclass
class Run:
    argv: list[str]
    moment: Moment
    killed: bool
    returncode: int
    output: str = field(repr=False)


def random_moment(rng: random.Random, duration: float, markers: tuple[str, ...] = ()) -> Moment:
    """At a random time of a normal run (past interpreter start), or, half the time when the
    command prints ``markers``, just after one of them."""
    if markers and rng.random() < 0.5:
        return Moment(rng.uniform(0.0, 0.15), rng.choice(markers))
    return Moment(rng.uniform(0.25 * duration, 0.85 * duration))


def pybuild_killed(args: Iterable[str], moment: Moment, env: dict[str, str] | None = None) -> Run:
    """Start ``pybuild ARGS`` and SIGKILL its process group at ``moment`` (unless it ended first)."""
    argv = [sys.executable, "-m", "lifecycle", *args]
    lines: list[str] = []
    seen = threading.Event()
    with subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if moment.after and line.startswith(moment.after):
                    seen.set()
            seen.set()  # ended without the marker: nothing left to kill

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if moment.after:
            seen.wait(timeout=180)
        time.sleep(moment.delay)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        returncode = proc.wait(timeout=60)
        reader.join(timeout=10)
    return Run(argv, moment, killed, returncode, "".join(lines))


def check_store(home: Path) -> int:
    """Every tag of the local store validates (every digest recomputed); the number checked."""
    layout = Layout(home / "store")
    tags = layout.tags()
    for tag in tags:
        validate(layout.image(tag))
    return len(tags)


def check_registry(host: str, repository: str) -> int:
    """Every tag of ``repository`` on ``host`` pulls and validates; the number checked."""
    with RegistryStore(host) as store:
        refs = store.tags(repository)
        for ref in refs:
            validate(store.image(ref))
    return len(refs)
