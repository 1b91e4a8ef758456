"""Per-blob upload bars with bytes per second, for registry pushes (rich)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["UploadBars"]


class UploadBars:
    """Implements the registry backend's ``Progress`` protocol: start/advance/done per blob.

    Disabled bars draw nothing and do not import rich (most commands never push).
    """

    def __init__(self, enabled: bool = True) -> None:
        self._bars: Progress | None = None
        if enabled:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=False,
            )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def start(self, key: str, total: int) -> None:
        if self._bars is None:
            return
        with self._lock:
            self._tasks[key] = self._bars.add_task(f"Uploading {key[7:19]}", total=total)

    def advance(self, key: str, n: int) -> None:
        task = self._tasks.get(key)
        if task is not None and self._bars is not None:
            self._bars.advance(task, n)

    def done(self, key: str) -> None:
        task = self._tasks.get(key)
        if task is not None and self._bars is not None:
            self._bars.update(task, description=f"Pushed    {key[7:19]}")

    def __enter__(self) -> UploadBars:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
