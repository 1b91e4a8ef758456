"""Publishing to a registry and rebasing there: ``build --publish`` of samples/python-http cold and
warm, ``rebase --publish`` (manifest only), 100 images rebased in one process, and pybuild's
``push``/``pull`` against ``skopeo copy`` of the same image; time and bytes each way for every step.

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache): the bookworm stack and the
default builder, and one build of the sample into the local store (extracts the build image's rootfs;
not counted). Then a private ``docker-registry`` (``bench/_registry.py``) on 127.0.0.1, into which:

* ``pybuild push`` puts ``pybuild/run:bookworm-1`` and ``-2`` as ``base/run:bookworm-1``/``-2``;
* **cold publish**: ``build HOST/apps/python-http --publish --run-image HOST/base/run:bookworm-1``
  (no build cache, no previous image: buildpacks run, app layers are uploaded, the base's layers are
  cross-repository mounted); **warm publish**: the same again, unchanged (``--repeat`` times,
  median) and once as a command;
* **remote rebase**: ``rebase HOST/apps/python-http --publish --run-image HOST/base/run:bookworm-2``,
  alternating -2 / -1, ``--repeat`` times in-process and as a command; and the alternative, a
  rebuild + publish over the other base (build cache on);
* **100 images**: the app's manifest written under ``--fleet`` (100) repositories twice over
  (``RegistryStore.write``: every blob mounted, not uploaded), then one process rebases the first
  100 one after the other and the second 100 with ``--concurrency`` (8) threads: images per second;
* **push / pull**: the locally built image into an empty registry with ``pybuild push`` and with
  ``skopeo copy oci:<store>`` (each into a fresh registry), and back into an empty store / layout
  with ``pybuild pull`` and ``skopeo copy``.

Bytes: the registry's access log (response bodies; request bodies derived from what it stored, see
``bench/_registry.py``) and, in-process, ``RegistryStore.stats``.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench._common import parallel, parser, workspace
from bench._pybuild import (
    command,
    median,
    median_phases,
    run_timed,
    seconds,
    setup_with_local_build,
    timed,
    timed_build,
)
from bench._registry import (
    DESCRIPTION,
    CpuClock,
    Registry,
    server_seconds,
    stats_delta,
    stats_snapshot,
)
from bench._results import REPO, latest_figures, load_average, new_results, ratio_table, report, run_facts

NAME = "registry"
SAMPLE = REPO / "samples" / "python-http"
BUILDER = "pybuild/builder:bookworm"
LOCAL_IMAGE = "bench/python-http"
SKOPEO = "skopeo"


def run(argv: list[str]) -> None:
    options = _parse(argv)
    results = new_results(
        {
            "builder": BUILDER,
            "repeat": options.repeat,
            "fleet": options.fleet,
            "concurrency": options.concurrency,
            "registry": DESCRIPTION,
        },
        app=SAMPLE,
    )
    registries: list[Registry] = []
    with workspace(NAME, options, "registry") as (home, scratch):
        try:
            results["setup"] = setup_with_local_build(BUILDER, Path(options.stack_cache), LOCAL_IMAGE, SAMPLE)
            registry = Registry(Path(options.workdir), "registry")
            registries.append(registry)
            results["registry_start_seconds"] = seconds(registry.start())
            results["cli_startup_seconds"] = seconds(median([command("--version")[0] for _ in range(3)]))
            results["push_run_images"] = _push_run_images(registry)
            results["publish"] = _publish(registry, options.repeat)
            results["rebase"] = _rebase(registry, options.repeat)
            results["fleet"] = _fleet(registry, options.fleet, options.concurrency)
            results["rebuild_instead_of_rebase"] = _rebuild(registry)
            results["registry_disk_bytes"] = registry.disk_bytes()
            if options.compare:
                results["push_pull"] = _push_pull(Path(options.workdir), scratch, home, registries)
            results["ratios"] = _ratios(results)
            results["load_average_at_end"] = load_average()
        finally:
            for registry in registries:
                registry.stop(keep=options.keep)
    report(NAME, results, summary, ("publish", "rebase", "fleet", "ratios"))


def _parse(argv: list[str]) -> argparse.Namespace:
    options = parser(NAME, __doc__)
    options.add_argument("--repeat", type=int, default=3, help="warm publishes and rebases (median; 3)")
    options.add_argument("--fleet", type=int, default=100, help="images rebased in one run (100)")
    options.add_argument("--concurrency", type=int, default=8, help="threads for the second fleet (8)")
    options.add_argument(
        "--no-compare", dest="compare", action="store_false", help="skip push/pull vs skopeo copy"
    )
    return options.parse_args(argv)


# -- steps --------------------------------------------------------------------------------------------


def _push_run_images(registry: Registry) -> dict[str, Any]:
    out = {}
    for version in (1, 2):
        print(f"pybuild push pybuild/run:bookworm-{version}", flush=True)
        mark = registry.mark()
        elapsed, _ = command("push", f"pybuild/run:bookworm-{version}", _base(registry, version))
        out[f"bookworm-{version}"] = {"seconds": seconds(elapsed), "traffic": registry.traffic(mark)}
    return out


def _publish(registry: Registry, repeat: int) -> dict[str, Any]:
    image = _app(registry)
    out: dict[str, Any] = {"image": image}
    print("publish: cold", flush=True)
    out["cold"] = _timed_publish(registry, image, _base(registry, 1))
    warm = []
    for number in range(repeat):
        print(f"publish: warm, unchanged ({number + 1}/{repeat})", flush=True)
        warm.append(_timed_publish(registry, image, _base(registry, 1)))
    out["warm"] = {
        "phases": median_phases([w["phases"] for w in warm]),
        "runs": warm,
        "digest_unchanged": len({w["digest"] for w in warm} | {out["cold"]["digest"]}) == 1,
    }
    print("publish: warm, as a command", flush=True)
    mark = registry.mark()
    elapsed, _ = command(
        "build", image, "--path", str(SAMPLE), "--run-image", _base(registry, 1), "--publish"
    )
    out["warm_command"] = {"seconds": seconds(elapsed), "traffic": registry.traffic(mark)}
    return out


def _timed_publish(registry: Registry, image: str, run_image: str) -> dict[str, Any]:
    from lifecycle.platform.targets import registry_for

    stats = registry_for(registry.host).stats
    before, mark = stats_snapshot(stats), registry.mark()
    phases, report = timed_build(f"docker://{image}", SAMPLE, run_image=run_image)
    return {
        "phases": phases,
        "digest": report.digest,
        "traffic": registry.traffic(mark),
        "registry_seconds": server_seconds(registry.completed(mark)),
        "stats": stats_delta(stats_snapshot(stats), before),
    }


def _rebase(registry: Registry, repeat: int) -> dict[str, Any]:
    from lifecycle.backends.registry import RegistryStore
    from lifecycle.platform.rebase import RebaseOptions, rebase
    from lifecycle.platform.targets import registry_for

    image = _app(registry)
    stats = registry_for(registry.host).stats
    runs: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    for number in range(repeat):
        version = 2 if number % 2 == 0 else 1
        print(f"rebase --publish onto bookworm-{version} ({number + 1}/{repeat})", flush=True)
        before, mark = stats_snapshot(stats), registry.mark()
        options = RebaseOptions(image, run_image=_base(registry, version), publish=True)
        elapsed, report = timed(functools.partial(rebase, options))
        runs.append(
            {
                "onto": f"bookworm-{version}",
                "seconds": round(elapsed, 4),
                "layer_bytes_read": report.layer_bytes_read,
                "base_layers_replaced": report.result.replaced if report.result else None,
                "layers_kept": report.result.kept if report.result else None,
                "traffic": registry.traffic(mark),
                "registry_seconds": server_seconds(registry.completed(mark)),
                "stats": stats_delta(stats_snapshot(stats), before),
            }
        )
    for number in range(repeat, 2 * repeat):
        version = 2 if number % 2 == 0 else 1
        print(f"pybuild rebase --publish (command) onto bookworm-{version}", flush=True)
        mark = registry.mark()
        elapsed, _ = command("rebase", image, "--publish", "--run-image", _base(registry, version))
        commands.append(
            {"onto": f"bookworm-{version}", "seconds": seconds(elapsed), "traffic": registry.traffic(mark)}
        )
    with RegistryStore(registry.host) as store:  # the last rebase really moved the base
        app, base = store.image(image), store.image(_base(registry, 1 if (2 * repeat - 1) % 2 else 2))
    on_new_base = app.diff_ids[: len(base.diff_ids)] == base.diff_ids
    return {
        "in_process": runs,
        "in_process_seconds": round(median([r["seconds"] for r in runs]), 4),
        "commands": commands,
        "command_seconds": seconds(median([c["seconds"] for c in commands])),
        "layer_bytes_moved_max": max(r["traffic"]["layer_bytes_moved"] for r in runs + commands),
        "layer_bytes_read_max": max(r["layer_bytes_read"] for r in runs),
        "last_rebase_on_its_base": on_new_base,
    }


def _fleet(registry: Registry, count: int, concurrency: int) -> dict[str, Any]:
    """``count`` images per fleet, made by writing the app's manifest under new names; rebase each fleet."""
    from lifecycle.backends.registry import RegistryStore
    from lifecycle.platform.rebase import RebaseOptions, rebase
    from lifecycle.platform.targets import registry_for

    host = registry.host
    fleets = {"sequential": "fleet-seq", "concurrent": "fleet-par"}
    out: dict[str, Any] = {"images_per_fleet": count}
    with RegistryStore(host) as store:
        app = store.image(_app(registry))
        current = app.annotations.get("org.opencontainers.image.base.digest", "")
        bases = {v: store.resolve(_base(registry, v)) for v in (1, 2)}
        onto = 1 if current == bases[2] else 2
        names = {
            key: [f"{prefix}/app-{n:04d}:latest" for n in range(count)] for key, prefix in fleets.items()
        }
        print(f"fleet: writing the app under {2 * count} names", flush=True)
        mark = registry.mark()
        elapsed, _ = timed(
            lambda: parallel(
                lambda name: store.write(app, [name]), [*names["sequential"], *names["concurrent"]], 8
            )
        )
        out["create"] = {
            "images": 2 * count,
            "seconds": seconds(elapsed),
            "images_per_second": round(2 * count / elapsed, 1),
            "threads": 8,
            "stats": stats_snapshot(store.stats),
            "traffic": registry.traffic(mark),
        }
    stats = registry_for(host).stats
    target = _base(registry, onto)

    def one(name: str) -> float:
        started = time.perf_counter()
        report = rebase(RebaseOptions(f"{host}/{name}", run_image=target, publish=True))
        assert report.result is not None and not report.result.up_to_date, name
        return time.perf_counter() - started

    for key, threads in (("sequential", 1), ("concurrent", concurrency)):
        print(f"fleet: rebase {count} images onto bookworm-{onto}, {threads} thread(s)", flush=True)
        before, mark, cpu = stats_snapshot(stats), registry.mark(), CpuClock(registry)
        elapsed, each = timed(functools.partial(parallel, one, names[key], threads))
        used = cpu.read()
        out[key] = {
            "cpu_seconds": {"registry": used["registry"], "pybuild": used["this_process"]},
            "threads": threads,
            "seconds": seconds(elapsed),
            "images_per_second": round(count / elapsed, 1),
            "per_image_median_ms": round(statistics.median(each) * 1000, 1),
            "per_image_max_ms": round(max(each) * 1000, 1),
            "traffic": registry.traffic(mark),
            "registry_seconds": server_seconds(registry.completed(mark)),
            "stats": stats_delta(stats_snapshot(stats), before),
        }
    out["onto"] = f"bookworm-{onto}"
    return out


