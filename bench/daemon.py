"""The Docker daemon as a target, in one run: ``pybuild build --daemon`` of samples/python-http
(cold and unchanged) and ``pybuild rebase --daemon``, against ``docker build`` of the equivalent
Dockerfile (cold, layer cache, and after the base image changed).

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache): the bookworm stack, the default
builder, and one build of the sample into the local store (extracts the build image's rootfs; not
counted). A private dockerd (``bench/_docker.py``: own data/exec root and socket, its own bridge
``--bridge`` with ``--iptables=false``), empty at first. Then, in this process (``DOCKER_HOST`` set):

* **cold, empty daemon**: ``build docker-daemon:bench/python-http`` (no cache: buildpacks run; the
  whole image, base included, is loaded);
* **unchanged**: the same build again, ``--repeat`` times (median) and once as a command;
* **cold, base in the daemon**: a second image name (no cache; the base's layers are placeholders);
* docker: our build and run images are imported (``pybuild save`` + ``docker load``, timed apart),
  then ``docker build`` of ``bench/build.py``'s Dockerfile, with BuildKit and the classic builder:
  ``--no-cache`` and with the layer cache, ``--repeat`` times each (median);
* **rebase in the daemon**: ``rebase docker-daemon:bench/python-http --run-image
  pybuild/run:bookworm-2`` then ``-1``, alternating, ``--repeat`` times in-process and as a command
  (the first one loads the new base's layers; later ones find both bases in the daemon). Checked
  with ``docker image inspect``: app layers the same, base layers replaced. Against it, what docker
  does when the base changes: ``docker build`` with the layer cache after the final stage's base
  moved (a new base image each time: ``FROM <run image>`` + a ``LABEL``, so the cache cannot hit).

Bytes: ``DaemonStore.stats`` (archive bytes sent by ``docker load``, bytes received by ``docker
save``, layers sent / placeholders).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import parser, workspace
from bench._docker import VERSUS_DOCKER, Dockerd, builder_figures, docker_context, time_builds
from bench._pybuild import (
    base_with_layer,
    command,
    copy_app,
    edit_app,
    median,
    median_phases,
    seconds,
    setup_with_local_build,
    timed,
    timed_build,
)
from bench._results import REPO, latest_figures, load_average, new_results, ratio_table, report, run_facts
from bench.build import BUILD_IMAGE, BUILDER, DOCKERFILE, RUN_IMAGE, inputs

NAME = "daemon"
SAMPLE = REPO / "samples" / "python-http"
IMAGE = "bench/python-http:latest"
# The Dockerfile's final stage over a base we can move (a new image each time: no cache hit).
MOVABLE_BASE = "bench-base:run"
_STATS = (
    "saves",
    "saved_bytes",
    "loads",
    "load_bytes",
    "placeholders",
    "layers_sent",
    "fallbacks",
    "tag_only_writes",
)


def run(argv: list[str]) -> None:
    options = _parse(argv)
    results = new_results(inputs(options), app=SAMPLE)
    with workspace(NAME, options, "daemon") as (home, scratch):
        daemon = Dockerd(scratch, options.bridge, options.bridge_address)
        saved_host = os.environ.get("DOCKER_HOST")
        try:
            results["setup"] = setup_with_local_build(
                BUILDER, Path(options.stack_cache), "bench/python-http-local", SAMPLE
            )
            results["dockerd_start_seconds"] = seconds(daemon.start())
            os.environ["DOCKER_HOST"] = f"unix://{daemon.socket}"
            results["pybuild"] = _pybuild_builds(daemon, scratch, options.repeat)
            # before docker: -2 is not in the daemon yet
            results["rebase"] = _rebases(daemon, scratch, options.repeat)
            if options.docker:
                results["docker"] = _docker_builds(daemon, home, scratch, options)
                results["docker_base_change"] = _docker_base_change(daemon, scratch, options)
            results["ratios"] = _ratios(results)
            results["load_average_at_end"] = load_average()
        finally:
            from lifecycle.platform import targets

            for store in targets._daemon:  # the SDK client and any saved layers of this process
                store.close()
            targets._daemon.clear()
            daemon.stop()
            if saved_host is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved_host
    report(NAME, results, summary, ("pybuild", "docker", "rebase", "ratios"))


def _parse(argv: list[str]) -> argparse.Namespace:
    options = parser(NAME, __doc__, bridge="br-bench2")
    options.add_argument("--repeat", type=int, default=3, help="unchanged builds, rebases, docker builds (3)")
    options.add_argument("--bridge-address", default="172.31.252.1/24", help="its address (172.31.252.1/24)")
    return options.parse_args(argv)


# -- pybuild ------------------------------------------------------------------------------------------


def _daemon_stats() -> dict[str, int]:
    from lifecycle.platform.targets import daemon_store

    stats = daemon_store().stats
    return {name: int(getattr(stats, name)) for name in _STATS}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


@contextlib.contextmanager
def _daemon_clock() -> Iterator[dict[str, float]]:
    """Seconds spent in ``docker save`` (reading an image's layers) and ``docker load`` by this process's
    daemon store: its private ``SavedImages._save_image`` and ``DaemonStore._load`` are wrapped here
    (bench only, no lifecycle edits); absent methods are simply not timed."""
    from lifecycle.platform.targets import daemon_store

    store = daemon_store()
    spent = {"docker_save": 0.0, "docker_load": 0.0}
    patched: list[tuple[Any, str]] = []

    def wrap(owner: Any, name: str, key: str) -> None:
        inner = getattr(owner, name, None)
        if inner is None:
            return

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - started

        setattr(owner, name, timed_call)
        patched.append((owner, name))

    wrap(getattr(store, "_saved", None), "_save_image", "docker_save")
    wrap(store, "_load", "docker_load")
    try:
        yield spent
    finally:
        for owner, name in patched:
            delattr(owner, name)  # the class's method shows through again
        for key in spent:
            spent[key] = round(spent[key], 3)


def _timed_daemon_build(image: str, path: Path = SAMPLE) -> dict[str, Any]:
    before = _daemon_stats()
    with _daemon_clock() as spent:
        phases, report = timed_build(f"docker-daemon:{image}", path)
    return {
        "phases": phases,
        "image_id": report.digest,
        "daemon": _delta(_daemon_stats(), before),
        "daemon_seconds": spent,
    }


def _pybuild_builds(daemon: Dockerd, scratch: Path, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print("pybuild build --daemon: cold, empty daemon", flush=True)
    out["cold_empty_daemon"] = _timed_daemon_build(IMAGE)
    unchanged = []
    for number in range(repeat):
        print(f"pybuild build --daemon: unchanged ({number + 1}/{repeat})", flush=True)
        unchanged.append(_timed_daemon_build(IMAGE))
    out["unchanged"] = {
        "phases": median_phases([u["phases"] for u in unchanged]),
        "runs": unchanged,
        "same_image_id": len({u["image_id"] for u in unchanged} | {out["cold_empty_daemon"]["image_id"]})
        == 1,
    }
    print("pybuild build --daemon: unchanged, as a command", flush=True)
    elapsed, _ = command("build", IMAGE, "--path", str(SAMPLE), "--daemon")
    out["unchanged_command_seconds"] = seconds(elapsed)
    print("pybuild build --daemon: cold, base already in the daemon (new name, app.py edited)", flush=True)
    edited = copy_app(SAMPLE, scratch / "python-http-edited")
    edit_app(edited, "another app over the same base")
    out["cold_base_in_daemon"] = _timed_daemon_build("bench/python-http-2:latest", edited)
    out["image_bytes"] = daemon.image_size(IMAGE)
    return out


def _rebases(daemon: Dockerd, scratch: Path, repeat: int) -> dict[str, Any]:
    """First onto ``-2`` (its layers are not in the daemon yet), then onto a new base each time: ``-1``
    or ``-2`` plus a small layer of its own (as a patched base would be; no rebase can find its result
    already in the daemon), in-process and as a command."""
    from lifecycle.platform.rebase import RebaseOptions, rebase

    runs: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    current = _root_fs_of_local(RUN_IMAGE)  # the base the app was built on
    targets = ["pybuild/run:bookworm-2"] + [_round_base(scratch, n) for n in range(1, 2 * repeat)]
    for number, run_image in enumerate(targets):
        before_layers = daemon.root_fs(IMAGE)
        if number < repeat:
            print(f"pybuild rebase --daemon onto {run_image} ({number + 1}/{repeat})", flush=True)
            before = _daemon_stats()
            with _daemon_clock() as spent:
                options = RebaseOptions(f"docker-daemon:{IMAGE}", run_image=run_image)
                elapsed, report = timed(functools.partial(rebase, options))
            entry: dict[str, Any] = {
                "onto": run_image,
                "seconds": round(elapsed, 3),
                "daemon": _delta(_daemon_stats(), before),
                "daemon_seconds": spent,
                "layer_bytes_read": report.layer_bytes_read,
                "base_layers_replaced": report.result.replaced if report.result else None,
            }
        else:
            print(f"pybuild rebase --daemon onto {run_image} (command)", flush=True)
            elapsed, _ = command("rebase", IMAGE, "--daemon", "--run-image", run_image)
            entry = {"onto": run_image, "seconds": seconds(elapsed)}
        after_layers, base = daemon.root_fs(IMAGE), _root_fs_of_local(run_image)
        entry["app_layers_same"] = after_layers[len(base) :] == before_layers[len(current) :]
        entry["on_new_base"] = after_layers[: len(base)] == base and base != current
        current = base
        (runs if number < repeat else commands).append(entry)
    later = runs[1:]
    return {
        "in_process": runs,
        "first_seconds": runs[0]["seconds"],
        "in_process_seconds": seconds(median([r["seconds"] for r in later])) if later else None,
        "commands": commands,
        "command_seconds": seconds(median([c["seconds"] for c in commands])),
        "all_checked": all(e["app_layers_same"] and e["on_new_base"] for e in runs + commands),
    }


def _round_base(scratch: Path, number: int) -> str:
    """``pybuild/run:bookworm-1`` or ``-2`` (alternately) plus a layer of its own, in the local store."""
    from lifecycle.backends.store import LocalStore

    under = f"pybuild/run:bookworm-{1 if number % 2 else 2}"
    name = f"pybuild/run:bookworm-round{number}"
    base = base_with_layer(under, number, scratch / "round-layers", f"bench round {number}")
    LocalStore().write(base, [name])
    return name


def _root_fs_of_local(image: str) -> list[str]:
    from lifecycle.backends.store import LocalStore

    return list(LocalStore().image(image).diff_ids)


# -- docker -------------------------------------------------------------------------------------------


def _context(scratch: Path) -> Path:
    context = scratch / "context"
    if not context.exists():
        docker_context(copy_app(SAMPLE, context / "app").parent, DOCKERFILE)
        movable = DOCKERFILE.replace(f"\nFROM {RUN_IMAGE}\n", f"\nFROM {MOVABLE_BASE}\n")
        assert movable != DOCKERFILE, "bench/build.py's Dockerfile no longer ends FROM the run image"
        (context / "Dockerfile.movable").write_text(movable)
    return context


def _docker_builds(daemon: Dockerd, home: Path, scratch: Path, options: argparse.Namespace) -> dict[str, Any]:
    context = _context(scratch)
    images = [BUILD_IMAGE, RUN_IMAGE, "pybuild/run:bookworm-2"]
    print("docker: importing our build and run images (pybuild save + docker load)", flush=True)
    out: dict[str, Any] = {"image_import_seconds": daemon.load_from_pybuild(images, scratch, home)}
    daemon.docker("tag", RUN_IMAGE, "pybuild/run:bookworm-1")  # the same image
    for builder in options.docker:
        tag = f"bench/python-http-docker:{builder}"
        times = time_builds(daemon, context, builder, options.repeat, tag)
        out[builder] = {
            "cold": seconds(median(times.cold)),
            "cached": seconds(median(times.cached)),
            "runs_cold": [seconds(c) for c in times.cold],
            "runs_cached": [seconds(c) for c in times.cached],
            "image_bytes": daemon.image_size(tag),
        }
    return out


def _docker_base_change(daemon: Dockerd, scratch: Path, options: argparse.Namespace) -> dict[str, Any]:
    """``docker build`` with the layer cache after the final stage's base moved: docker's rebase."""
    context = _context(scratch)
    base_context = scratch / "base"
    base_context.mkdir(exist_ok=True)
    out: dict[str, Any] = {}
    round_number = 0

    def new_base(version: int) -> None:
        nonlocal round_number
        round_number += 1
        (base_context / "Dockerfile").write_text(
            f"FROM pybuild/run:bookworm-{version}\nLABEL bench.round={round_number}\n"
        )
        daemon.docker(
            "build", "--pull=false", "-q", "-t", MOVABLE_BASE, ".", cwd=base_context, buildkit=False
        )

    for builder in options.docker:
        tag, dockerfile = f"bench/moved:{builder}", context / "Dockerfile.movable"
        new_base(1)
        print(f"docker build ({builder}): over bench-base, then after each base change", flush=True)
        daemon.build(context, tag, builder, dockerfile=dockerfile)  # warms the build stage's cache
        runs = []
        for number in range(options.repeat):
            new_base(2 if number % 2 == 0 else 1)
            runs.append(daemon.build(context, tag, builder, dockerfile=dockerfile))
        out[builder] = {"seconds": seconds(median(runs)), "runs": [seconds(r) for r in runs]}
    return out


# -- report -------------------------------------------------------------------------------------------


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    """pybuild seconds / docker seconds: below 1 means pybuild is faster."""
    ours, rebase = results["pybuild"], results["rebase"]
    out: dict[str, float] = {}
    for builder, figures in builder_figures(results.get("docker")):
        pairs = {
            f"build, cold, base in the daemon / docker {builder} --no-cache": (
                ours["cold_base_in_daemon"]["phases"]["total"],
                figures["cold"],
            ),
            f"build, cold, empty daemon / docker {builder} --no-cache (its bases loaded before)": (
                ours["cold_empty_daemon"]["phases"]["total"],
                figures["cold"],
            ),
            f"build, unchanged / docker {builder} layer cache": (
                ours["unchanged"]["phases"]["total"],
                figures["cached"],
            ),
            f"build, unchanged, command / docker {builder} layer cache": (
                ours["unchanged_command_seconds"],
                figures["cached"],
            ),
        }
        moved = results.get("docker_base_change", {}).get(builder)
        if moved:
            after_first = rebase["in_process_seconds"]
            if after_first is not None:
                pairs[f"rebase onto a new base / docker {builder} rebuild after base change"] = (
                    after_first,
                    moved["seconds"],
                )
            pairs[f"rebase, command / docker {builder} rebuild after base change"] = (
                rebase["command_seconds"],
                moved["seconds"],
            )
            pairs[f"first rebase (base not in the daemon) / docker {builder} rebuild after base change"] = (
                rebase["first_seconds"],
                moved["seconds"],
            )
        out.update({name: round(a / b, 2) for name, (a, b) in pairs.items() if b})
    return out


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def summary(results: dict[str, Any]) -> str:
    setup, ours, rebase = results["setup"], results["pybuild"], results["rebase"]
    lines = [
        *latest_figures(
            f"{run_facts(results, dirty=True)}. Stack + builder {setup['stack_and_builder_seconds']:.1f} s "
            f"and a local build {setup['local_build_seconds']:.1f} s (rootfs) first, not counted; private "
            f"dockerd started in {results['dockerd_start_seconds']:.1f} s. The app image in the daemon: "
            f"{ours['image_bytes'] / 1e6:.0f} MB. In-process rows time `build()` / `rebase()` in the "
            "benchmark's process; command rows run `pybuild` (~0.4-0.5 s of it is Python start-up and "
            "imports)."
        ),
        "",
        "| pybuild, into the daemon | total (s) | buildpacks (s) | docker save / load (s) | loads "
        "| sent to daemon (MB) | layers sent / placeholders | saved from daemon (MB) | tag only |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, total: float, entry: dict[str, Any] | None = None) -> str:
        if entry is None:
            return f"| {name} | {total:.2f} | - | - | - | - | - | - | - |"
        phases, d, spent = entry.get("phases"), entry["daemon"], entry["daemon_seconds"]
        build = f"{phases['build']:.2f}" if phases and "build" in phases else "-"
        return (
            f"| {name} | {total:.2f} | {build} | {spent['docker_save']:.2f} / {spent['docker_load']:.2f} "
            f"| {d['loads']} | {_mb(d['load_bytes'])} | {d['layers_sent']} / {d['placeholders']} "
            f"| {_mb(d['saved_bytes'])} | {d['tag_only_writes']} |"
        )

    cold, unchanged, cold2 = ours["cold_empty_daemon"], ours["unchanged"], ours["cold_base_in_daemon"]
    lines.append(row("**build, cold, empty daemon**", cold["phases"]["total"], cold))
    lines.append(
        row(
            f"**build, unchanged** (median of {len(unchanged['runs'])}; last shown)",
            unchanged["phases"]["total"],
            unchanged["runs"][-1],
        )
    )
    lines.append(row("build, unchanged, as a command", ours["unchanged_command_seconds"]))
    lines.append(row("**build, cold, base in the daemon** (other app)", cold2["phases"]["total"], cold2))
    for number, r in enumerate(rebase["in_process"]):
        what = "(not in the daemon)" if number == 0 else "(+ a layer of its own)"
        lines.append(row(f"**rebase** onto `{r['onto'].split(':')[1]}` {what}", r["seconds"], r))
    lines.append(
        row(
            f"rebase onto a new base, as a command (median of {len(rebase['commands'])})",
            rebase["command_seconds"],
        )
    )
    docker = results.get("docker")
    if docker:
        moved = results.get("docker_base_change", {})
        lines += [
            "",
            "docker (importing our images, not counted: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in docker["image_import_seconds"].items())
            + "), median of "
            f"{results['inputs']['repeat']}:",
            "",
            "| docker build | `--no-cache` (s) | layer cache, unchanged (s) | layer cache, base changed (s) "
            "| image MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for builder, figures in builder_figures(docker):
            changed = moved.get(builder, {}).get("seconds")
            lines.append(
                f"| {builder} | {figures['cold']:.2f} | {figures['cached']:.2f} "
                f"| {changed if changed is not None else '-'} | {figures['image_bytes'] / 1e6:.0f} |"
            )
    lines += [
        "",
        "Rebase checks (`docker image inspect`: app layers the same, base layers replaced): "
        f"{rebase['all_checked']}. The unchanged build gives the same image ID: "
        f"{unchanged['same_image_id']}.",
        "",
        *ratio_table(results["ratios"], VERSUS_DOCKER, ".2f"),
    ]
    return "\n".join(lines)
