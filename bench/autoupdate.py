"""``pybuild autoupdate`` over a fleet of 1,000 app images on a local registry: the time to rebase
them all after a base update at concurrency 1, 8 and 32, and, in ``--watch`` mode, the time from
the new base being pushed to the last image being rebased.

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache): the tiny stack and
``pybuild/builder:tiny``; a private ``docker-registry`` (``bench/_registry.py``). The run image
``pybuild/run:tiny`` is pushed as ``base/run:tiny``; one app (samples/procfile-shell) is built with
``--publish --run-image HOST/base/run:tiny``, and its manifest is written under ``--images`` (1,000)
repositories ``apps/app-NNNN:v1`` (``RegistryStore.write``, 8 threads: every blob is mounted or
skipped, nothing is built or uploaded but a config). Then, for each ``--concurrency`` (1,8,32):

* a new base is published: ``pybuild/run:tiny`` plus a small layer unique to the round, pushed as
  ``base/run:tiny-round-N``, then the tag ``base/run:tiny`` moved to it (so every round is the same
  work: each app repository gets one new layer mounted, no round reuses another's blobs);
* one autoupdate run over ``--registry HOST/apps`` in this process (``fleet_refs`` + ``autoupdate``,
  what the command calls; listing and rebasing timed apart), checked: every image rebased, none
  failed, no layer bytes moved. ``--sequential-images N`` limits the concurrency-1 round to the
  first N images when 1,000 would take too long.

Then the same round once as a command (``pybuild autoupdate ... -j 8 -o json``), and the watch
figure: ``pybuild autoupdate --registry HOST/apps --watch --interval S -j J -o json`` runs as a
command; after its first pass (nothing to do) ends, wait ``--push-delay`` (half the interval) and
publish a new base; the registry's application log gives when the watcher's next pass started (its
``/v2/_catalog``) and when the last app manifest was put.

Bytes: the registry's access log and ``RegistryStore.stats`` (see ``bench/_registry.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._common import parallel, parser, stop_process, workspace
from bench._pybuild import PYBUILD, base_with_layer, command, make_builder, seconds, timed
from bench._registry import (
    DESCRIPTION,
    CpuClock,
    Registry,
    server_seconds,
    stats_delta,
    stats_snapshot,
)
from bench._results import REPO, latest_figures, load_average, new_results, ratio_table, report, run_facts

NAME = "autoupdate"
SAMPLE = REPO / "samples" / "procfile-shell"
BUILDER = "pybuild/builder:tiny"
PREFIX = "apps"
BASE_REPO = "base/run"


def run(argv: list[str]) -> None:
    options = _parse(argv)
    delay = options.push_delay if options.push_delay is not None else options.interval / 2
    results = new_results(
        {
            "images": options.images,
            "concurrency": options.concurrency,
            "sequential_images": options.sequential_images or options.images,
            "watch_interval": options.interval,
            "watch_concurrency": options.watch_concurrency,
            "push_delay": delay,
            "builder": BUILDER,
            "registry": DESCRIPTION,
        },
        app=SAMPLE,
    )
    with workspace(NAME, options, "autoupdate") as (_, scratch):
        registry = Registry(Path(options.workdir), NAME)
        fleet = _Fleet(registry, scratch)
        try:
            stack = make_builder(BUILDER, Path(options.stack_cache))
            results["setup"] = {
                "stack_and_builder_seconds": stack.seconds,
                "mmdebstrap_ran": stack.mmdebstrap_ran,
            }
            results["registry_start_seconds"] = seconds(registry.start())
            results["fleet"] = fleet.create(options.images)
            results["rounds"] = {}
            for jobs in options.concurrency:
                limit = options.sequential_images if jobs == 1 and options.sequential_images else None
                results["rounds"][str(jobs)] = fleet.round_in_process(jobs, limit)
            if options.command_round:
                results["command_round"] = fleet.round_command(8)
            if options.interval > 0:
                results["watch"] = fleet.watch(options.interval, options.watch_concurrency, delay)
            results["registry_disk_bytes"] = registry.disk_bytes()
            results["ratios"] = _ratios(results)
            results["load_average_at_end"] = load_average()
        finally:
            fleet.close()
            registry.stop(keep=options.keep)
    report(NAME, results, summary, ("fleet", "rounds", "watch", "ratios"))


def _parse(argv: list[str]) -> argparse.Namespace:
    def numbers(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part]

    options = parser(NAME, __doc__)
    options.add_argument("--images", type=int, default=1000, help="app images in the fleet (1000)")
    options.add_argument("--concurrency", type=numbers, default=[1, 8, 32], help="-j of each round (1,8,32)")
    options.add_argument(
        "--sequential-images", type=int, default=0, help="rebase only the first N images at -j 1 (0: all)"
    )
    options.add_argument(
        "--no-command-round", dest="command_round", action="store_false", help="skip the -j 8 command round"
    )
    options.add_argument("--interval", type=float, default=5.0, help="--watch --interval (5; 0 skips watch)")
    options.add_argument("--watch-concurrency", type=int, default=32, help="-j of the watcher (32)")
    options.add_argument(
        "--push-delay", type=float, default=None, help="seconds after a watch pass to push (interval / 2)"
    )
    return options.parse_args(argv)


class _Fleet:
    def __init__(self, registry: Registry, scratch: Path) -> None:
        self.registry = registry
        self.scratch = scratch
        self.round = 0
        self.refs: list[str] = []
        self.bases: list[str] = []  # digest of base/run:tiny after each publish
        self._store: Any = None

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def store(self) -> Any:
        from lifecycle.backends.registry import RegistryStore

        if self._store is None:
            self._store = RegistryStore(self.host, parallel=4)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- the fleet ---------------------------------------------------------------------------------
    def create(self, count: int) -> dict[str, Any]:
        host = self.host
        out: dict[str, Any] = {"images": count}
        mark = self.registry.mark()
        pushed, _ = command("push", "pybuild/run:tiny", f"{host}/{BASE_REPO}:tiny")
        out["push_run_image"] = {"seconds": seconds(pushed), "traffic": self.registry.traffic(mark)}
        self.bases.append(self.store.resolve(f"{BASE_REPO}:tiny"))
        print("seed app: build --publish", flush=True)
        seed = f"{host}/seed/app:v1"
        built, _ = command(
            "build", seed, "--path", str(SAMPLE), "--builder", BUILDER,
            "--run-image", f"{host}/{BASE_REPO}:tiny", "--publish",
        )  # fmt: skip
        out["seed_build_seconds"] = seconds(built)
        image = self.store.image(seed)
        out["image"] = {
            "layers": len(image.layers),
            "bytes": sum(layer.size for layer in image.layers),
            "manifest_bytes": len(image.raw_manifest),
            "config_bytes": len(image.raw_config),
        }
        names = [f"{PREFIX}/app-{n:04d}:v1" for n in range(count)]
        print(f"fleet: the seed's manifest under {count} repositories (8 threads)", flush=True)
        before, mark = stats_snapshot(self.store.stats), self.registry.mark()
        elapsed, _ = timed(lambda: parallel(lambda name: self.store.write(image, [name]), names, 8))
        out["create"] = {
            "seconds": seconds(elapsed),
            "images_per_second": round(count / elapsed, 1),
            "stats": stats_delta(stats_snapshot(self.store.stats), before),
            "traffic": self.registry.traffic(mark),
        }
        self.refs = [f"docker://{host}/{name}" for name in names]
        return out

    def publish_base(self) -> dict[str, Any]:
        """A new run image (the tiny one plus a layer unique to this round), then the tag moved to it."""
        self.round += 1
        number = self.round
        base = base_with_layer("pybuild/run:tiny", number, self.scratch, f"bench: base round {number}")
        self.store.write(base, [f"{BASE_REPO}:tiny-round-{number}"])
        pushed_at = time.time()
        self.store.put_manifest(f"{BASE_REPO}:tiny", base.raw_manifest, base.media_type)
        self.bases.append(base.digest)
        return {"round": number, "digest": base.digest, "pushed_at": pushed_at}

    # -- rounds ------------------------------------------------------------------------------------
    def round_in_process(self, jobs: int, limit: int | None) -> dict[str, Any]:
        from lifecycle.platform.autoupdate import Policy, autoupdate
        from lifecycle.platform.fleet import fleet_refs
        from lifecycle.platform.targets import registry_for

        base = self.publish_base()
        stats = registry_for(self.host).stats
        before, mark, cpu = stats_snapshot(stats), self.registry.mark(), CpuClock(self.registry)
        print(f"autoupdate -j {jobs} in-process ({limit or len(self.refs)} images)", flush=True)
        started = time.perf_counter()
        refs = fleet_refs(registry=f"{self.host}/{PREFIX}")
        listed = time.perf_counter()
        if limit:
            refs = sorted(refs)[:limit]
        outcomes = autoupdate(refs, Policy(), concurrency=jobs)
        ended = time.perf_counter()
        used = cpu.read()
        figures = self._figures(
            [o.as_dict() for o in outcomes], ended - started, listed - started, base["digest"], mark
        )
        figures["stats"] = stats_delta(stats_snapshot(stats), before)
        figures["cpu_seconds"] = {"registry": used["registry"], "pybuild": used["this_process"]}
        figures["jobs"] = jobs
        self._report(f"-j {jobs}", figures)
        return figures

    def round_command(self, jobs: int) -> dict[str, Any]:
        base = self.publish_base()
        mark, cpu = self.registry.mark(), CpuClock(self.registry)
        print(f"pybuild autoupdate -j {jobs} (command)", flush=True)
        elapsed, proc = command(
            "autoupdate", "--registry", f"{self.host}/{PREFIX}", "-j", str(jobs), "-o", "json"
        )
        used = cpu.read()
        figures = self._figures(json.loads(proc.stdout), elapsed, None, base["digest"], mark)
        figures["cpu_seconds"] = {"registry": used["registry"], "pybuild": used["commands"]}
        figures["jobs"] = jobs
        self._report(f"command -j {jobs}", figures)
        return figures

    def _figures(
        self, rows: list[dict[str, Any]], elapsed: float, listing: float | None, digest: str, mark: Any
    ) -> dict[str, Any]:
        actions = Counter(row["action"] for row in rows)
        each = sorted(float(row["seconds"]) for row in rows if row["action"] == "rebased")
        traffic = self.registry.traffic(mark)
        rebased = actions.get("rebased", 0)
        figures: dict[str, Any] = {
            "images": len(rows),
            "actions": dict(actions),
            "seconds": seconds(elapsed),
            "images_per_second": round(rebased / elapsed, 1) if elapsed else None,
            "all_on_new_base": all(row["new_base"] == digest for row in rows if row["action"] == "rebased"),
            "failed_or_conflict": actions.get("failed", 0) + actions.get("conflict", 0),
            "per_image_ms": _percentiles(each),
            "traffic": traffic,
            "requests_per_image": round(traffic["requests"] / max(rebased, 1), 1),
            "registry_seconds": server_seconds(self.registry.completed(mark)),
        }
        if listing is not None:
            figures["listing_seconds"] = seconds(listing)
            figures["rebase_seconds"] = seconds(elapsed - listing)
            figures["rebase_images_per_second"] = round(rebased / (elapsed - listing), 1)
        errors = [row.get("reason", "") for row in rows if row["action"] in ("failed", "conflict")]
        if errors:
            figures["first_errors"] = errors[:3]
        return figures

    @staticmethod
    def _report(name: str, figures: dict[str, Any]) -> None:
        print(
            f"  {name}: {figures['images']} images in {figures['seconds']:.2f} s "
            f"({figures['images_per_second']} images/s), actions {figures['actions']}, "
            f"layer bytes moved {figures['traffic']['layer_bytes_moved']}",
            flush=True,
        )

    # -- watch -------------------------------------------------------------------------------------
    def watch(self, interval: float, jobs: int, delay: float) -> dict[str, Any]:
        argv = [
            PYBUILD,
            "autoupdate", "--registry", f"{self.host}/{PREFIX}", "--watch",
            "--interval", str(interval), "-j", str(jobs), "-o", "json",
        ]  # fmt: skip
        print(f"watch: {' '.join(argv[1:])}", flush=True)
        mark = self.registry.mark()
        started = time.time()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        passes = _PassReader(proc)
        try:
            idle = passes.next(timeout=600)
            idle_done = time.time()
            time.sleep(delay)
            base = self.publish_base()
            pushed = base["pushed_at"]
            busy = passes.next(timeout=600)
            seen = time.time()
        finally:
            stop_process(proc, 10)
        done = self.registry.completed(mark)
        catalogs = [c.time for c in done if c.path == "/v2/_catalog"]
        puts = [
            c.time
            for c in done
            if c.method == "PUT" and c.path.startswith(f"/v2/{PREFIX}/") and "/manifests/" in c.path
        ]
        pass_start = min((t for t in catalogs if t >= pushed), default=None)
        last_put = max(puts) if puts else None
        actions = Counter(row["action"] for row in busy)
        out = {
            "interval": interval,
            "jobs": jobs,
            "push_delay_after_idle_pass": delay,
            "idle_pass_seconds": seconds(idle_done - (catalogs[0] if catalogs else started)),
            "idle_pass_actions": dict(Counter(row["action"] for row in idle)),
            "rebase_pass_actions": dict(actions),
            "all_on_new_base": all(
                row["new_base"] == base["digest"] for row in busy if row["action"] == "rebased"
            ),
        }
        if pass_start is not None and last_put is not None:
            out["push_to_last_rebased_seconds"] = seconds(last_put - pushed)
            out["push_to_pass_start_seconds"] = seconds(pass_start - pushed)
            out["pass_start_to_last_rebased_seconds"] = seconds(last_put - pass_start)
            out["push_to_report_seconds"] = seconds(seen - pushed)
        self._watch_report(out)
        return out

    @staticmethod
    def _watch_report(out: dict[str, Any]) -> None:
        print(
            f"  watch: pushed -> last rebased {out.get('push_to_last_rebased_seconds')} s "
            f"(waiting {out.get('push_to_pass_start_seconds')} s, "
            f"pass {out.get('pass_start_to_last_rebased_seconds')} s), "
            f"idle pass {out['idle_pass_seconds']} s, actions {out['rebase_pass_actions']}",
            flush=True,
        )


class _PassReader:
    """Each pass of ``autoupdate --watch -o json`` prints one JSON array; hand them over one by one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.passes: list[list[dict[str, Any]]] = []
        self.errors: list[str] = []
        self.cond = threading.Condition()
        self.taken = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        buffer: list[str] = []
        for line in self.proc.stdout:
            if not buffer and not line.startswith("["):
                continue
            buffer.append(line)
            if line.rstrip() in ("]", "[]"):
                rows = json.loads("".join(buffer))
                buffer = []
                with self.cond:
                    self.passes.append(rows)
                    self.cond.notify_all()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line)

    def next(self, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.passes) <= self.taken:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no watch pass in {timeout:.0f} s: {''.join(self.errors[-20:])}")
                self.cond.wait(min(left, 1.0))
            self.taken += 1
            return self.passes[self.taken - 1]