def _rebuild(registry: Registry) -> dict[str, Any]:
    """What a rebase saves: rebuild and publish over the other base (cache and previous image there)."""
    from lifecycle.backends.registry import RegistryStore

    with RegistryStore(registry.host) as store:
        current = store.image(_app(registry)).annotations.get("org.opencontainers.image.base.digest", "")
        onto = 1 if current == store.resolve(_base(registry, 2)) else 2
    print(f"rebuild + publish over bookworm-{onto}", flush=True)
    figures = _timed_publish(registry, _app(registry), _base(registry, onto))
    figures["onto"] = f"bookworm-{onto}"
    return figures


def _push_pull(workdir: Path, scratch: Path, home: Path, registries: list[Registry]) -> dict[str, Any]:
    """The locally built image into an empty registry and back out into an empty store: pybuild as a
    command and in this process (no start-up), against ``skopeo copy`` (each in a fresh registry)."""
    out: dict[str, Any] = {}
    layout = f"oci:{home / 'store'}:{LOCAL_IMAGE}:latest"
    for tool in ("pybuild", "pybuild_in_process", "skopeo"):
        registry = Registry(workdir, f"registry-{tool.replace('_', '-')}")
        registries.append(registry)
        registry.start()
        ref = f"{registry.host}/apps/python-http:latest"
        empty = scratch / f"pull-{tool}"
        print(f"push ({tool}) into an empty registry, then pull it into an empty store", flush=True)
        mark = registry.mark()
        if tool == "pybuild":
            pushed, _ = command("push", LOCAL_IMAGE, ref)
        elif tool == "pybuild_in_process":
            pushed, _ = timed(functools.partial(_push_in_process, registry.host, ref))
        else:
            pushed, _ = run_timed(
                [SKOPEO, "copy", "-q", "--dest-tls-verify=false", layout, f"docker://{ref}"]
            )
        push = {"seconds": seconds(pushed), "traffic": registry.traffic(mark)}
        mark = registry.mark()
        if tool == "pybuild":
            pulled, _ = command("pull", ref, "pulled", env={"PYBUILD_HOME": str(empty)})
        elif tool == "pybuild_in_process":
            pulled, _ = timed(functools.partial(_pull_in_process, registry.host, ref, empty))
        else:
            source, target = f"docker://{ref}", f"oci:{empty}:pulled"
            pulled, _ = run_timed([SKOPEO, "copy", "-q", "--src-tls-verify=false", source, target])
        pull = {"seconds": seconds(pulled), "traffic": registry.traffic(mark)}
        shutil.rmtree(empty, ignore_errors=True)
        registry.stop()
        registries.remove(registry)
        out[tool] = {"push": push, "pull": pull}
    return out


