"""The docker runner: each buildpack process runs in a container of the build image.

The same sandbox as the bwrap runner (DESIGN.md "how buildpacks run"): the
build image's filesystem read-only as ``/`` with a tmpfs ``/tmp``; the app,
layers and platform dirs bound at ``/workspace``, ``/layers`` (both writable)
and ``/platform`` (read-only); each buildpack read-only at
``/cnb/buildpacks/<escaped id>/<version>``; the host CA bundle over
``/etc/ssl/certs/ca-certificates.crt`` when the image has ``/etc/ssl/certs``;
user ``CNB_USER_ID:CNB_GROUP_ID``; ``--network host`` (the default, which
also gives the host's name resolution) or ``none``; an init process as PID 1
(bwrap's ``--unshare-pid`` gives one too). The build image is loaded into the
daemon from our ``Image`` when the daemon lacks it (only its missing layers
move, see ``lifecycle.backends.daemon``). Containers are removed afterwards,
also when the run is interrupted.

File ownership. Under bwrap the build user is mapped to the invoking user, or
to the unprivileged sandbox uid when pybuild runs as root
(``lifecycle.execution.sandbox_user``). A container's user is a real uid on
the host (docker does no user-namespace mapping by default), so the writable
dirs must belong to the build user before each run, and what the buildpack
writes stays owned by it on the host:
- pybuild running as root (as here): the app and layers trees are handed to
  ``CNB_USER_ID:CNB_GROUP_ID`` before each run (``lchown`` of every entry not
  already theirs; modes are not touched, since the exporter keeps them and
  normalises owners anyway, though the kernel drops set-user-ID bits on a
  chown). Root reads and removes them afterwards.
- pybuild running as the build user's uid: nothing to do.
- any other user: refused with a clear error, since the container could not
  write the workspace and pybuild could not remove what it wrote.
The read-only dirs (platform, buildpacks) must be readable by "others" (0755
dirs, 0644 files), which is what pybuild writes.

Differences from bwrap that buildpacks can see: docker adds ``HOSTNAME``,
sets ``HOME`` from ``/etc/passwd`` when the request has none, and keeps image
env vars the request does not override (the executor passes the build
image's env anyway). The daemon must share this machine's filesystem, since
binds name host paths.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.types import Mount

from lifecycle.backends.daemon import DaemonStore, is_local_host
from lifecycle.errors import PybuildError
from lifecycle.execution.bwrap import HOST_CA_BUNDLE
from lifecycle.execution.runner import OutputSink, ProcessRequest, SandboxPaths, Workspace, buildpack_path
from lifecycle.oci.image import Image

__all__ = ["DockerRunner", "hand_over"]

_CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
_CERTS_DIR = "/etc/ssl/certs"
_LABEL = "io.pybuild.runner"


@dataclass
class DockerRunner:
    """Runs requests in containers of ``build_image`` in the daemon of ``store``."""

    store: DaemonStore
    build_image: Image
    uid: int
    gid: int
    network: str = "host"
    ca_bundle: Path | None = HOST_CA_BUNDLE
    image_tags: tuple[str, ...] = ()
    init: bool = True
    _image_id: str | None = field(default=None, init=False, repr=False)
    _has_certs_dir: bool | None = field(default=None, init=False, repr=False)

    def paths(self, workspace: Workspace) -> SandboxPaths:
        return SandboxPaths(
            app="/workspace",
            layers="/layers",
            platform="/platform",
            buildpacks={key: _buildpack_dir(key) for key in workspace.buildpacks},
        )

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        """Run ``request`` in a fresh container; output lines go to ``output`` as they come."""
        image_id = self.prepare()
        hand_over(workspace, self.uid, self.gid)
        api = self.store.client.api
        with self.store.errors("create build container"):
            container = api.create_container(**self._container_config(image_id, request, workspace))["Id"]
        try:
            with self.store.errors("run build container"):
                attached = api.attach(container, stdout=True, stderr=True, stream=True, logs=True)
                try:
                    api.start(container)
                    _stream_lines(attached, output)
                finally:
                    _close_attached(attached)
                return int(api.wait(container)["StatusCode"])
        finally:
            with self.store.errors("remove build container"):
                api.remove_container(container, force=True)

    def prepare(self) -> str:
        """Load the build image into the daemon if it lacks it; returns its image ID."""
        if self._image_id is None:
            if not is_local_host(self.store.host):
                raise PybuildError(
                    "run buildpacks in docker",
                    f"the daemon at {self.store.host} is not on this machine; binds need a local daemon",
                )
            self._image_id = self.store.write(self.build_image, list(self.image_tags))
        return self._image_id

    def _container_config(
        self, image_id: str, request: ProcessRequest, workspace: Workspace
    ) -> dict[str, Any]:
        host_config = self.store.client.api.create_host_config(
            mounts=self._mounts(image_id, workspace),
            network_mode=self.network,
            read_only=True,
            tmpfs={"/tmp": "mode=1777"},
            init=self.init,
        )
        return {
            "image": image_id,
            "entrypoint": request.argv[:1],
            "command": request.argv[1:],
            "environment": [f"{name}={value}" for name, value in sorted(request.env.items())],
            "working_dir": request.cwd,
            "user": f"{self.uid}:{self.gid}",
            "labels": {_LABEL: "docker"},
            "host_config": host_config,
            "use_config_proxy": False,  # no proxy env from ~/.docker/config.json: same env as bwrap
        }

    def _mounts(self, image_id: str, workspace: Workspace) -> list[Mount]:
        mounts = [
            _bind(workspace.app, "/workspace"),
            _bind(workspace.layers, "/layers"),
            _bind(workspace.platform, "/platform", read_only=True),
        ]
        for key, host_dir in sorted(workspace.buildpacks.items()):
            mounts.append(_bind(host_dir, _buildpack_dir(key), read_only=True))
        if self.ca_bundle and self.ca_bundle.is_file() and self._image_has_certs_dir(image_id):
            mounts.append(_bind(self.ca_bundle, _CA_IN_IMAGE, read_only=True))
        return mounts

    def _image_has_certs_dir(self, image_id: str) -> bool:
        """Whether ``/etc/ssl/certs`` exists in the image: a HEAD on a created, never started container."""
        if self._has_certs_dir is None:
            api = self.store.client.api
            with self.store.errors("inspect build image"):
                probe = api.create_container(image_id, command=["true"], labels={_LABEL: "probe"})["Id"]
                try:
                    url = api._url("/containers/{0}/archive", probe)
                    self._has_certs_dir = api.head(url, params={"path": _CERTS_DIR}).status_code == 200
                finally:
                    api.remove_container(probe, force=True)
        return self._has_certs_dir


def _buildpack_dir(key: str) -> str:
    """``id@version`` -> ``/cnb/buildpacks/<escaped id>/<version>`` (an id may contain ``/``)."""
    return buildpack_path(key)


def _bind(source: Path, target: str, *, read_only: bool = False) -> Mount:
    return Mount(target, os.fspath(source.resolve()), type="bind", read_only=read_only)


def hand_over(workspace: Workspace, uid: int, gid: int) -> None:
    """Make the writable dirs the build user's, so a container running as ``uid`` can write them."""
    euid = os.geteuid()
    if euid == uid:
        return
    if euid != 0:
        raise PybuildError(
            "run buildpacks in docker",
            f"pybuild runs as uid {euid} but the build image's user is {uid}; "
            "run pybuild as root or as that uid, or use --executor bwrap",
        )
    for root in (workspace.app, workspace.layers):
        for path in _tree(root):
            st = path.lstat()
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)


def _tree(root: Path) -> Iterator[Path]:
    yield root
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            yield Path(directory, name)


def _close_attached(attached: Any) -> None:
    """Shut the hijacked socket, then the HTTP response holding its file object (docker-py closes only
    the former, leaving the socket to the garbage collector)."""
    attached.close()
    response = getattr(attached, "_response", None)
    if response is not None:
        response.close()


def _stream_lines(chunks: Iterable[bytes], output: OutputSink) -> None:
    """Container output arrives in frames cut anywhere: pass it on line by line."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            output(line)
    pending += decoder.decode(b"", final=True)
    if pending:
        output(pending)
