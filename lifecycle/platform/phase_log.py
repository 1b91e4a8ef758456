"""The phase commands' log: ``-log-level`` / ``CNB_LOG_LEVEL`` (debug, info, warn, error; §4).

Info and debug lines go to stdout, warnings to stderr (the spec's outputs table); a level
hides everything below it. ``debug`` adds what ``pybuild --verbose`` adds: the resolved inputs,
how long the phase took, the bytes each image store moved, and a traceback for an unexpected
``OSError``. Buildpack and extension output (``bin/detect``, ``bin/build``) is not the
lifecycle's own log: it is passed through at every level, as the reference lifecycle does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from lifecycle.platform.phase_inputs import LOG_LEVELS

__all__ = ["PhaseLog"]


@dataclass
class PhaseLog:
    level: str = "info"
    out: TextIO | None = None  # None: sys.stdout / sys.stderr at the time of the call
    err: TextIO | None = None

    def enabled(self, level: str) -> bool:
        return LOG_LEVELS.index(level) >= LOG_LEVELS.index(self.level)

    def debug(self, message: str) -> None:
        if self.enabled("debug"):
            print(message, file=self.out or sys.stdout, flush=True)

    def info(self, message: str) -> None:
        if self.enabled("info"):
            print(message, file=self.out or sys.stdout, flush=True)

    def warn(self, message: str) -> None:
        if self.enabled("warn"):
            print(f"Warning: {message}", file=self.err or sys.stderr, flush=True)

    def output(self, message: str) -> None:
        """A line a buildpack or extension printed: shown at every level."""
        print(message, file=self.out or sys.stdout, flush=True)
