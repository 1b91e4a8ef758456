"""The bubblewrap runner: buildpacks run inside the build image's root filesystem.

The extracted rootfs is mounted read-only as ``/``; the app, layers and
platform dirs are bound at ``/workspace``, ``/layers`` and ``/platform``, each
buildpack read-only at ``/cnb/buildpacks/<escaped id>/<version>``. Of ``/layers``, a
buildpack may write only its own dirs (``/layers/<escaped id>`` and its plan file's scratch
dir): the rest is bound read-only, so no buildpack alters another's layers or the
lifecycle's files (``group.toml``, ``plan.toml``). The process runs as
the build image's ``CNB_USER_ID:CNB_GROUP_ID`` in fresh namespaces, sharing the
network unless told not to (DESIGN.md "how buildpacks run").

bwrap maps the build user to the host uid that starts it, in a new user namespace,
and the process keeps no capabilities (``--cap-drop ALL``). Started by a user, files
a buildpack writes belong to that user on the host; started by root, bwrap runs as an
unprivileged host uid instead, never as root, entered by ``nsenter`` into a mount namespace
where the runner staged its sources once (``sandbox_user``). Also: ``--new-session``
(no ``TIOCSTI`` into pybuild's terminal), ``--disable-userns`` (no nested user
namespaces: less kernel to attack) and ``/proc/sys`` bound read-only over itself (bwrap
covers it only where the starting uid could write it; ``--remount-ro`` needs a mount
point there, which an unprivileged bwrap does not make).

Build secrets a request carries are mounted read-only at ``/platform/secrets/<id>`` from memory
(``secret_mounts``); only an empty mount point is made on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.errors import PybuildError
from lifecycle.execution.process import stream_process
from lifecycle.execution.rootfs import MOUNT_FILES
from lifecycle.execution.runner import OutputSink, ProcessRequest, SandboxPaths, Workspace, buildpack_path
from lifecycle.execution.sandbox_user import HostUser, Staging, hand_over, sandbox_host_user
from lifecycle.execution.secret_mounts import bwrap_secret_args, secret_fds

__all__ = ["HOST_CA_BUNDLE", "BwrapRunner", "container_command", "run_container"]

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
# The flags both the runner and ``pybuild run`` use, besides --uid/--gid and the network.
_CONFINE = ["--unshare-all", "--unshare-user", "--disable-userns", "--new-session", "--cap-drop", "ALL"]
_KERNEL_FS = ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev", "--tmpfs", "/tmp"]


@dataclass(frozen=True)
class BwrapRunner:
    rootfs: Path
    uid: int
    gid: int
    network: str = "host"
    ca_bundle: Path | None = HOST_CA_BUNDLE
    host_user: HostUser | None = field(default_factory=sandbox_host_user)
    # One staged mount namespace for every process this runner starts (sandbox_user.Staging).
    staging: Staging = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "staging", Staging(self.host_user))

    def paths(self, workspace: Workspace) -> SandboxPaths:
        return SandboxPaths(
            app="/workspace",
            layers="/layers",
            platform="/platform",
            buildpacks={key: buildpack_path(key) for key in workspace.buildpacks},
        )

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        bwrap = _bwrap("start buildpack")
        if self.host_user is not None:
            hand_over((workspace.app, workspace.layers), self.host_user)
        if request.secrets:
            (workspace.platform / "secrets").mkdir(mode=0o755, exist_ok=True)  # the mount point
        with (
            secret_fds(request.secrets) as fds,
            self.staging.command(self.command(request, workspace, bwrap, fds)) as argv,
        ):
            return stream_process(argv, {"PATH": os.defpath}, None, output, pass_fds=list(fds.values()))

    def close(self) -> None:
        """Let the staged mount namespace go now rather than with this runner."""
        self.staging.close()

    def command(
        self,
        request: ProcessRequest,
        workspace: Workspace,
        bwrap: str = "bwrap",
        fds: dict[str, int] | None = None,
    ) -> list[str]:
        """bwrap's argv for ``request``; started by root, its sources are ``self.staging``'s paths.

        ``fds`` (secret id -> an open fd holding its value) are mounted at ``/platform/secrets``."""
        staging = self.staging
        argv = [bwrap, *self._mounts(workspace, staging, request.writable_layers)]
        argv += bwrap_secret_args(fds or {})
        argv += _confine(self.uid, self.gid)
        argv += _network(self.rootfs, self.network, staging)
        argv += ["--chdir", request.cwd, "--clearenv"]
        for name, value in sorted(request.env.items()):
            argv += ["--setenv", name, value]
        return [*argv, "--", *request.argv]

    def _mounts(self, workspace: Workspace, staging: Staging, writable: tuple[str, ...] | None) -> list[str]:
        args = ["--ro-bind", staging.path(self.rootfs), "/", *_KERNEL_FS]
        args += ["--bind", staging.path(workspace.app), "/workspace"]
        layers = staging.path(workspace.layers)
        if writable is None:
            args += ["--bind", layers, "/layers"]
        else:  # read-only, but for the process's own dirs: no buildpack alters another's layers
            args += ["--ro-bind", layers, "/layers"]
            for rel in writable:
                args += ["--bind", f"{layers}/{_relative(rel)}", f"/layers/{_relative(rel)}"]
        args += ["--ro-bind", staging.path(workspace.platform), "/platform", "--tmpfs", "/cnb/buildpacks"]
        for key, host_dir in sorted(workspace.buildpacks.items()):
            args += ["--ro-bind", staging.path(host_dir), buildpack_path(key)]
        if self.ca_bundle and self.ca_bundle.is_file() and (self.rootfs / "etc/ssl/certs").is_dir():
            args += ["--ro-bind", staging.path(self.ca_bundle), _CA_IN_IMAGE]
        return args


def _relative(rel: str) -> str:
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") for part in parts):
        raise PybuildError("start buildpack", f"writable layers dir {rel!r} is not a plain relative path")
    return rel


def _bwrap(action: str) -> str:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise PybuildError(action, "bubblewrap is not installed (apt-get install bubblewrap)")
    return bwrap


def _confine(uid: int, gid: int) -> list[str]:
    return [*_CONFINE, "--uid", str(uid), "--gid", str(gid), "--die-with-parent"]


def _network(rootfs: Path, network: str, staging: Staging) -> list[str]:
    """Share the host network, with its name resolution, unless ``none``."""
    if network == "none":
        return []
    args = ["--share-net"]
    for name in MOUNT_FILES:
        host = Path("/") / name
        if host.exists() and (rootfs / name).is_file():
            args += ["--ro-bind", staging.path(host), "/" + name]
    return args


def container_command(
    rootfs: Path,
    argv: list[str],
    env: dict[str, str],
    staging: Staging,
    *,
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    network: str = "host",
    bwrap: str = "bwrap",
) -> list[str]:
    """bwrap's argv for ``run_container``: the image's rootfs read-only, only ``/tmp`` writable."""
    args = [bwrap, "--ro-bind", staging.path(rootfs), "/", *_KERNEL_FS, *_confine(uid, gid), "--chdir", cwd]
    args += _network(rootfs, network, staging)
    args.append("--clearenv")
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    return [*args, "--", *argv]


def run_container(
    rootfs: Path,
    argv: list[str],
    env: dict[str, str],
    *,
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    network: str = "host",
) -> int:
    """Run an image's process in its extracted rootfs, output straight to this terminal."""
    bwrap = _bwrap("run image")
    staging = Staging(sandbox_host_user())
    command = container_command(
        rootfs, argv, env, staging, cwd=cwd, uid=uid, gid=gid, network=network, bwrap=bwrap
    )
    try:
        with staging.command(command) as full:
            return subprocess.call(full, env={"PATH": os.defpath})
    finally:
        staging.close()
