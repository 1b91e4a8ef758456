"""Start a host process and stream its merged output line by line."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from lifecycle.execution.runner import OutputSink

__all__ = ["stream_process"]


def stream_process(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    output: OutputSink,
    pass_fds: Sequence[int] = (),
) -> int:
    """Run ``argv``; every output line goes to ``output`` as it comes. ``pass_fds`` stay open in it."""
    with subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=tuple(pass_fds),
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            output(raw.decode("utf-8", errors="replace").rstrip("\n"))
        return proc.wait()
