"""Debian root filesystem tarballs made by mmdebstrap, cached by the exact command that made them.

The mirror is the host's own deb822 sources file, passed as mmdebstrap's MIRROR argument, so
the build uses exactly the configured Debian mirror and no host name goes into the command
(ENVIRONMENT.md §1). ``SOURCE_DATE_EPOCH`` makes the tarball reproducible while the mirror's
package set is unchanged. Tarballs are kept under ``$PYBUILD_HOME/cache/stacks/<key>.tar``,
``key`` hashing the arguments, the sources file's content and the epoch, so rebuilding the
images is a read of a cached file; delete the cache to pick up new package versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import StackError
from lifecycle.platform.stack_spec import MmdebstrapSpec, UserSpec

__all__ = ["Bootstrap", "bootstrap", "host_sources"]

_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True)
class Bootstrap:
    """One mmdebstrap run: everything that decides the tarball it makes."""

    options: tuple[str, ...]
    suite: str
    sources: Path
    epoch: int

    @classmethod
    def plan(cls, spec: MmdebstrapSpec, packages: Sequence[str], user: UserSpec, epoch: int) -> Bootstrap:
        options = [
            f"--variant={spec.variant}",
            '--aptopt=Acquire::Languages "none"',
            *(f"--dpkgopt=path-exclude={glob}" for glob in spec.path_exclude),
            *(f"--dpkgopt=path-include={glob}" for glob in spec.path_include),
            # The layer writer adds an empty /dev: device nodes cannot be unpacked rootless.
            "--skip=output/dev",
            *_user_hooks(user),
        ]
        if packages:
            options.append("--include=" + ",".join(packages))
        return cls(tuple(options), spec.suite, host_sources(), epoch)

    @property
    def key(self) -> str:
        parts = [self.options, self.suite, self.sources.read_text(), self.epoch]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    @property
    def command(self) -> str:
        """How the tarball was made, for the image history (the mirror file is named, not copied)."""
        return " ".join(["mmdebstrap", *self.options, self.suite, "rootfs.tar", self.sources.name])


def _user_hooks(user: UserSpec) -> list[str]:
    """Add the non-root user in the chroot; useradd honours SOURCE_DATE_EPOCH in /etc/shadow."""
    useradd = f"useradd -u {user.uid} -g {user.gid} -m -s {user.shell} {user.name}"
    return [
        f'--customize-hook=chroot "$1" groupadd -g {user.gid} {user.name}',
        f'--customize-hook=chroot "$1" {useradd}',
    ]


def host_sources() -> Path:
    """The host's apt sources, in the deb822 form when it has one."""
    for path in _SOURCES:
        if path.is_file():
            return path
    raise StackError("find the Debian mirror", f"none of {', '.join(map(str, _SOURCES))} exists")


def bootstrap(run: Bootstrap, cache: Path, note: Callable[[str], None]) -> Path:
    """The cached tarball for ``run``, made first if missing; ``note`` gets mmdebstrap's progress lines."""
    tarball = cache / f"{run.key}.tar"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{run.key}.{secrets.token_hex(4)}.partial"  # concurrent builds never share one
    argv = ["mmdebstrap", "--format=tar", *run.options, run.suite, str(partial), str(run.sources)]
    try:
        _run(argv, run.epoch, cache / f"{run.key}.log", note)
        partial.replace(tarball)
    finally:
        partial.unlink(missing_ok=True)
    return tarball


def _run(argv: list[str], epoch: int, log: Path, note: Callable[[str], None]) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    last_error = "no error message"
    try:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise StackError("run mmdebstrap", "mmdebstrap not found: apt-get install mmdebstrap") from None
    assert proc.stderr is not None  # asked for with stderr=PIPE
    with proc, log.open("w") as out:
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            out.write(line)
            if line.startswith("I: "):
                note(line[3:].strip())
            elif line.startswith("E: "):
                last_error = line[3:].strip()
    if proc.returncode != 0:
        raise StackError("run mmdebstrap", f"exit {proc.returncode}: {last_error} (full log: {log})")
