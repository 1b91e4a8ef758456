"""The sandbox an extension Dockerfile's ``RUN`` runs in: root, but only inside a user namespace.

When pybuild runs as root, a holder process owns a user namespace that maps
in-image ids ``0..65535`` to the unprivileged host ids ``100000..165535``
(``IdShift``); the working copy of the image's root filesystem is owned by the
shifted ids, so ``RUN apt-get install`` can be root, change owners and drop to
``_apt`` without ever being host root. ``nsenter`` enters that namespace as the
Dockerfile's user and bubblewrap mounts the working copy read-write as ``/``.
The shifted root must be able to reach the copy: under a private directory
(``/root`` is 0700) it goes to a directory of its own in ``/var/tmp``
(``working_dir``).

Without root, bubblewrap maps the invoking user to the requested id alone:
everything in the image then belongs to that one id, and tools that switch
users (apt's ``_apt`` sandbox) must be told not to.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import ExtendError
from lifecycle.execution.rootfs import MOUNT_FILES
from lifecycle.execution.runner import OutputSink

__all__ = ["ID_COUNT", "ID_HOST_BASE", "IdShift", "RunSandbox", "open_sandbox", "working_dir"]

ID_HOST_BASE = 100000
ID_COUNT = 65536
# Docker's default capability set for a container's root.
_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
)  # fmt: skip
_NAMESPACE_WAIT = 5.0
_SHARED_TMP = "/var/tmp"  # sticky and world-traversable on every Linux system


@dataclass(frozen=True)
class IdShift:
    """How in-image ids appear on the host: ``base + id``, or (base None) all as the invoking user."""

    base: int | None = ID_HOST_BASE
    count: int = ID_COUNT

    @classmethod
    def for_this_process(cls) -> IdShift:
        return cls() if os.geteuid() == 0 else cls(None)

    def to_host(self, image_id: int) -> int:
        if self.base is None:
            return os.geteuid()
        if not 0 <= image_id < self.count:
            raise ExtendError(
                "extend image", f"id {image_id} is outside the ids 0..{self.count - 1} an image may use"
            )
        return self.base + image_id

    def to_image(self, host_id: int) -> int:
        """The in-image id of a host owner; ids outside the range (never made by a sandbox) become root."""
        if self.base is None or not self.base <= host_id < self.base + self.count:
            return 0
        return host_id - self.base


@dataclass(frozen=True)
class RunSandbox:
    """Runs commands in one working root filesystem; from ``open_sandbox``."""

    rootfs: Path
    shift: IdShift
    network: str
    namespace: str | None  # /proc/<holder>/ns/user, when pybuild is root

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str,
        uid: int,
        gid: int,
        output: OutputSink,
    ) -> int:
        """Run ``argv`` as ``uid:gid`` (in-image ids) with exactly ``env``; its exit status."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise ExtendError(
                "run Dockerfile RUN", "bubblewrap is not installed (apt-get install bubblewrap)"
            )
        command = [*self._enter(uid, gid), bwrap, *self._bwrap_args(uid, gid), "--chdir", cwd]
        command += ["--clearenv", *(a for item in sorted(env.items()) for a in ("--setenv", *item))]
        return _stream([*command, "--", *argv], output)

    def _enter(self, uid: int, gid: int) -> list[str]:
        if self.namespace is None:
            return []
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise ExtendError("run Dockerfile RUN", "nsenter is not installed (apt-get install util-linux)")
        return [nsenter, f"--user={self.namespace}", "--setuid", str(uid), "--setgid", str(gid), "--"]

    def _bwrap_args(self, uid: int, gid: int) -> list[str]:
        args = ["--bind", str(self.rootfs), "/", "--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--tmpfs", "/tmp"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--die-with-parent", "--new-session"]
        if self.namespace is None:
            args += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
        elif uid == 0:
            args += ["--cap-drop", "ALL", *(a for cap in _CAPS for a in ("--cap-add", cap))]
        if self.network == "none":
            return [*args, "--unshare-net"]
        for name in MOUNT_FILES:
            host = Path("/") / name
            if host.exists() and (self.rootfs / name).is_file() and not (self.rootfs / name).is_symlink():
                args += ["--ro-bind", str(host), "/" + name]
        return args


def _stream(argv: Sequence[str], output: OutputSink) -> int:
    with subprocess.Popen(
        list(argv),
        env={"PATH": os.defpath},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            output(raw.decode("utf-8", errors="replace").rstrip("\n"))
        return proc.wait()


@contextmanager
def working_dir(scratch: Path, shift: IdShift) -> Iterator[Path]:
    """A directory for the working copy that the sandbox's root can reach; removed afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    if shift.base is None or _reachable_by_others(scratch):
        directory = Path(tempfile.mkdtemp(dir=scratch, prefix=".extend-"))
    else:
        directory = Path(tempfile.mkdtemp(dir=_SHARED_TMP, prefix="pybuild-extend-"))
    try:
        if shift.base is not None:
            os.chown(directory, shift.to_host(0), shift.to_host(0))
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _reachable_by_others(path: Path) -> bool:
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in (path.resolve(), *path.resolve().parents))


@contextmanager
def open_sandbox(rootfs: Path, shift: IdShift, *, network: str = "host") -> Iterator[RunSandbox]:
    """A sandbox over ``rootfs`` (already owned by ``shift``'s host ids), open until the block ends."""
    if shift.base is None:
        yield RunSandbox(rootfs, shift, network, None)
        return
    with _user_namespace(shift) as namespace:
        yield RunSandbox(rootfs, shift, network, namespace)


@contextmanager
def _user_namespace(shift: IdShift) -> Iterator[str]:
    """A process parked in a new user namespace whose id maps this process writes (it is root)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ExtendError("start extend sandbox", "unshare is not installed (apt-get install util-linux)")
    holder = subprocess.Popen([unshare, "--user", "--", "sleep", "infinity"], stdin=subprocess.DEVNULL)
    try:
        _wait_for_namespace(holder)
        mapping = f"0 {shift.base} {shift.count}\n"
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{name}").write_text(mapping)
        yield f"/proc/{holder.pid}/ns/user"
    except OSError as exc:
        raise ExtendError("start extend sandbox", f"cannot map ids in a user namespace: {exc}") from exc
    finally:
        holder.kill()
        holder.wait()


def _wait_for_namespace(holder: subprocess.Popen[bytes]) -> None:
    mine = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + _NAMESPACE_WAIT
    while os.readlink(f"/proc/{holder.pid}/ns/user") == mine:
        if holder.poll() is not None or time.monotonic() > deadline:
            raise ExtendError(
                "start extend sandbox", "unshare --user did not start (are user namespaces enabled?)"
            )
        time.sleep(0.005)
