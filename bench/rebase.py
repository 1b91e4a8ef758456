"""``pybuild rebase`` onto a patched run image, against rebuilding: ``pybuild build`` and
``docker build`` after the base image changed; a ~10 MB and a ~1 GB app on each stack.

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache), for each stack (``tiny``:
``pybuild/builder:tiny``; ``bookworm``: the default builder): generate two apps in a temp dir
(a Procfile plus files of random bytes: incompressible, so the app layer is as big compressed as
on disk), build each through buildpacks, then rebase it back and forth between
``pybuild/run:<stack>-2`` and ``pybuild/run:<stack>-1`` (``--run-image``; median of 5; in-process
and as a command), recording the layer bytes each rebase read (must be 0). Then rebuild the app
over ``-2`` with ``pybuild build``. A private dockerd then builds the equivalent Dockerfile
(``FROM bench-base:<stack>`` + ``COPY`` of the app) over ``-1``, tags ``-2`` under the same name and
builds again, with BuildKit and the classic builder. The 1 GB / 10 MB ratio of rebase times
shows whether rebase grows with the app. ``python -m bench rebase -- --large-mb 200`` is quicker.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
from pathlib import Path
from typing import Any

from bench._common import comma_list, parser, workspace
from bench._docker import Dockerd, dockerd
from bench._pybuild import cli, make_builder, median, seconds, timed, timed_build
from bench._results import latest_figures, load_average, new_results, ratio_table, report, run_facts

NAME = "rebase"
BUILDERS = {"tiny": "pybuild/builder:tiny", "bookworm": "pybuild/builder:bookworm"}
_FILE = 64 << 20  # the app's data files are at most this big
_CHUNK = 1 << 20
PROCFILE = "web: ls -la /workspace/data\n"
DOCKERFILE = """\
FROM bench-base:{stack}
COPY --chown=1000:1000 . /workspace/
WORKDIR /workspace
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c", "ls -la /workspace/data"]
"""


def run(argv: list[str]) -> None:
    options = _parse(argv)
    sizes = sorted({options.small_mb, options.large_mb})
    results = new_results(
        {
            "stacks": options.stacks,
            "app_mb": sizes,
            "repeat": options.repeat,
            "docker_builders": options.docker,
            "app": "Procfile + files of random bytes, built through buildpacks (procfile buildpack)",
            "dockerfile": DOCKERFILE,
        }
    )
    with workspace(NAME, options, "rebase-apps") as (home, scratch):
        # Different bytes per stack: pybuild never compresses a known layer twice, and the second
        # stack's first build must not reuse the first stack's app blob.
        apps = {
            stack: {size: _make_app(scratch / f"app-{stack}-{size}mb", size, stack) for size in sizes}
            for stack in options.stacks
        }
        results["setup"] = _setup(options.stacks, Path(options.stack_cache))
        results["stacks"] = {
            stack: _pybuild_stack(stack, apps[stack], options.repeat) for stack in options.stacks
        }
        if options.docker:
            results["docker"] = _docker_cases(home, scratch, apps, options)
        results["ratios"] = _ratios(results, sizes)
        results["load_average_at_end"] = load_average()
    report(NAME, results, summary, ("setup", "stacks", "docker", "ratios"))


def _parse(argv: list[str]) -> argparse.Namespace:
    options = parser(NAME, __doc__, bridge="br-bench")
    options.add_argument("--stacks", type=comma_list, default=["tiny", "bookworm"], help="comma-separated")
    options.add_argument("--small-mb", type=int, default=10, help="the small app's data (default 10)")
    options.add_argument("--large-mb", type=int, default=1024, help="the large app's data (default 1024)")
    options.add_argument("--repeat", type=int, default=5, help="rebases per app, alternating (median; 5)")
    return options.parse_args(argv)


# -- the apps ----------------------------------------------------------------------------------------


def _make_app(root: Path, size_mb: int, seed: str) -> Path:
    """A Procfile and ``size_mb`` MiB of random bytes in files of at most 64 MiB."""
    rng = random.Random(f"{seed}-{size_mb}")
    data = root / "data"
    data.mkdir(parents=True)
    (root / "Procfile").write_text(PROCFILE)
    budget, number = size_mb << 20, 0
    while budget > 0:
        size = min(_FILE, budget)
        with (data / f"blob{number:03}.bin").open("wb") as out:
            for offset in range(0, size, _CHUNK):
                out.write(rng.randbytes(min(_CHUNK, size - offset)))
        budget, number = budget - size, number + 1
    return root


# -- pybuild -------------------------------------------------------------------------------------------


def _setup(stacks: list[str], stack_cache: Path) -> dict[str, Any]:
    """Each stack and its builder, once: not part of any timing below."""
    made = [make_builder(BUILDERS[stack], stack_cache, print) for stack in stacks]
    out: dict[str, Any] = {
        f"{stack}_stack_and_builder_seconds": setup.seconds for stack, setup in zip(stacks, made, strict=True)
    }
    out["mmdebstrap_tarballs_cached_before"] = made[0].tarballs_before if made else 0
    out["mmdebstrap_ran"] = any(setup.mmdebstrap_ran for setup in made)
    return out


def _pybuild_stack(stack: str, apps: dict[int, Path], repeat: int) -> dict[str, Any]:
    """Build every app, then rebase them in turn (so drifting load hits every size alike), then rebuild."""
    from lifecycle.backends.store import LocalStore

    builder = BUILDERS[stack]
    old, new = f"pybuild/run:{stack}-1", f"pybuild/run:{stack}-2"
    store = LocalStore()
    base = store.image(old)
    cases: dict[int, dict[str, Any]] = {}
    for size, app in apps.items():
        image = f"bench/rebase-{stack}-{size}mb"
        print(f"{stack} {size} MB: pybuild build over {old}", flush=True)
        first, _ = timed_build(image, app, builder=builder, run_image=old)
        above_base = store.image(image).layers[len(base.layers) :]
        cases[size] = {"image": image, "above_base": above_base, "build": first, "runs": [], "commands": []}
    os.sync()  # the builds' dirty pages (GBs) are written back now, not during the rebases
    for number in range(repeat):
        target = new if number % 2 == 0 else old  # -2, -1, -2, ...: every rebase changes the base
        for case in cases.values():
            case["runs"].append(_rebase_once(case["image"], target, len(base.layers), case["above_base"]))
    for number in range(repeat, 2 * repeat):  # go on alternating from where the loop above stopped
        target = new if number % 2 == 0 else old
        for case in cases.values():
            case["commands"].append(cli("rebase", case["image"], "--run-image", target))
    out: dict[str, Any] = {}
    for size, case in cases.items():
        runs, commands = case["runs"], case["commands"]
        print(f"{stack} {size} MB: rebase x{repeat} in-process: {[r['seconds'] for r in runs]}", flush=True)
        # The rebuild a rebase saves: the same app over the new base, with buildpacks.
        print(f"{stack} {size} MB: pybuild build over {new}", flush=True)
        rebuilt, _ = timed_build(case["image"], apps[size], builder=builder, run_image=new)
        rebased = median([r["seconds"] for r in runs])
        out[f"{size}mb"] = {
            "app_data_bytes": size << 20,
            "layers_above_base": len(case["above_base"]),
            "bytes_above_base": sum(layer.size for layer in case["above_base"]),
            "build": case["build"],
            "rebase_seconds": round(rebased, 6),
            "rebase_min_seconds": min(r["seconds"] for r in runs),
            "rebase_runs": runs,
            "rebase_layer_bytes_read_max": max(r["layer_bytes_read"] for r in runs),
            "rebase_cli_seconds": seconds(median(commands)),
            "rebase_cli_runs": [seconds(c) for c in commands],
            "rebuild_after_base_change": rebuilt,
            "rebuild_over_rebase": round(rebuilt["total"] / rebased, 1),
        }
    return out


def _rebase_once(image: str, target: str, base_layers: int, above_base: list[Any]) -> dict[str, Any]:
    """One in-process rebase, checked: new base layer, the same layers above it, no layer read."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.platform.rebase import RebaseOptions, rebase

    elapsed, report = timed(functools.partial(rebase, RebaseOptions(image, run_image=target)))
    result = report.result
    store = LocalStore()
    now = store.image(image)
    return {
        "onto": target,
        "seconds": round(elapsed, 6),
        "layer_bytes_read": report.layer_bytes_read,
        "base_layers_replaced": result.replaced if result else None,
        "layers_kept": result.kept if result else None,
        "changed": not (result and result.up_to_date),
        "on_new_base": now.layers[0].diff_id == store.image(target).layers[0].diff_id,
        "app_layers_same": [layer.diff_id for layer in now.layers[base_layers:]]
        == [layer.diff_id for layer in above_base],
    }


