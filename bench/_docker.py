"""A private dockerd for benchmarks that compare with ``docker build``.

Started as ENVIRONMENT.md §6 says: its own data-root, exec-root and socket under a temp dir,
and its own bridge (``--iptables=false --ip-masq=false``, so containers on it have no way out;
builds that need the network use ``--network host``). ``stop`` ends only the dockerd this
object started, unmounts the ``nsfs`` it leaves at ``<exec-root>/netns/default``, deletes the
bridge and the temp dir. Images come from our own stacks: ``pybuild save`` then ``docker load``.

Also what the comparisons with ``docker build`` share: a build context with the host's CA bundle,
and the timed ``--no-cache`` / layer-cache / edited-app builds of one builder (BuildKit or classic).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import stop_process
from bench._pybuild import PYBUILD, edit_app, seconds

DOCKER = "/usr/bin/docker"  # the docker.io CLI (20.10): BuildKit works with it, the 28.x CLI lacks buildx
DOCKERD = "dockerd"
# egress TLS is intercepted here: pip in a docker build needs the host's CA bundle (pybuild binds it
# into its sandbox); Dockerfiles COPY it from their context as host-ca.crt
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
VERSUS_DOCKER = "ratio (pybuild / docker; < 1 = pybuild faster)"  # a ratio table's title


class DockerError(RuntimeError):
    pass


class Dockerd:
    def __init__(self, parent: Path, bridge: str = "br-bench", address: str = "172.31.253.1/24") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dockerd-", dir=parent))
        self.bridge = bridge
        self.address = address
        self.socket = self.root / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self._made_bridge = False

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def start(self, timeout: float = 60) -> float:
        """Start dockerd; the seconds until ``docker version`` answered."""
        started = time.perf_counter()
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode == 0:
            raise DockerError(f"bridge {self.bridge} exists already: another benchmark's dockerd? (--bridge)")
        for argv in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", self.address, "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            subprocess.run(argv, check=True)
            self._made_bridge = True
        argv = [
            DOCKERD,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--host=unix://{self.socket}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip-masq=false",
        ]
        log = (self.root / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise DockerError(f"dockerd exited {self.proc.returncode}: see {self.root / 'dockerd.log'}")
            probe = subprocess.run([DOCKER, "version"], env=self.env, capture_output=True)
            if probe.returncode == 0:
                return time.perf_counter() - started
            time.sleep(0.2)
        raise DockerError(f"dockerd did not answer in {timeout:.0f} s")

    def docker(
        self, *args: str, cwd: Path | None = None, buildkit: bool | None = None, quiet: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = self.env
        if buildkit is not None:
            env["DOCKER_BUILDKIT"] = "1" if buildkit else "0"
        proc = subprocess.run([DOCKER, *args], env=env, cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            raise DockerError(f"docker {' '.join(args)} exited {proc.returncode}:\n" + "\n".join(tail))
        if not quiet:
            print(proc.stdout, proc.stderr, sep="\n")
        return proc

    def timed(self, *args: str, cwd: Path | None = None, buildkit: bool | None = None) -> float:
        started = time.perf_counter()
        self.docker(*args, cwd=cwd, buildkit=buildkit)
        return time.perf_counter() - started

    def build(
        self,
        context: Path,
        tag: str,
        builder: str,
        *,
        no_cache: bool = False,
        dockerfile: Path | None = None,
        host_network: bool = True,
    ) -> float:
        """``docker build`` of ``context`` with ``builder`` (``buildkit`` or ``classic``), never
        pulling; seconds. ``host_network`` for builds that download (the bridge has no way out)."""
        argv = ["build", "--pull=false", *(["--no-cache"] if no_cache else [])]
        argv += ["--network=host"] if host_network else []
        argv += ["-f", str(dockerfile)] if dockerfile else []
        return self.timed(*argv, "-t", tag, str(context), buildkit=builder == "buildkit")

    def remove(self, tag: str) -> None:
        """The image, dangling images and the build cache: the next builder starts clean."""
        self.docker("image", "rm", "-f", tag)
        self.docker("image", "prune", "-f")
        self.docker("builder", "prune", "-af")

    def root_fs(self, image: str) -> list[str]:
        """The image's layer diffIDs, base first."""
        layers = self.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout
        return list(json.loads(layers))

    def load_from_pybuild(self, images: Sequence[str], scratch: Path, home: Path) -> dict[str, float]:
        """``pybuild save IMAGE -o x.tar`` then ``docker load -i x.tar``; seconds for each step."""
        times: dict[str, float] = {}
        env = {**os.environ, "PYBUILD_HOME": str(home)}
        for image in images:
            archive = scratch / (image.replace("/", "_").replace(":", "_") + ".tar")
            started = time.perf_counter()
            subprocess.run(
                [PYBUILD, "save", image, "-o", str(archive)], env=env, check=True, capture_output=True
            )
            times[f"pybuild save {image}"] = seconds(time.perf_counter() - started)
            times[f"docker load {image}"] = seconds(self.timed("load", "-i", str(archive)))
            archive.unlink()
        return times

    def image_size(self, image: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 30)
        self.proc = None
        netns = self.root / "exec" / "netns" / "default"
        if os.path.ismount(netns):
            subprocess.run(["umount", str(netns)], check=False)
        for mount in _mounts_under(self.root):  # overlay mounts a killed daemon may leave
            subprocess.run(["umount", "-l", mount], check=False)
        if self._made_bridge:
            subprocess.run(["ip", "link", "del", self.bridge], check=False)
            self._made_bridge = False
        shutil.rmtree(self.root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


@contextlib.contextmanager
def dockerd(
    parent: Path, bridge: str, images: Sequence[str], home: Path
) -> Iterator[tuple[Dockerd, dict[str, Any]]]:
    """A private dockerd with our ``images`` loaded from ``home``'s store; and the seconds that took:
    ``dockerd_start_seconds``, ``image_import_seconds`` (each ``pybuild save`` and ``docker load``)."""
    daemon = Dockerd(parent, bridge)
    try:
        figures: dict[str, Any] = {"dockerd_start_seconds": seconds(daemon.start())}
        figures["image_import_seconds"] = daemon.load_from_pybuild(images, parent, home)
        yield daemon, figures
    finally:
        daemon.stop()


def docker_context(context: Path, dockerfile: str) -> Path:
    """``context`` (the app already in it) with ``dockerfile`` as its Dockerfile and the host's CA
    bundle as host-ca.crt."""
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    shutil.copyfile(HOST_CA, context / "host-ca.crt")
    return context


@dataclass(frozen=True)
class BuildTimes:
    """Seconds of each ``docker build`` of one builder, run after run."""

    cold: list[float]  # --no-cache
    cached: list[float]  # the layer cache, nothing changed
    edited: list[float]  # the layer cache, after ``edit`` (empty without one)


def time_builds(
    daemon: Dockerd,
    context: Path,
    builder: str,
    repeat: int,
    tag: str,
    edit: Path | None = None,
) -> BuildTimes:
    """``repeat`` times: ``docker build --no-cache``, then again with the layer cache, then (with
    ``edit``, the app's directory in the context) once more after a line was added to its app.py
    (only the last ``COPY`` reruns)."""
    times = BuildTimes([], [], [])
    for number in range(repeat):
        kinds = "--no-cache, layer cache" + (", app.py edited" if edit else "")
        print(f"docker build ({builder}): {kinds} ({number + 1}/{repeat})", flush=True)
        times.cold.append(daemon.build(context, tag, builder, no_cache=True))
        times.cached.append(daemon.build(context, tag, builder))
        if edit is not None:
            edit_app(edit, f"{builder} {number}")
            times.edited.append(daemon.build(context, tag, builder))
    return times


def compare_builders(
    options: argparse.Namespace,
    home: Path,
    scratch: Path,
    images: Sequence[str],
    context: Path,
    figures: Callable[[BuildTimes], dict[str, Any]],
    edit: Path | None = None,
) -> dict[str, Any]:
    """A private dockerd (in ``scratch``, on ``--bridge``) with ``images`` loaded from ``home``; then,
    for each ``--docker`` builder, ``--repeat`` rounds of ``time_builds`` of ``context`` (tagged
    ``bench/<context's name>-docker:<builder>``), summed up by ``figures``, with the image's size;
    the image and build cache are removed before the next builder. Each builder's figures by its
    name, beside the dockerd's own (see ``dockerd``)."""
    with dockerd(scratch, options.bridge, images, home) as (daemon, out):
        for builder in options.docker:
            tag = f"bench/{context.name}-docker:{builder}"
            times = time_builds(daemon, context, builder, options.repeat, tag, edit)
            out[builder] = {**figures(times), "image_bytes": daemon.image_size(tag)}
            daemon.remove(tag)
    return out


def builder_figures(docker: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """The figures of each builder in a benchmark's ``docker`` results (not its other entries)."""
    return [
        (builder, figures)
        for builder, figures in (docker or {}).items()
        if isinstance(figures, dict) and "cold" in figures
    ]