def _push_in_process(host: str, ref: str) -> str:
    from lifecycle.backends.registry import RegistryStore
    from lifecycle.backends.store import LocalStore

    with RegistryStore(host) as store:
        return store.write(LocalStore().image(LOCAL_IMAGE), [ref])


def _pull_in_process(host: str, ref: str, home: Path) -> str:
    from lifecycle.backends.registry import RegistryStore
    from lifecycle.backends.store import LocalStore

    with RegistryStore(host) as store:
        return LocalStore(home).write(store.image(ref), ["pulled"])


# -- helpers ------------------------------------------------------------------------------------------


def _app(registry: Registry) -> str:
    return f"{registry.host}/apps/python-http:latest"


def _base(registry: Registry, version: int) -> str:
    return f"{registry.host}/base/run:bookworm-{version}"


def _ratio(a: float, b: float, digits: int = 2) -> float | None:
    return round(a / b, digits) if b else None


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    publish, rebase, fleet = results["publish"], results["rebase"], results["fleet"]
    cold, warm = publish["cold"]["phases"], publish["warm"]["phases"]
    out = {
        "warm publish / cold publish (total)": _ratio(warm["total"], cold["total"]),
        "warm publish / cold publish (registry write step)": _ratio(warm["write"], cold["write"]),
        "cold publish bytes sent / warm publish bytes sent": _ratio(
            publish["cold"]["traffic"]["client_sent_body_bytes"],
            publish["warm"]["runs"][-1]["traffic"]["client_sent_body_bytes"],
            0,
        ),
        "rebuild + publish over new base / rebase (in-process)": _ratio(
            results["rebuild_instead_of_rebase"]["phases"]["total"], rebase["in_process_seconds"], 1
        ),
        "rebase command / rebase in-process": _ratio(
            rebase["command_seconds"], rebase["in_process_seconds"], 1
        ),
        f"fleet: {fleet['concurrent']['threads']} threads / 1 thread (images/s)": _ratio(
            fleet["concurrent"]["images_per_second"], fleet["sequential"]["images_per_second"]
        ),
    }
    pp = results.get("push_pull")
    if pp:
        out["push: pybuild / skopeo (time)"] = _ratio(
            pp["pybuild"]["push"]["seconds"], pp["skopeo"]["push"]["seconds"]
        )
        out["pull: pybuild / skopeo (time)"] = _ratio(
            pp["pybuild"]["pull"]["seconds"], pp["skopeo"]["pull"]["seconds"]
        )
        out["push: pybuild in-process / skopeo (time)"] = _ratio(
            pp["pybuild_in_process"]["push"]["seconds"], pp["skopeo"]["push"]["seconds"]
        )
        out["pull: pybuild in-process / skopeo (time)"] = _ratio(
            pp["pybuild_in_process"]["pull"]["seconds"], pp["skopeo"]["pull"]["seconds"]
        )
    return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}" if n >= 10_000 else f"{n / 1e3:.1f} kB"


