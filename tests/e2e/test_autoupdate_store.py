"""`pybuild autoupdate` over the local store: rebase what moved, skip with reasons, CAS, watch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from support.cli import ROOT, TINY_BUILDER, last_line, pybuild

from lifecycle.backends.store import LocalStore
from lifecycle.oci import mutate
from lifecycle.platform.autoupdate import Policy, autoupdate

APP = "samples/procfile-shell"


def _fleet() -> LocalStore:
    """Four app images on tiny v1 (one opted out by label), one on another run-image repository."""
    digest = last_line(pybuild("-q", "build", "app-a", "--path", APP, "--builder", TINY_BUILDER))
    store = LocalStore()
    image = store.image("app-a")
    for tag in ("app-a:v2", "app-b", "app-c"):
        store.write(image, [tag])
    store.write(mutate.set_labels(image, {"io.pybuild.autoupdate": "false"}), ["app-optout"])
    store.write(store.image("pybuild/run:tiny"), ["other/run:tiny"])
    pybuild("build", "app-other", "--path", APP, "--builder", TINY_BUILDER, "--run-image", "other/run:tiny")
    assert store.resolve("app-a") == digest
    return store


def test_autoupdate_rebases_exactly_the_eligible_images(home: Path, tmp_path: Path) -> None:
    store = _fleet()
    before = {tag: store.resolve(tag) for tag in store.tags()}
    plan = json.loads(pybuild("autoupdate", "--dry-run", "-o", "json").stdout)
    assert not any(row["action"] == "would-rebase" for row in plan)  # nothing moved yet
    pybuild("tag", "pybuild/run:tiny-2", "pybuild/run:tiny")  # a patched run image is published
    plan = json.loads(pybuild("autoupdate", "--dry-run", "-o", "json").stdout)
    assert {r["image"] for r in plan if r["action"] == "would-rebase"} == {
        "app-a:latest", "app-a:v2", "app-b:latest", "app-c:latest",
    }  # fmt: skip
    assert store.resolve("app-a") == before["app-a:latest"]  # the dry run changed nothing
    report = tmp_path / "report.json"
    pybuild("autoupdate", "-j", "3", "--report", str(report))
    rows = {r["image"]: r for r in json.loads(report.read_text())}
    assert {i for i, r in rows.items() if r["action"] == "rebased"} == {
        "app-a:latest", "app-a:v2", "app-b:latest", "app-c:latest",
    }  # fmt: skip
    assert "opted out" in rows["app-optout:latest"]["reason"]
    assert rows["app-other:latest"]["action"] == "up-to-date"
    v2 = store.image("pybuild/run:tiny-2")
    rebased = store.image("app-b")
    assert rebased.layers[0] == v2.layers[0]
    assert rebased.annotations["io.pybuild.rebase.previous-base"] == rows["app-b:latest"]["old_base"]
    assert "hello from procfile-shell" in pybuild("run", "app-b", "--process", "hello").stdout
    again = json.loads(pybuild("autoupdate", "-o", "json").stdout)
    assert not any(row["action"] == "rebased" for row in again)


def test_a_tag_that_moved_meanwhile_is_not_overwritten(home: Path) -> None:
    """Compare and swap: the rebased image of a stale read never lands."""
    store = _fleet()
    pybuild("tag", "pybuild/run:tiny-2", "pybuild/run:tiny")
    stale = store.image("app-b")
    store.write(mutate.set_labels(stale, {"moved": "yes"}), ["app-b"])
    moved = store.resolve("app-b")
    assert store.write_if(stale, "app-b", stale.digest) is False
    assert store.resolve("app-b") == moved
    outcome = autoupdate(["app-b"], Policy())[0]
    assert outcome.action == "rebased"


def test_watch_picks_up_a_base_pushed_while_it_runs(home: Path) -> None:
    store = _fleet()
    argv = [sys.executable, "-m", "lifecycle", "autoupdate", "app-a", "--watch", "--interval", "0.3"]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            time.sleep(1.0)
            before = store.resolve("app-a")
            pybuild("tag", "pybuild/run:tiny-2", "pybuild/run:tiny")
            deadline = time.monotonic() + 10
            while store.resolve("app-a") == before and time.monotonic() < deadline:
                time.sleep(0.1)
            assert store.resolve("app-a") != before
        finally:
            proc.terminate()
            proc.wait(timeout=10)
