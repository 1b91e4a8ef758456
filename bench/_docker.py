"""A private dockerd for benchmarks that compare with ``docker build``.

Started as ENVIRONMENT.md §6 says: its own data-root, exec-root and socket under a temp dir,
and its own bridge (``--iptables=false --ip-masq=false``, so containers on it have no way out;
builds that need the network use ``--network host``). ``stop`` ends only the dockerd this
object started, unmounts the ``nsfs`` it leaves at ``<exec-root>/netns/default``, deletes the
bridge and the temp dir. Images come from our own stacks: ``pybuild save`` then ``docker load``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DOCKER = "/usr/bin/docker"  # the docker.io CLI (20.10): BuildKit works with it, the 28.x CLI lacks buildx
DOCKERD = "dockerd"
PYBUILD = str(Path(sys.executable).with_name("pybuild"))


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
            times[f"pybuild save {image}"] = time.perf_counter() - started
            times[f"docker load {image}"] = self.timed("load", "-i", str(archive))
            archive.unlink()
        return times

    def image_size(self, image: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
def dockerd(parent: Path, bridge: str = "br-bench") -> Iterator[tuple[Dockerd, float]]:
    daemon = Dockerd(parent, bridge)
    try:
        seconds = daemon.start()
        yield daemon, seconds
    finally:
        daemon.stop()
