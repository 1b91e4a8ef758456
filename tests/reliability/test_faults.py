"""kill -9 at random moments of build, export, rebase and autoupdate; a full disk during export.

After every kill each tag of the local store (and of the registry, for ``--publish``) must
still name a complete image that validates byte for byte, and the same command, run again,
must succeed (DESIGN.md "atomic writes"). ``make soak`` runs the full counts; the seed is
printed on failure and ``PYBUILD_TEST_KILL_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, pybuild
from support.registry import Registry
from support.tools import unavailable

from lifecycle.backends.layout import Layout
from lifecycle.oci.validate import validate

from .figures import record, scaled
from .killing import PHASES, check_registry, check_store, pybuild_killed, random_moment

pytestmark = pytest.mark.integration

KILLS = scaled(10, 60)
PUBLISH_KILLS = scaled(4, 24)
Args = Callable[[int], list[str]]
Op = tuple[Callable[[int], None], Args, tuple[str, ...]]  # prepare, argv, output markers


def _seed() -> int:
    return int(os.environ.get("PYBUILD_TEST_KILL_SEED") or time.time_ns() % 2**32)


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    return app


def _new_content(app: Path, number: int) -> None:
    """A different app layer each time (2 MB, so exporting it takes a while)."""
    (app / "data.bin").write_bytes(random.Random(number).randbytes(2 << 20))


COMMAND_TIMEOUT = 180  # a command that hangs (a deadlock) fails the test instead of stalling CI


def _timed(args: list[str]) -> float:
    started = time.monotonic()
    pybuild(*args, timeout=COMMAND_TIMEOUT)
    return time.monotonic() - started


def _kill_loop(ops: dict[str, Op], count: int, check: Callable[[], int], section: str) -> None:
    """Kill each op in turn at a random moment, check, run it again to the end, check again."""
    seed = _seed()
    rng = random.Random(seed)
    durations = {}
    for name, (prepare, args, _) in ops.items():
        prepare(-1)
        _timed(args(-1))  # warm: the first build extracts the build image
        prepare(-2)
        durations[name] = _timed(args(-2))  # a run like those of the loop: new content, another base
    names = sorted(ops)
    landed, history = 0, []
    for number in range(1, count + 1):
        name = names[number % len(names)]
        prepare, args, markers = ops[name]
        prepare(number)
        moment = random_moment(rng, durations[name], markers)
        run = pybuild_killed(args(number), moment)
        where = f"{name} killed {moment} (seed {seed}, kill {number})"
        history.append(f"{name} {moment} killed={run.killed} rc={run.returncode}")
        assert "Traceback" not in run.output, f"{where}:\n{run.output}"
        landed += run.killed
        record(section, "images_checked", check())
        proc = pybuild(*args(number), check=False, timeout=COMMAND_TIMEOUT)
        assert proc.returncode == 0, f"the command after {where} failed:\n{proc.stdout}\n{proc.stderr}"
        record(section, "images_checked", check())
        record(section, f"kills_{name}", int(run.killed))
    record(section, "kills_attempted", count)
    record(section, "kills_survived", landed)
    summary = "\n".join(history)
    assert landed >= count // 2, (
        f"only {landed} of {count} kills hit a running command (seed {seed}):\n{summary}"
    )


def test_kill_9_during_build_rebase_and_autoupdate_leaves_every_tag_valid(home: Path, tmp_path: Path) -> None:
    app = _app(tmp_path)

    def retag(number: int) -> None:
        pybuild("tag", f"pybuild/run:tiny-{1 + number % 2}", "pybuild/run:tiny")

    ops: dict[str, Op] = {
        "build": (
            lambda n: _new_content(app, n),
            lambda n: ["build", "app", "--path", str(app), "--builder", TINY_BUILDER],
            PHASES,
        ),
        "rebase": (
            lambda n: None,
            lambda n: ["rebase", "app", "--run-image", f"pybuild/run:tiny-{1 + n % 2}"],
            (),
        ),
        "autoupdate": (retag, lambda n: ["autoupdate"], ()),
    }
    _kill_loop(ops, KILLS, lambda: check_store(home), "kill_9_local_store")


def test_kill_9_during_publish_and_remote_rebase_leaves_every_registry_tag_valid(
    home: Path, tmp_path: Path, registry: Registry
) -> None:
    app = _app(tmp_path)
    ref = f"{registry.host}/faults/app:1"
    ops: dict[str, Op] = {
        "publish": (
            lambda n: _new_content(app, n),
            lambda n: ["build", ref, "--path", str(app), "--builder", TINY_BUILDER, "--publish"],
            PHASES,
        ),
        "rebase-publish": (
            lambda n: None,
            lambda n: ["rebase", ref, "--publish", "--run-image", f"pybuild/run:tiny-{1 + n % 2}"],
            (),
        ),
    }
    check = lambda: check_registry(registry.host, "faults/app") + check_store(home)  # noqa: E731
    _kill_loop(ops, PUBLISH_KILLS, check, "kill_9_registry")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root: run the tests as root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_disk_full_during_export_fails_cleanly_and_keeps_the_previous_image(
    home: Path, tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_home = small_disk / "home"
    shutil.copytree(home, small_home, symlinks=True)
    monkeypatch.setenv("PYBUILD_HOME", str(small_home))
    app = _app(tmp_path)
    build = ["build", "app", "--path", str(app), "--builder", TINY_BUILDER]
    previous = last_line(pybuild(*build))
    big = 6 << 20
    (app / "data.bin").write_bytes(random.Random(1).randbytes(big))
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(free - big - (2 << 20), 0))  # room to copy the app, not to export it
    proc = pybuild(*build, check=False)
    assert proc.returncode != 0, proc.stdout
    layout = Layout(small_home / "store")
    assert layout.resolve("app:latest") == previous
    for tag in layout.tags():
        validate(layout.image(tag))
    record("disk_full", "previous_image_intact", 1)
    filler.unlink()
    assert last_line(pybuild(*build)) != previous
    assert not list((small_home / "tmp").iterdir()), "a failed build left its work dir"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: failed to")]
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
    assert "free space and retry" in errors[0] and f": {small_disk}/" in errors[0], "names the file"
