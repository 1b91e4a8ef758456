"""The bubblewrap runner: buildpacks run inside the build image's root filesystem.

The extracted rootfs is mounted read-only as ``/``; the app, layers and
platform dirs are bound at ``/workspace``, ``/layers`` and ``/platform``, each
buildpack read-only at ``/cnb/buildpacks/<escaped id>/<version>``. The process runs as
the build image's ``CNB_USER_ID:CNB_GROUP_ID`` in fresh namespaces, sharing the
network unless told not to (DESIGN.md "how buildpacks run").

The invoking user is mapped to the build user in a new user namespace and
keeps no capabilities, so files a buildpack writes belong to the invoking user
on the host and to ``CNB_USER_ID`` inside; this also works where the pybuild
home is private to the invoking user (``/root`` is 0700).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import PybuildError
from lifecycle.execution.process import stream_process
from lifecycle.execution.rootfs import MOUNT_FILES
from lifecycle.execution.runner import OutputSink, ProcessRequest, SandboxPaths, Workspace, buildpack_path

__all__ = ["HOST_CA_BUNDLE", "BwrapRunner"]

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BwrapRunner:
    rootfs: Path
    uid: int
    gid: int
    network: str = "host"
    ca_bundle: Path | None = HOST_CA_BUNDLE

    def paths(self, workspace: Workspace) -> SandboxPaths:
        return SandboxPaths(
            app="/workspace",
            layers="/layers",
            platform="/platform",
            buildpacks={key: buildpack_path(key) for key in workspace.buildpacks},
        )

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise PybuildError("start buildpack", "bubblewrap is not installed (apt-get install bubblewrap)")
        argv = [bwrap, *self._mounts(workspace), *self._namespaces()]
        argv += ["--chdir", request.cwd, "--clearenv"]
        for name, value in sorted(request.env.items()):
            argv += ["--setenv", name, value]
        return stream_process([*argv, "--", *request.argv], {"PATH": os.defpath}, None, output)

    def _mounts(self, workspace: Workspace) -> list[str]:
        args = ["--ro-bind", str(self.rootfs), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        args += ["--bind", str(workspace.app), "/workspace", "--bind", str(workspace.layers), "/layers"]
        args += ["--ro-bind", str(workspace.platform), "/platform", "--tmpfs", "/cnb/buildpacks"]
        for key, host_dir in sorted(workspace.buildpacks.items()):
            args += ["--ro-bind", str(host_dir), buildpack_path(key)]
        if self.ca_bundle and self.ca_bundle.is_file() and (self.rootfs / "etc/ssl/certs").is_dir():
            args += ["--ro-bind", str(self.ca_bundle), _CA_IN_IMAGE]
        return args

    def _namespaces(self) -> list[str]:
        args = ["--unshare-all", "--uid", str(self.uid), "--gid", str(self.gid), "--die-with-parent"]
        return args + _network(self.rootfs, self.network)


def _network(rootfs: Path, network: str) -> list[str]:
    """Share the host network, with its name resolution, unless ``none``."""
    if network == "none":
        return []
    args = ["--share-net"]
    for name in MOUNT_FILES:
        host = Path("/") / name
        if host.exists() and (rootfs / name).is_file():
            args += ["--ro-bind", str(host), "/" + name]
    return args


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
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise PybuildError("run image", "bubblewrap is not installed (apt-get install bubblewrap)")
    args = [bwrap, "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += ["--unshare-all", "--uid", str(uid), "--gid", str(gid), "--die-with-parent", "--chdir", cwd]
    args += _network(rootfs, network)
    args.append("--clearenv")
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    return subprocess.call([*args, "--", *argv])