# -- helpers ------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered) * 1000, 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    rounds = results["rounds"]
    out: dict[str, Any] = {}
    if "1" in rounds:
        one = rounds["1"]["rebase_images_per_second"]
        for jobs, figures in rounds.items():
            if jobs != "1":
                out[f"-j {jobs} / -j 1 (images/s, rebase step)"] = round(
                    figures["rebase_images_per_second"] / one, 2
                )
    command = results.get("command_round")
    if command and "8" in rounds:
        out["command -j 8 / in-process -j 8 (time)"] = round(command["seconds"] / rounds["8"]["seconds"], 2)
    return out


def summary(results: dict[str, Any]) -> str:
    fleet = results["fleet"]
    create = fleet["create"]
    lines = [
        *latest_figures(
            f"{run_facts(results, dirty=True)}. Fleet: {fleet['images']} images of "
            f"{fleet['image']['layers']} layers ({fleet['image']['bytes'] / 1e6:.1f} MB), written in "
            f"{create['seconds']:.1f} s "
            f"({create['images_per_second']} images/s, 8 threads; blobs uploaded / mounted / skipped "
            f"{create['stats']['blobs_uploaded']} / {create['stats']['blobs_mounted']} / "
            f"{create['stats']['blobs_skipped']}). Each round publishes a new base first."
        ),
        "",
        "| autoupdate round | images | total (s) | listing (s) | rebase (s) | **images/s** "
        "| per image median / p95 (ms) | requests per image | registry busy (s) | CPU s: registry / pybuild "
        "| sent (MB) | received (MB) | layer bytes moved | blobs up / mounted / skipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"-j {jobs} (in-process)", figures) for jobs, figures in results["rounds"].items()]
    if results.get("command_round"):
        rows.append(
            (
                f"-j {results['command_round']['jobs']} (`pybuild autoupdate` command)",
                results["command_round"],
            )
        )
    for name, f in rows:
        t, stats = f["traffic"], f.get("stats")
        blobs = (
            f"{stats['blobs_uploaded']} / {stats['blobs_mounted']} / {stats['blobs_skipped']}"
            if stats
            else "-"
        )
        lines.append(
            f"| {name} | {f['actions'].get('rebased', 0)} | {f['seconds']:.1f} "
            f"| {f.get('listing_seconds', '-')} "
            f"| {f.get('rebase_seconds', '-')} | **{f['images_per_second']}** "
            f"| {f['per_image_ms'].get('median')} / {f['per_image_ms'].get('p95')} "
            f"| {f['requests_per_image']} "
            f"| {f['registry_seconds']['total']:.1f} "
            f"| {f['cpu_seconds']['registry']:.1f} / {f['cpu_seconds']['pybuild']:.1f} "
            f"| {t['client_sent_body_bytes'] / 1e6:.2f} "
            f"| {t['client_received_body_bytes'] / 1e6:.2f} | {t['layer_bytes_moved']} | {blobs} |"
        )
    watch = results.get("watch")
    if watch:
        lines += [
            "",
            f"`--watch --interval {watch['interval']:g} -j {watch['jobs']}`: the new base was pushed "
            f"{watch['push_delay_after_idle_pass']:g} s after an idle pass ended (idle pass over the fleet: "
            f"{watch['idle_pass_seconds']:.1f} s); **pushed -> last image rebased: "
            f"{watch.get('push_to_last_rebased_seconds')} s** = waiting for the next pass "
            f"{watch.get('push_to_pass_start_seconds')} s + that pass "
            f"{watch.get('pass_start_to_last_rebased_seconds')} s "
            f"({watch['rebase_pass_actions']}).",
        ]
    lines += ["", *ratio_table(results["ratios"])]
    return "\n".join(lines)
