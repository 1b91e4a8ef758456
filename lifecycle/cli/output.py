"""Console output: pack-style phase headers, levels, live progress.

Only the CLI prints; everything below it reports through a ``Logger``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Logger"]


@dataclass
class Logger:
    """Levels: 0 quiet (errors and results), 1 normal, 2 verbose."""

    level: int = 1
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    def phase(self, name: str) -> None:
        """``===> DETECTING``, as pack prints it."""
        if self.level >= 1:
            print(f"===> {name.upper()}", file=self.out, flush=True)

    def info(self, message: str) -> None:
        if self.level >= 1:
            print(message, file=self.out, flush=True)

    def debug(self, message: str) -> None:
        if self.level >= 2:
            print(message, file=self.out, flush=True)

    def warn(self, message: str) -> None:
        print(f"Warning: {message}", file=self.err, flush=True)

    def result(self, message: str) -> None:
        """Printed even with --quiet: what the command produced."""
        print(message, file=self.out, flush=True)

    def error(self, message: str) -> None:
        print(f"ERROR: {message}", file=self.err, flush=True)