# -- docker ------------------------------------------------------------------------------------------


def _docker_cases(
    home: Path, scratch: Path, apps: dict[str, dict[int, Path]], options: argparse.Namespace
) -> dict[str, Any]:
    images = [f"pybuild/run:{stack}-{version}" for stack in options.stacks for version in (1, 2)]
    with dockerd(scratch, options.bridge, images, home) as (daemon, out):
        for stack in options.stacks:
            out[stack] = {}
            for size, app in apps[stack].items():
                out[stack][f"{size}mb"] = {
                    builder: _docker_case(daemon, scratch, stack, size, app, builder)
                    for builder in options.docker
                }
    return out


def _docker_case(
    daemon: Dockerd, scratch: Path, stack: str, size: int, app: Path, builder: str
) -> dict[str, Any]:
    dockerfile = scratch / f"Dockerfile.{stack}"
    dockerfile.write_text(DOCKERFILE.format(stack=stack))
    tag = f"bench/rebase-{stack}-{size}mb-docker:{builder}"
    print(f"{stack} {size} MB: docker build ({builder}) over -1, then over -2 tagged the same", flush=True)
    daemon.docker("tag", f"pybuild/run:{stack}-1", f"bench-base:{stack}")
    cold = daemon.build(app, tag, builder, no_cache=True, dockerfile=dockerfile, host_network=False)
    daemon.docker("tag", f"pybuild/run:{stack}-2", f"bench-base:{stack}")
    # layer cache on: only the base changed
    rebuilt = daemon.build(app, tag, builder, dockerfile=dockerfile, host_network=False)
    figures: dict[str, Any] = {"build_cold": seconds(cold), "rebuild_after_base_change": seconds(rebuilt)}
    figures["rebuilt_on_new_base"] = daemon.root_fs(tag)[0] == daemon.root_fs(f"pybuild/run:{stack}-2")[0]
    daemon.remove(tag)
    return figures


