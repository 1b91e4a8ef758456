"""Where a process finds its build secrets: ``<platform>/secrets/<id>``, never on disk.

Under bwrap the platform dir is ``/platform``. Each value goes to bwrap in an anonymous
memory file (``memfd``), one per secret and run; bwrap copies it into its own tmpfs and binds
it read-only at ``/platform/secrets/<id>``, mode 0400 and owned by the build user, on a tmpfs
of mode 0500 mounted read-only over ``<platform>/secrets``. That dir is the one thing on disk:
an empty mount point. The memory files pass to bwrap as inherited descriptors, through
``nsenter`` too when pybuild runs as root (it execs bwrap and keeps them); bwrap closes them
before the buildpack starts. Reading a descriptor needs no access to a path, so the
unprivileged sandbox uid reads what root opened. Descriptors rather than files staged on the
sandbox's private tmpfs: they work the same whether bwrap is started by root or by a user,
need no change to the staging, and put a value neither in an argv nor behind a path.

Under the host runner the process sees host paths: for each run the values are written as 0400
files into a fresh 0700 dir on a memory filesystem (``/dev/shm``, else ``$XDG_RUNTIME_DIR``
or ``/run`` when they are tmpfs), ``<platform>/secrets`` is a symlink to it, and both are
removed when the process ends. A pybuild killed mid-run leaves the dir until the next reboot
(memory only). The docker runner mounts no secrets; the platform refuses ``--secret`` there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lifecycle.errors import PybuildError
from lifecycle.execution.secrets import Secrets

__all__ = ["SANDBOX_SECRETS_DIR", "bwrap_secret_args", "host_secrets", "memory_dir", "secret_fds"]

SANDBOX_SECRETS_DIR = "/platform/secrets"
_MEMORY_FILESYSTEMS = {"tmpfs", "ramfs"}


@contextlib.contextmanager
def secret_fds(secrets: Secrets) -> Iterator[dict[str, int]]:
    """A memory file per secret, read from its start, open while the block runs: id -> fd."""
    fds: dict[str, int] = {}
    try:
        for secret in secrets:
            fd = os.memfd_create(f"pybuild-secret-{secret.id}", os.MFD_CLOEXEC)
            fds[secret.id] = fd
            os.write(fd, secret.value)
            os.lseek(fd, 0, os.SEEK_SET)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def bwrap_secret_args(fds: dict[str, int]) -> list[str]:
    """bwrap options that mount each fd's data read-only at ``/platform/secrets/<id>``."""
    if not fds:
        return []
    args = ["--perms", "0500", "--tmpfs", SANDBOX_SECRETS_DIR]
    for secret_id, fd in fds.items():
        args += ["--perms", "0400", "--ro-bind-data", str(fd), f"{SANDBOX_SECRETS_DIR}/{secret_id}"]
    return [*args, "--remount-ro", SANDBOX_SECRETS_DIR]


@contextlib.contextmanager
def host_secrets(platform: Path, secrets: Secrets) -> Iterator[None]:
    """``<platform>/secrets`` -> a private dir in memory holding the values, while the block runs."""
    if not secrets:
        yield
        return
    link = platform / "secrets"
    if link.is_symlink():
        link.unlink()  # left by a killed run: it points at a dir of that run
    private = Path(tempfile.mkdtemp(prefix="pybuild-secrets-", dir=memory_dir()))  # mode 0700
    try:
        for secret in secrets:
            fd = os.open(private / secret.id, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
            with os.fdopen(fd, "wb") as file:
                file.write(secret.value)
        try:
            os.symlink(private, link)
        except FileExistsError:
            raise PybuildError(
                "give buildpacks their secrets", f"{link} exists (remove it: pybuild mounts secrets there)"
            ) from None
        try:
            yield
        finally:
            link.unlink(missing_ok=True)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def memory_dir(candidates: tuple[str, ...] | None = None, mounts: str | None = None) -> str:
    """The first of ``candidates`` on a memory filesystem, by ``/proc/self/mounts``."""
    if candidates is None:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        candidates = ("/dev/shm", *((runtime,) if runtime else ()), "/run")
    table = _mount_types(Path("/proc/self/mounts").read_text() if mounts is None else mounts)
    for candidate in candidates:
        if os.path.isdir(candidate) and table.get(_mount_point(candidate, table)) in _MEMORY_FILESYSTEMS:
            return candidate
    raise PybuildError(
        "give buildpacks their secrets",
        f"none of {', '.join(candidates)} is a tmpfs (mount one at /dev/shm, or use --executor bwrap)",
    )


def _mount_types(mounts: str) -> dict[str, str]:
    """Mount point -> filesystem type; a later mount over the same point wins."""
    table = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            table[_unescape(fields[1])] = fields[2]
    return table


def _unescape(path: str) -> str:
    """``/proc/self/mounts`` writes space, tab, newline and backslash as octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(escaped, plain)
    return path


def _mount_point(path: str, table: dict[str, str]) -> str:
    """The longest mount point that holds ``path`` (after resolving its links)."""
    resolved = os.path.realpath(path)
    return max(
        (point for point in table if resolved == point or resolved.startswith(point.rstrip("/") + "/")),
        key=len,
        default="/",
    )
