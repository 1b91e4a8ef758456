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
and bwrap resolves every source by path. Rather than open those dirs to the sandbox uid,
each start goes through ``sandbox_enter.py``: as root, in a mount namespace of its own, it
bind-mounts each source onto a tmpfs at ``/run/pybuild-sandbox``, then drops to the sandbox
uid with no supplementary groups and execs bwrap on the staged paths. No mode, ACL or mount
changes on the host; the store, credentials and ``~/.docker`` stay out of reach. The sources
themselves must be readable by others (0755 dirs, 0644 files), as pybuild writes them.

Run as any other user, pybuild starts bwrap as itself, as before.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.errors import ConfigError, PybuildError

__all__ = [
    "DEFAULT_SANDBOX_ID",
    "ENTER_SCRIPT",
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
ENTER_SCRIPT = Path(__file__).with_name("sandbox_enter.py")
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
    mount namespace), so no entry changes during the walk; links are never followed.
    """
    for root in roots:
        for path in _tree(root):
            st = path.lstat()
            if (st.st_uid, st.st_gid) == (user.uid, user.gid):
                continue
            try:
                os.lchown(path, user.uid, user.gid)
            except OSError as exc:
                raise PybuildError(
                    "hand the workspace to the sandbox user",
                    f"{path}: {exc.strerror} "
                    f"(set {SANDBOX_UID_ENV} and {SANDBOX_GID_ENV} to ids this host can use)",
                ) from None


def _tree(root: Path) -> Iterator[Path]:
    yield root
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            yield Path(directory, name)


@dataclass
class Staging:
    """The paths bwrap binds from the host, staged when bwrap runs as ``user`` (see the module doc)."""

    user: HostUser | None
    stage: Path = STAGE_DIR
    sources: list[str] = field(default_factory=list)

    def path(self, source: Path | str) -> str:
        """The path bwrap is given for the host path ``source``."""
        host = os.fspath(source)
        if self.user is None:
            return host
        if host not in self.sources:
            self.sources.append(host)
        return f"{self.stage}/{self.sources.index(host)}"

    def command(self, bwrap_argv: list[str]) -> list[str]:
        """``bwrap_argv`` as is, or behind the root-side launcher that stages and drops privileges."""
        if self.user is None:
            return bwrap_argv
        spec = {"uid": self.user.uid, "gid": self.user.gid, "stage": str(self.stage), "sources": self.sources}
        return [sys.executable, "-I", "-S", str(ENTER_SCRIPT), json.dumps(spec), *bwrap_argv]