# -- report ------------------------------------------------------------------------------------------


def _ratios(results: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    small, large = f"{sizes[0]}mb", f"{sizes[-1]}mb"
    ratios: dict[str, Any] = {}
    for stack, cases in results["stacks"].items():
        ratios[f"{stack}: rebase {large} / rebase {small}"] = round(
            cases[large]["rebase_seconds"] / cases[small]["rebase_seconds"], 2
        )
        ratios[f"{stack}: rebase {large} / rebase {small}, fastest of each"] = round(
            cases[large]["rebase_min_seconds"] / cases[small]["rebase_min_seconds"], 2
        )
        ratios[f"{stack}: rebase cli {large} / {small}"] = round(
            cases[large]["rebase_cli_seconds"] / cases[small]["rebase_cli_seconds"], 2
        )
        for size, case in cases.items():
            ratios[f"{stack} {size}: pybuild rebuild / rebase"] = case["rebuild_over_rebase"]
            docker = results.get("docker", {}).get(stack, {}).get(size, {})
            for builder, figures in docker.items():
                ratios[f"{stack} {size}: docker {builder} rebuild / pybuild rebase command"] = round(
                    figures["rebuild_after_base_change"] / case["rebase_cli_seconds"], 1
                )
    return ratios


def summary(results: dict[str, Any]) -> str:
    setup = results["setup"]
    made = ", ".join(
        f"{key.split('_')[0]} {value:.1f} s"
        for key, value in setup.items()
        if key.endswith("builder_seconds")
    )
    lines = [
        *latest_figures(
            f"{run_facts(results)}. Stacks + builders made once, not counted: {made}. "
            f"Rebase: median of {results['inputs']['repeat']}, alternating `--run-image` -2 / -1."
        ),
        "",
        "| stack | app | above base (MB) | build | rebase (in-process) | rebase (command) "
        "| layer bytes read | pybuild rebuild | docker rebuild (buildkit / classic) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    docker = results.get("docker", {})
    for stack, cases in results["stacks"].items():
        for size, case in cases.items():
            builds = docker.get(stack, {}).get(size, {})
            rebuilds = " / ".join(
                f"{figures['rebuild_after_base_change']:.2f}" for figures in builds.values()
            )
            lines.append(
                f"| {stack} | {case['app_data_bytes'] >> 20} MiB | {case['bytes_above_base'] / 1e6:.0f} "
                f"| {case['build']['total']:.2f} | **{case['rebase_seconds'] * 1000:.1f} ms** "
                f"| {case['rebase_cli_seconds'] * 1000:.0f} ms | {case['rebase_layer_bytes_read_max']} "
                f"| {case['rebuild_after_base_change']['total']:.2f} | {rebuilds or '-'} |"
            )
    lines += ["", "Times in seconds unless marked. Ratios:", "", *ratio_table(results["ratios"])]
    return "\n".join(lines)