def summary(results: dict[str, Any]) -> str:
    setup, pub, reb, fleet = results["setup"], results["publish"], results["rebase"], results["fleet"]
    lines = [
        *latest_figures(
            f"{run_facts(results, dirty=True)}. Stack + builder {setup['stack_and_builder_seconds']:.1f} s "
            f"and a local build {setup['local_build_seconds']:.1f} s first (rootfs), not counted. Bytes are "
            "HTTP bodies (MB unless marked): sent = request bodies (derived from what the registry stored), "
            "received = response bodies (access log). Blob counts are `RegistryStore.stats` (in-process "
            "rows). "
            f"`pybuild --version` takes {results['cli_startup_seconds']:.2f} s here "
            "(start-up, in every command row)."
        ),
        "",
        "| step | time (s) | requests | sent | received | layer bytes moved "
        "| blobs uploaded / mounted / skipped |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, secs: float, traffic: dict[str, Any], stats: dict[str, int] | None = None) -> str:
        blobs = (
            f"{stats['blobs_uploaded']} / {stats['blobs_mounted']} / {stats['blobs_skipped']}"
            if stats
            else "-"
        )
        return (
            f"| {name} | {secs:.3f} | {traffic['requests']} | {_mb(traffic['client_sent_body_bytes'])} "
            f"| {_mb(traffic['client_received_body_bytes'])} | {_mb(traffic['layer_bytes_moved'])} "
            f"| {blobs} |"
        )

    for version, figures in results["push_run_images"].items():
        lines.append(
            row(f"`pybuild push` run image {version} (command)", figures["seconds"], figures["traffic"])
        )
    cold = pub["cold"]
    lines.append(
        row(
            "**cold publish** (build + upload; base mounted)",
            cold["phases"]["total"],
            cold["traffic"],
            cold["stats"],
        )
    )
    last = pub["warm"]["runs"][-1]
    lines.append(
        row(
            f"**warm publish**, unchanged (median of {len(pub['warm']['runs'])})",
            pub["warm"]["phases"]["total"],
            last["traffic"],
            last["stats"],
        )
    )
    lines.append(
        row("warm publish as a command", pub["warm_command"]["seconds"], pub["warm_command"]["traffic"])
    )
    first = reb["in_process"][0]
    lines.append(
        row(
            f"**remote rebase** in-process (median of {len(reb['in_process'])})",
            reb["in_process_seconds"],
            first["traffic"],
            first["stats"],
        )
    )
    lines.append(
        row(
            f"remote rebase as a command (median of {len(reb['commands'])})",
            reb["command_seconds"],
            reb["commands"][0]["traffic"],
        )
    )
    rb = results["rebuild_instead_of_rebase"]
    lines.append(
        row("rebuild + publish over the new base instead", rb["phases"]["total"], rb["traffic"], rb["stats"])
    )
    create = fleet["create"]
    lines.append(
        row(
            f"fleet: write the app under {create['images']} names (8 threads)",
            create["seconds"],
            create["traffic"],
            create["stats"],
        )
    )
    for key in ("sequential", "concurrent"):
        f = fleet[key]
        lines.append(
            row(
                f"**rebase {fleet['images_per_fleet']} images**, {f['threads']} thread(s): "
                f"**{f['images_per_second']} images/s**",
                f["seconds"],
                f["traffic"],
                f["stats"],
            )
        )
    pp = results.get("push_pull")
    if pp:
        names = {
            "pybuild": "`pybuild {}`",
            "pybuild_in_process": "pybuild {} in-process",
            "skopeo": "`skopeo copy`",
        }
        for tool in ("pybuild", "pybuild_in_process", "skopeo"):
            for step in ("push", "pull"):
                name = f"{names[tool].format(step)} ({step}, empty registry/store)"
                lines.append(row(name, pp[tool][step]["seconds"], pp[tool][step]["traffic"]))
    lines += [
        "",
        "Publish phases (s), cold / warm median: "
        + ", ".join(
            f"{k} {cold['phases'][k]:.2f} / {pub['warm']['phases'][k]:.2f}"
            for k in cold["phases"]
            if k in pub["warm"]["phases"] and k != "rootfs_extract"
        )
        + f". Warm digest unchanged: {pub['warm']['digest_unchanged']}. Rebase layer bytes read: "
        f"{reb['layer_bytes_read_max']}; layer-sized blob traffic during rebases: "
        f"{reb['layer_bytes_moved_max']}.",
        "",
        *ratio_table(results["ratios"]),
    ]
    return "\n".join(lines)
