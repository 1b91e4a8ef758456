"""A fleet of 50 app images in a real registry: one autoupdate rebases exactly the eligible ones.

Built from three samples on the tiny stack, pushed under many repositories and tags: 5 are opted
out by label, 2 sit on another run-image repository. Publishing run v2 under the run image's tag
and running autoupdate must rebase exactly the other 43, move no layer bytes, and leave images that
run; a second run does nothing; a killed run leaves every tag on a complete image.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.cli import ROOT, TINY_BUILDER, pybuild
from support.registry import AccessLogEntry, Registry

from lifecycle.backends.registry import RegistryStore
from lifecycle.oci import mutate, validate

SAMPLES = ("samples/procfile-shell", "samples/static-site", "tests/fixtures/apps/own-buildpack")


def _fleet(registry: Registry, prefix: str) -> tuple[str, str, list[str]]:
    host = registry.host
    v1, v2, other = f"{host}/{prefix}/run:tiny", f"{host}/{prefix}/run:tiny-2", f"{host}/{prefix}/other-run:1"
    pybuild("push", "pybuild/run:tiny", v1)
    pybuild("push", "pybuild/run:tiny-2", v2)
    pybuild("push", "pybuild/run:tiny", other)
    store = RegistryStore(host)
    refs: list[str] = []
    for n, sample in enumerate(SAMPLES):
        seed = f"{host}/{prefix}/seed-{n}:v1"
        pybuild("build", seed, "--path", sample, "--builder", TINY_BUILDER, "--run-image", v1, "--publish")
        image = store.image(seed)
        for k in range(16 if n < 2 else 11):  # 16 + 16 + 11 = 43 eligible
            ref = f"{prefix}/app-{n}-{k % 4}:v{k}"
            store.write(image, [ref])
            refs.append(f"{host}/{ref}")
        if n == 0:
            opted_out = mutate.set_labels(image, {"io.pybuild.autoupdate": "false"})
            for k in range(5):
                store.write(opted_out, [f"{prefix}/optout-{k}:v1"])
        store.delete(seed.removeprefix(host + "/"))
    for k in range(2):
        ref = f"{host}/{prefix}/on-other-{k}:v1"
        pybuild(
            "build", ref, "--path", SAMPLES[0], "--builder", TINY_BUILDER, "--run-image", other, "--publish"
        )
    return v1, v2, refs


def _layer_traffic(entries: list[AccessLogEntry]) -> list[AccessLogEntry]:
    return [
        e
        for e in entries
        if (e.method == "GET" and "/blobs/sha256:" in e.path and e.size > 64 * 1024)
        or (e.method == "PATCH" and "/blobs/uploads/" in e.path)
        or (e.method == "PUT" and "/blobs/uploads/" in e.path and e.size > 64 * 1024)
    ]


def _autoupdate(registry: Registry, prefix: str, *extra: str) -> list[dict[str, str]]:
    out = pybuild("autoupdate", "--registry", f"{registry.host}/{prefix}", "-j", "8", "-o", "json", *extra)
    return list(json.loads(out.stdout))


def test_fleet_autoupdate_rebases_exactly_the_eligible_images(home: Path, registry: Registry) -> None:
    prefix = "fleet50"
    v1, v2, eligible = _fleet(registry, prefix)
    plan = _autoupdate(registry, prefix, "--dry-run")
    assert not [r for r in plan if r["action"] == "would-rebase"]
    pybuild("tag", f"docker://{v2}", f"docker://{v1}")  # run v2 is published
    mark = registry.log_mark()
    dry = _autoupdate(registry, prefix, "--dry-run")
    assert len([r for r in dry if r["action"] == "would-rebase"]) == 43
    rows = {r["image"].removeprefix("docker://"): r for r in _autoupdate(registry, prefix)}
    rebased = {image for image, r in rows.items() if r["action"] == "rebased"}
    assert rebased == set(eligible)
    assert sum("opted out" in r["reason"] for r in rows.values()) == 5
    others = [r for image, r in rows.items() if "/on-other-" in image]
    assert [r["action"] for r in others] == ["up-to-date", "up-to-date"]
    assert _layer_traffic(registry.access_log(since=mark)) == []
    assert not [r for r in _autoupdate(registry, prefix) if r["action"] == "rebased"]
    pybuild("pull", eligible[0], "fleet-app")
    assert (
        "VERSION=2"
        in pybuild(
            "run", "fleet-app", "--entrypoint", "/cnb/lifecycle/launcher", "--", "cat /etc/pybuild-release"
        ).stdout
    )


def test_killed_autoupdate_leaves_every_tag_on_a_complete_image(home: Path, registry: Registry) -> None:
    prefix = "fleetkill"
    v1, v2, eligible = _fleet(registry, prefix)
    pybuild("tag", f"docker://{v2}", f"docker://{v1}")
    argv = [
        sys.executable,
        "-m",
        "lifecycle",
        "autoupdate",
        "--registry",
        f"{registry.host}/{prefix}",
        "-j",
        "2",
    ]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
    store = RegistryStore(registry.host)
    for ref in eligible:
        validate(store.image(ref))  # old or new, always whole
    rows = _autoupdate(registry, prefix)
    assert not [r for r in rows if r["action"] in ("failed", "conflict")]
    assert not [r for r in _autoupdate(registry, prefix) if r["action"] == "rebased"]
