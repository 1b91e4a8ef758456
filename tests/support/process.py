"""Lifecycle of a background service process: private directory, start, readiness, stop, cleanup."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STATE_DIR_ENV = "PYBUILD_TEST_STATE_DIR"
_LOG_TAIL_CHARS = 4000


def service_dir(kind: str) -> Path:
    """A fresh directory for one service, under $PYBUILD_TEST_STATE_DIR when `.ci/run` set it."""
    parent = os.environ.get(STATE_DIR_ENV) or None
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=parent))


def start(
    argv: Sequence[str], *, stdout: Path, stderr: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, so a Ctrl-C reaches pytest (which stops it) and not the service."""
    with stdout.open("ab") as out, stderr.open("ab") as err:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
        )


def log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
    except FileNotFoundError:
        return "(no log)"


class ServiceError(RuntimeError):
    pass


def wait_until_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], *, what: str, log: Path, timeout: float = 30
) -> None:
    """Poll `ready` until it holds; fail early with the service's log if the process exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with {proc.returncode} before it was ready:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} not ready after {timeout:.0f} s:\n{log_tail(log)}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """SIGTERM the process we started, then SIGKILL it if it has not exited within `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _mount_points() -> list[Path]:
    with open("/proc/self/mountinfo") as mountinfo:
        # Field 5 is the mount point, with spaces and the like octal-escaped (proc(5)).
        return [Path(line.split()[4].encode().decode("unicode_escape")) for line in mountinfo if line.strip()]


def unmount_below(root: Path) -> None:
    """Detach mounts a stopped daemon left under `root` (dockerd leaves an nsfs at exec-root/netns)."""
    below = [mount for mount in _mount_points() if mount.is_relative_to(root)]
    for mount in sorted(below, key=lambda path: len(path.parts), reverse=True):
        subprocess.run(["umount", "--lazy", os.fspath(mount)], check=True, capture_output=True)


def remove_dir(root: Path) -> None:
    unmount_below(root)
    shutil.rmtree(root)
