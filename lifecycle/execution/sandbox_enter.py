"""Stage bwrap's sources where an unprivileged uid reaches them, drop to that uid, exec bwrap.

Started by root as ``python -I -S sandbox_enter.py SPEC BWRAP ARGS...`` (``sandbox_user.Staging``),
where SPEC is JSON with ``uid``, ``gid``, ``stage`` and ``sources``. In a new mount namespace,
private so that nothing reaches the host's mount table, a small tmpfs goes over ``stage`` and
source ``i`` is bind-mounted at ``stage/i``; then the process sets its groups, gid and uid
(real, effective and saved, so no capability survives) and becomes bwrap, which pybuild
waits for as its child. The namespace goes away with the sandbox.

The interpreter starts isolated and without site-packages, so this file uses the standard
library only. A failure prints one ``pybuild: cannot ...`` line and exits 125.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys

_CLONE_NEWNS = 0x00020000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_FAILED = 125  # as env(1) and timeout(1) say that they, not the command, failed


class _Failure(Exception):
    pass


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(result: int, action: str) -> None:
    if result != 0:
        raise _Failure(f"{action}: {os.strerror(ctypes.get_errno())}")


def _mount_stage(libc: ctypes.CDLL, stage: str) -> None:
    os.makedirs(stage, 0o755, exist_ok=True)
    st = os.lstat(stage)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
        raise _Failure(f"use {stage}: it is not a directory owned by root (remove it)")
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _check(libc.mount(b"tmpfs", stage.encode(), b"tmpfs", flags, b"mode=0755,size=64k"), f"mount {stage}")


def _bind(libc: ctypes.CDLL, source: str, target: str) -> None:
    if os.path.isdir(source):
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    _check(
        libc.mount(os.fsencode(source), os.fsencode(target), None, _MS_BIND | _MS_REC, None), f"bind {source}"
    )


def _enter(spec: dict[str, object], command: list[str]) -> None:
    uid, gid, stage, sources = spec["uid"], spec["gid"], spec["stage"], spec["sources"]
    if not (isinstance(uid, int) and isinstance(gid, int) and uid > 0 and gid > 0):
        raise _Failure(f"drop to {uid}:{gid}: not an unprivileged uid and gid")
    if not (isinstance(stage, str) and isinstance(sources, list)):
        raise _Failure("read the staging spec: stage must be a path and sources a list")
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWNS), "make a mount namespace")
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make mounts private")
    _mount_stage(libc, stage)
    for index, source in enumerate(sources):
        _bind(libc, str(source), os.path.join(stage, str(index)))
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise _Failure(
            f"drop to {uid}:{gid}: {exc.strerror} (set PYBUILD_SANDBOX_UID/GID to ids this host can use)"
        ) from None
    os.execv(command[0], command)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("pybuild: cannot start the sandbox: usage: sandbox_enter.py SPEC COMMAND...", file=sys.stderr)
        return _FAILED
    try:
        spec = json.loads(argv[1])
        if not isinstance(spec, dict):
            raise _Failure("read the staging spec: it is not a JSON object")
        _enter(spec, argv[2:])
    except (_Failure, OSError, ValueError, KeyError) as exc:
        print(f"pybuild: cannot start the sandbox: {exc}", file=sys.stderr)
    return _FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
