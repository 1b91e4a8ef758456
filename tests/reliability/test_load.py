"""Load: 20 concurrent publishes to a registry, and rebases by the thousand in one process.

Every published image must pull back and validate; rebases must not fail and memory must stay
bounded (RSS at the end within a few MiB of RSS after the first tenth). Peak RSS goes to
``bench/results/reliability.json``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, pybuild
from support.registry import Registry

from .figures import record, scaled
from .killing import check_registry

pytestmark = pytest.mark.integration

PUBLISHES = 20
LOCAL_REBASES = scaled(1000, 10_000)
REGISTRY_REBASES = scaled(200, 1000)
RSS_GROWTH_MIB = 16
TESTS = Path(__file__).resolve().parents[1]


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}


def test_twenty_concurrent_publishes_all_land_and_validate(
    home: Path, tmp_path: Path, registry: Registry
) -> None:
    pybuild("build", "warm", "--path", "samples/procfile-shell", "--builder", TINY_BUILDER)
    procs, rss_files = [], []
    for number in range(PUBLISHES):
        app = tmp_path / f"app-{number}"
        shutil.copytree(ROOT / "samples" / "procfile-shell", app)
        (app / "data.bin").write_bytes(random.Random(number).randbytes(512 << 10))
        rss = tmp_path / f"rss-{number}"
        rss_files.append(rss)
        ref = f"{registry.host}/load/app-{number}:1"
        argv = [sys.executable, "-m", "reliability.load_child", "cli", "build", ref, "--path", str(app)]
        procs.append(
            subprocess.Popen(
                [*argv, "--builder", TINY_BUILDER, "--publish"],
                cwd=ROOT,
                env={**_child_env(), "PYBUILD_TEST_RSS_FILE": str(rss)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    failures = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            failures.append(err or out)
    assert not failures, failures[0]
    checked = sum(check_registry(registry.host, f"load/app-{number}") for number in range(PUBLISHES))
    assert checked == PUBLISHES
    peaks = [int(path.read_text()) / 1024 for path in rss_files]
    record("load", "concurrent_publishes", PUBLISHES, how="set")
    record("load", "publish_failures", 0, how="set")
    record("load", "published_images_validated", checked, how="set")
    record("load", "publish_peak_rss_mib_max", round(max(peaks), 1), how="set")
    record("load", "publish_peak_rss_mib_sum", round(sum(peaks), 1), how="set")


def _rebases(count: int, image: str, *publish: str) -> dict[str, float]:
    argv = [
        sys.executable,
        "-m",
        "reliability.load_child",
        "rebases",
        "--count",
        str(count),
        "--image",
        image,
    ]
    proc = subprocess.run(
        [*argv, *publish], cwd=ROOT, env=_child_env(), capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr
    figures: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["rss_mib_at_end"] - figures["rss_mib_after_first_tenth"] < RSS_GROWTH_MIB, figures
    return figures


def test_a_thousand_rebases_in_one_process_keep_memory_bounded(home: Path) -> None:
    pybuild("build", "app", "--path", "samples/procfile-shell", "--builder", TINY_BUILDER)
    figures = _rebases(LOCAL_REBASES, "app")
    record("load", "local_store_rebases", figures, how="set")
    pybuild("gc")


def test_rebases_through_a_registry_in_one_process_keep_memory_bounded(
    home: Path, registry: Registry
) -> None:
    ref = f"{registry.host}/load/rebased:1"
    pybuild("build", ref, "--path", "samples/procfile-shell", "--builder", TINY_BUILDER, "--publish")
    figures = _rebases(REGISTRY_REBASES, ref, "--publish")
    assert check_registry(registry.host, "load/rebased") == 1
    record("load", "registry_rebases", figures, how="set")
