"""How a stack build reports what it is doing: a small protocol, a silent default and a rich display.

Steps can run at the same time (mmdebstrap runs, layers compressed in threads), so every call
names its step. ``done`` counts bytes of input read, against ``total`` when that is known.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = ["RichStackProgress", "SilentProgress", "StackProgress", "reporting"]


class StackProgress(Protocol):
    def start(self, step: str, total: int | None = None) -> None:
        """A step began; ``total`` is the bytes it will read, when known."""

    def update(self, step: str, *, done: int | None = None, note: str | None = None) -> None:
        """Bytes read so far, or a short note on what the step is doing now."""

    def finish(self, step: str, *, ok: bool = True) -> None:
        """The step ended, successfully unless ``ok`` is false."""


@contextlib.contextmanager
def reporting(progress: StackProgress, step: str, total: int | None = None) -> Iterator[None]:
    """Report ``step`` as started, then as finished or failed when the block ends."""
    progress.start(step, total)
    try:
        yield
    except BaseException:
        progress.finish(step, ok=False)
        raise
    progress.finish(step)


class SilentProgress:
    """Reports nothing: for library callers and tests."""

    def start(self, step: str, total: int | None = None) -> None:
        pass

    def update(self, step: str, *, done: int | None = None, note: str | None = None) -> None:
        pass

    def finish(self, step: str, *, ok: bool = True) -> None:
        pass


class _BytesColumn(ProgressColumn):
    """Bytes read, only for steps that read bytes (a spinner step has nothing to count)."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("sized"):
            return Text("")
        total = f"/{decimal(int(task.total))}" if task.total else ""
        return Text(f"{decimal(int(task.completed))}{total}", style="progress.download")


class RichStackProgress:
    """One live row per step; the display runs while any step is running.

    The CLI creates one and passes it to ``build_stack``; no setup or teardown is needed.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def _display(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=30),
                _BytesColumn(),
                TimeElapsedColumn(),
                TextColumn("[dim]{task.fields[note]}"),
                console=self._console,
            )
            self._progress.start()
        return self._progress

    def start(self, step: str, total: int | None = None) -> None:
        with self._lock:
            display = self._display()
            self._tasks[step] = display.add_task(step, total=total, note="", sized=total is not None)

    def update(self, step: str, *, done: int | None = None, note: str | None = None) -> None:
        with self._lock:
            if self._progress is None or step not in self._tasks:
                return
            task = self._tasks[step]
            if done is not None:
                self._progress.update(task, completed=done, sized=True)
            if note is not None:
                self._progress.update(task, note=note[:60])

    def finish(self, step: str, *, ok: bool = True) -> None:
        with self._lock:
            if self._progress is None or step not in self._tasks:
                return
            task_id = self._tasks.pop(step)
            task = next(t for t in self._progress.tasks if t.id == task_id)
            end = int(task.total or task.completed or 1)
            self._progress.update(task_id, total=end, completed=end, note="" if ok else "[red]failed")
            self._progress.stop_task(task_id)
            # The first step spans the whole build; once it ends nothing else is coming.
            if not self._tasks or task_id == self._progress.tasks[0].id:
                self._progress.stop()
                self._progress = None
                self._tasks.clear()
