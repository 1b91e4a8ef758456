"""Builds, rebases and garbage collection at the same time on one store and one cache.

The store must never be corrupt (every tag validates, ``index.json`` parses); each command
either succeeds or fails with one clear ``ERROR:`` line; and the next build still works (the
cache stays readable).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, pybuild
from support.images import random_image

from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore
from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL
from lifecycle.oci.validate import validate
from lifecycle.phases import rebase as rebase_phase
from lifecycle.platform.rebase import RebaseOptions
from lifecycle.platform.rebase import rebase as run_rebase

from .figures import record, scaled
from .killing import check_store

PARALLEL = 4


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        results.append((proc.returncode, out, err))
    return results


def _clean(results: list[tuple[int, str, str]]) -> int:
    """Each command succeeded or failed with one ERROR line and no traceback; the successes."""
    for code, _out, err in results:
        assert "Traceback" not in err, err
        if code != 0:
            assert len([line for line in err.splitlines() if line.startswith("ERROR:")]) == 1, err
    return sum(code == 0 for code, _, _ in results)


@pytest.mark.integration
def test_parallel_builds_into_one_store_and_cache_all_land_valid(home: Path, tmp_path: Path) -> None:
    apps = []
    for number in range(PARALLEL):
        app = tmp_path / f"app-{number}"
        shutil.copytree(ROOT / "samples" / "procfile-shell", app)
        (app / "data.bin").write_bytes(random.Random(number).randbytes(1 << 20))
        apps.append(app)
    pybuild(
        "build", "app:warm", "--path", str(apps[0]), "--builder", TINY_BUILDER
    )  # extract the build image once
    for rounds in range(scaled(2, 6)):
        # app:N share the directory cache "app"; two builds also race for the same tag. Every round
        # runs the buildpacks (--rerun): unchanged apps would otherwise reuse the last round's images.
        procs = [
            _start(
                "build",
                f"app:{n if n < PARALLEL - 1 else 0}",
                "--path",
                str(apps[n]),
                "--builder",
                TINY_BUILDER,
                "--rerun",
            )
            for n in range(PARALLEL)
        ]
        succeeded = _clean(_finish(procs))
        record("concurrency", "parallel_builds", PARALLEL)
        record("concurrency", "parallel_builds_succeeded", succeeded)
        assert succeeded == PARALLEL, f"round {rounds}: only {succeeded} of {PARALLEL} builds succeeded"
        record("concurrency", "images_checked", check_store(home))
    assert last_line(
        pybuild("build", "app:after", "--path", str(apps[1]), "--builder", TINY_BUILDER)
    ).startswith("sha256:")


@pytest.mark.integration
def test_parallel_rebases_of_one_tag_leave_one_consistent_image(home: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    pybuild("build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    bases = {f"pybuild/run:tiny-{n}": LocalStore(home).image(f"pybuild/run:tiny-{n}") for n in (1, 2)}
    for _ in range(scaled(2, 8)):
        procs = [
            _start("rebase", "app", "--run-image", f"pybuild/run:tiny-{1 + n % 2}")
            for n in range(PARALLEL * 2)
        ]
        succeeded = _clean(_finish(procs))
        record("concurrency", "parallel_rebases", PARALLEL * 2)
        record("concurrency", "parallel_rebases_succeeded", succeeded)
        record("concurrency", "images_checked", check_store(home))
        final = LocalStore(home).image("app")
        label = final.labels[LIFECYCLE_METADATA_LABEL]
        under = [
            name for name, base in bases.items() if final.diff_ids[: len(base.diff_ids)] == base.diff_ids
        ]
        assert len(under) == 1 and bases[under[0]].layers[-1].diff_id in label, "label and layers disagree"


def test_threads_writing_deleting_and_collecting_one_layout_never_corrupt_it(tmp_path: Path) -> None:
    """In-process stress of the layout's locks: writers, compare-and-swap, deleters and gc at once."""
    layout = Layout(tmp_path / "layout", create=True)
    images = [random_image(layers=2, size=4096, seed=seed) for seed in range(6)]
    rounds = scaled(40, 400)
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        rng = random.Random(number)
        try:
            for _ in range(rounds):
                tag = f"t{rng.randrange(4)}"
                action = rng.random()
                image = rng.choice(images)
                if action < 0.5:
                    layout.write(image, [tag])
                elif action < 0.75:
                    layout.write_if(image, tag, layout.resolve(tag))
                elif action < 0.9:
                    try:
                        layout.delete(tag)
                    except Exception as exc:  # the tag may be gone already
                        assert "no such image" in str(exc)
                else:
                    layout.gc()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(6)))
    assert not errors, errors
    for tag in layout.tags():
        validate(layout.image(tag))
    record("concurrency", "layout_operations", rounds * 6)


def _build_during_rebase(monkeypatch: pytest.MonkeyPatch, app: Path, times: int) -> list[str]:
    """The first ``times`` rebases each let a new build of ``app`` land on the tag before writing."""
    original = rebase_phase.Rebaser.rebase
    landed: list[str] = []

    def rebase_while_a_build_lands(self: rebase_phase.Rebaser) -> rebase_phase.RebaseResult:
        result = original(self)
        if len(landed) < times:
            (app / "new.txt").write_text(f"version {len(landed) + 2}")
            landed.append(last_line(pybuild("build", "app", "--path", str(app), "--builder", TINY_BUILDER)))
        return result

    monkeypatch.setattr(rebase_phase.Rebaser, "rebase", rebase_while_a_build_lands)
    return landed


@pytest.mark.integration
def test_a_rebase_never_overwrites_a_build_that_landed_while_it_ran(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag moved (a new build) between rebase's read and its write, on each try: it refuses."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    pybuild("build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    landed = _build_during_rebase(monkeypatch, app, times=2)
    with pytest.raises(rebase_phase.RebaseFailed, match="moved") as raised:
        run_rebase(RebaseOptions("app", run_image="pybuild/run:tiny-2"))
    assert raised.value.exit_code == 72 and "\n" not in str(raised.value)
    assert len(landed) == 2, "the rebase retries once from the new build, then gives up"
    assert LocalStore(home).resolve("app") == landed[-1], "the rebase silently replaced the new build"


@pytest.mark.integration
def test_a_rebase_retries_once_from_a_build_that_landed_while_it_ran(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    pybuild("build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    landed = _build_during_rebase(monkeypatch, app, times=1)
    report = run_rebase(RebaseOptions("app", run_image="pybuild/run:tiny-2"))
    store = LocalStore(home)
    new_build, rebased = store.image(landed[0]), store.image("app")
    run = store.image("pybuild/run:tiny-2")
    assert report.digest == rebased.digest != landed[0]
    assert rebased.diff_ids[: len(run.diff_ids)] == run.diff_ids
    assert new_build.diff_ids[-1] == rebased.diff_ids[-1], "the retry rebased the build that landed"


@pytest.mark.integration
def test_a_rebase_from_previous_image_refuses_when_the_tag_moved(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --previous-image the app is not read from the tag, so a retry would undo the build."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    pybuild("build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    pybuild("tag", "app", "app:previous")
    landed = _build_during_rebase(monkeypatch, app, times=2)
    with pytest.raises(rebase_phase.RebaseFailed, match="moved"):
        run_rebase(RebaseOptions("app", run_image="pybuild/run:tiny-2", previous_image="app:previous"))
    assert len(landed) == 1, "no retry: it would rebase the previous image over the new build"
    assert LocalStore(home).resolve("app") == landed[0]
