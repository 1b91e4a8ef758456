"""Who bubblewrap runs as on the host, and how it reaches its sources, when pybuild runs as root.

bwrap maps the sandbox's user (``CNB_USER_ID``) to the host uid that starts it. Started by
root, the build user *is* host root to the kernel: without capabilities, but every check made
against a file's owner passes for root's files, among them the sysctls under ``/proc/sys``
(``kernel.core_pattern`` runs a program as root). So when the effective uid is 0, bwrap is
started as an unprivileged host uid instead, and the sandbox still sees ``CNB_USER_ID``.

The uid: ``PYBUILD_SANDBOX_UID`` and ``PYBUILD_SANDBOX_GID``, both 2000000000 by default. A
dedicated id rather than ``nobody``, which NFS and many daemons share: any host process with
the sandbox's uid may signal or trace the sandboxed processes, and owns what they write. The
default lies above the ids useradd gives users (1000-60000), systemd's dynamic users
(61184-65519), the default ``/etc/subuid`` allocations (100000 up), LXD's default map
(1000000-1001000000) and systemd-nspawn's container range (524288-1879048191), and below
2^31 for tools that keep ids signed. Point the variables at a dedicated system account to
see a name in ``ps``; 0 is refused.

Writable dirs (app, layers) are handed to that uid before every run (``lchown`` of each entry
not already its, as the docker runner does for the build user), since the lifecycle writes
into them between runs; root reads, exports and caches them afterwards, with owners set to
``CNB_USER_ID:CNB_GROUP_ID`` in every layer tar as before (EXP-5), and removes them.

Read-only sources (the extracted root filesystem, buildpacks, the platform dir, the CA
bundle, resolv.conf, hosts) often lie below a home only root may enter (``/root`` is 0700),
and bwrap resolves every source by path. Rather than open those dirs to the sandbox uid, a
runner stages them once (``Staging``; ``sandbox_stage.py``): in a mount namespace of its own,
private so that nothing reaches the host's mount table, each source is bind-mounted onto a
tmpfs at ``/run/pybuild-sandbox``, and pybuild keeps that namespace open by a descriptor. Each
start is then ``nsenter --mount=/proc/<pybuild>/fd/<N> --setgid=GID --setuid=UID -- bwrap ...``:
util-linux's nsenter enters the namespace as root, drops the supplementary groups, then sets
gid and uid (as root, setgid/setuid set the real, effective and saved ids, so no capability
survives) and execs bwrap on the staged paths. ``N`` is a close-on-exec copy made for that one
start, so nothing started later inherits the namespace; the secrets' memory files pass through
nsenter to bwrap as inherited descriptors. nsenter does not report a failed setgroups, so where
this process has supplementary groups and its user namespace denies setgroups, the start is
refused. A source that is new, or no longer the file it was (device and inode), is staged in a
fresh namespace before the next start. No process holds a namespace: it goes when its
descriptor closes (``Staging.close``, the runner's garbage collection, or pybuild's exit, even
by a signal), and there is no host mount to undo. No mode, ACL or mount changes on the host;
the store, credentials and ``~/.docker`` stay out of reach. The sources themselves must be
readable by others (0755 dirs, 0644 files), as pybuild writes them.

Measured on 2 CPUs: a start (a ``bin/detect`` that exits at once, through ``BwrapRunner.run``,
median of 20) takes 6.5 ms, as bwrap started directly by root does (6.9 ms), against 23.5 ms
for a Python launcher per start that stages the sources itself; staging takes ~0.5 ms, once.
A no-change rebuild of ``samples/python-http`` spends 0.02 s detecting (was 0.06 s) and
0.07 s building (was 0.10 s; 0.02 s of it hands over the ~1,700 entries the restorer wrote as
root). Handing over an unchanged 20,000-entry tree takes 0.08 s (was 0.17 s).

Run as any other user, pybuild starts bwrap as itself, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.errors import ConfigError, PybuildError

if TYPE_CHECKING:
    from lifecycle.execution.sandbox_stage import StagedNamespace

__all__ = [
    "DEFAULT_SANDBOX_ID",
    "SANDBOX_GID_ENV",
    "SANDBOX_UID_ENV",
    "STAGE_DIR",
    "HostUser",
    "Staging",
    "hand_over",
    "sandbox_host_user",
]

SANDBOX_UID_ENV = "PYBUILD_SANDBOX_UID"
SANDBOX_GID_ENV = "PYBUILD_SANDBOX_GID"
DEFAULT_SANDBOX_ID = 2_000_000_000
STAGE_DIR = Path("/run/pybuild-sandbox")
_MAX_ID = 2**32 - 2  # (uid_t) -1 means "unchanged" to setresuid and chown


@dataclass(frozen=True)
class HostUser:
    """An unprivileged host uid and gid to start bwrap as."""

    uid: int
    gid: int


def sandbox_host_user(environ: Mapping[str, str] | None = None, euid: int | None = None) -> HostUser | None:
    """The host user bwrap runs as: ``None`` (this process's own) unless this process is root."""
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    env = os.environ if environ is None else environ
    return HostUser(_host_id(env, SANDBOX_UID_ENV), _host_id(env, SANDBOX_GID_ENV))


def _host_id(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_SANDBOX_ID
    if not raw.isdigit() or not 0 < int(raw) <= _MAX_ID:
        raise ConfigError(
            "choose the sandbox user",
            f"{name}={raw!r} is not an unprivileged host id (set 1 to {_MAX_ID}, or unset it "
            f"for {DEFAULT_SANDBOX_ID})",
        )
    return int(raw)


def hand_over(roots: Iterable[Path], user: HostUser) -> None:
    """Give every entry of ``roots`` to ``user``, so bwrap started as it can write them.

    Nothing else runs as ``user`` where it could see these trees (each sandbox has its own
    mount namespace), so no entry changes during the walk; links are never followed. One
    ``lstat`` per entry (from ``scandir``), an ``lchown`` only where the owner differs.
    """
    owner = (user.uid, user.gid)
    for root in roots:
        top = os.fspath(root)
        _give(top, os.lstat(top), owner)
        pending = [top]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        _give(entry.path, entry.stat(follow_symlinks=False), owner)
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
            except OSError as exc:
                raise PybuildError(
                    "hand the workspace to the sandbox user", f"{exc.filename or directory}: {exc.strerror}"
                ) from None


def _give(path: str, st: os.stat_result, owner: tuple[int, int]) -> None:
    if (st.st_uid, st.st_gid) == owner:
        return
    try:
        os.lchown(path, *owner)
    except OSError as exc:
        raise PybuildError(
            "hand the workspace to the sandbox user",
            f"{path}: {exc.strerror} (set {SANDBOX_UID_ENV} and {SANDBOX_GID_ENV} to ids this host can use)",
        ) from None


class Staging:
    """The paths bwrap binds from the host, staged when bwrap runs as ``user`` (see the module doc).

    ``path`` numbers each source once, for the life of this object; ``command`` gives the argv
    that starts bwrap in the namespace holding them, staging (again) only when a source is new or
    is no longer the file it was. Safe to share between threads; ``close`` (or garbage collection,
    or the end of this process) lets the namespace go."""

    def __init__(self, user: HostUser | None, stage: Path = STAGE_DIR) -> None:
        self.user = user
        self.stage = stage
        self.sources: list[str] = []
        self._namespace: _Namespace | None = None
        self._lock = threading.Lock()

    def path(self, source: Path | str) -> str:
        """The path bwrap is given for the host path ``source``."""
        host = os.fspath(source)
        if self.user is None:
            return host
        with self._lock:
            if host not in self.sources:
                self.sources.append(host)
            return f"{self.stage}/{self.sources.index(host)}"

    @contextlib.contextmanager
    def command(self, bwrap_argv: list[str]) -> Iterator[list[str]]:
        """``bwrap_argv`` as is, or behind ``nsenter`` into the staged namespace, dropping
        supplementary groups, gid and uid there; the argv is valid while the block runs."""
        if self.user is None:
            yield bwrap_argv
            return
        prefix = f"{self.stage}/"
        named = {
            int(arg[len(prefix) :])
            for arg in bwrap_argv
            if arg.startswith(prefix) and arg[len(prefix) :].isdigit()
        }
        with self._lock:
            namespace = self._current(named)
            # This start's own descriptor: a restage by another thread closes the shared one.
            fd = fcntl.fcntl(namespace.fd, fcntl.F_DUPFD_CLOEXEC, 3)
        try:
            yield [
                _nsenter(),
                f"--mount=/proc/{os.getpid()}/fd/{fd}",
                f"--setgid={self.user.gid}",
                f"--setuid={self.user.uid}",
                "--",
                *bwrap_argv,
            ]
        finally:
            os.close(fd)

    def close(self) -> None:
        """Let the staged namespace go now."""
        with self._lock:
            if self._namespace is not None:
                self._namespace.close()
                self._namespace = None

    def _current(self, named: set[int]) -> _Namespace:
        """A namespace holding every source that exists; those ``named`` must."""
        identities = [_identity(source, index in named) for index, source in enumerate(self.sources)]
        namespace = self._namespace
        if namespace is not None and namespace.identities == identities:
            return namespace
        if namespace is not None:
            namespace.close()
            self._namespace = None
        _check_groups_can_be_dropped()
        from lifecycle.execution.sandbox_stage import stage_namespace  # ctypes: only when root

        present = [
            source if identity else None for source, identity in zip(self.sources, identities, strict=True)
        ]
        self._namespace = _Namespace(stage_namespace(self.stage, present))
        return self._namespace


class _Namespace:
    """A staged namespace this object owns: its descriptor closes with it."""

    def __init__(self, staged: StagedNamespace) -> None:
        self.fd = staged.fd
        self.identities = staged.identities
        self._finalizer = weakref.finalize(self, os.close, staged.fd)

    def close(self) -> None:
        self._finalizer()


def _identity(source: str, required: bool) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``source``, links followed as mount(2) does; ``None`` if missing."""
    try:
        st = os.stat(source)
    except OSError as exc:
        if required:
            raise PybuildError("start the sandbox", f"{source}: {exc.strerror}") from None
        return None
    return st.st_dev, st.st_ino


def _check_groups_can_be_dropped(status: Path = Path("/proc/self/setgroups")) -> None:
    """nsenter drops supplementary groups without reporting a failure: make sure it cannot fail.

    setgroups(2) fails for root only where the user namespace denies it (``setgroups`` reads
    ``deny``); without ``CAP_SETGID`` nsenter's setgid fails too, and that it reports."""
    if not os.getgroups():
        return
    try:
        denied = status.read_text().strip() == "deny"
    except OSError:
        denied = False  # before Linux 3.19: setgroups is never denied
    if denied:
        raise PybuildError(
            "start the sandbox",
            f"{status} says deny, so the sandbox user would keep this process's groups "
            f"{os.getgroups()} (run pybuild without supplementary groups, or where setgroups is allowed)",
        )


@functools.cache
def _nsenter() -> str:
    found = shutil.which("nsenter")
    if found is None:
        raise PybuildError("start the sandbox", "nsenter is not installed (apt-get install util-linux)")
    return found
