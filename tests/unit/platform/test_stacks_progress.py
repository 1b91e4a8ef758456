"""The rich progress display: rows per step, bytes for steps that read bytes, and it stops by itself."""

from __future__ import annotations

import io

from rich.console import Console

from lifecycle.platform.stacks import RichStackProgress


def test_rich_progress_shows_each_step_and_stops_when_all_finish() -> None:
    out = io.StringIO()
    progress = RichStackProgress(Console(file=out, width=120, force_terminal=False))
    progress.start("stack tiny")
    progress.start("layer pybuild/run:tiny", total=4_000_000)
    progress.update("layer pybuild/run:tiny", done=2_000_000, note="halfway")
    progress.finish("layer pybuild/run:tiny")
    progress.update("stack tiny", note="storing")
    progress.finish("stack tiny")
    progress.finish("stack tiny")  # a second finish is harmless
    text = out.getvalue()
    assert "stack tiny" in text and "layer pybuild/run:tiny" in text
    assert "4.0 MB" in text
    progress.start("stack again")  # a new display for a new build
    progress.finish("stack again")
    assert "stack again" in out.getvalue()


def test_a_failed_step_is_shown_as_failed_and_ends_the_display() -> None:
    out = io.StringIO()
    progress = RichStackProgress(Console(file=out, width=120, force_terminal=False))
    progress.start("stack tiny")
    progress.start("mmdebstrap run")
    progress.finish("stack tiny", ok=False)  # the build failed while a step was still open
    assert "failed" in out.getvalue()
    progress.update("mmdebstrap run", note="late")  # ignored: that display is gone
    progress.finish("mmdebstrap run")
