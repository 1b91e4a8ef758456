"""Rebuilds of samples/python-http: cold, unchanged, and after a one-file edit, against ``docker build``.

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache) the bookworm stack and the
default builder are made once, untimed, and a warm-up build of another app extracts the build
image's root filesystem. Then, on a copy of the sample:

* **cold**: a new image name, so no previous image and an empty cache (pip downloads and installs);
* **no change**: the same image again. As a command this is answered by the whole-build reuse
  check (``===> REUSING``: inputs unchanged, nothing runs); ``--rerun`` and the in-process rows
  run every phase (restore, buildpacks skip pip, every layer reused);
* **one-file change**: ``app.py`` gains a comment line (only the app layer is new).

pybuild builds run in this process (phase by phase, through ``Phases``) and, for the unchanged
rebuild, also as a command (a new process, as a user runs it). Then a private dockerd loads our
build and run images (``pybuild save`` + ``docker load``) and builds the same app with an
equivalent multi-stage Dockerfile: ``--no-cache``, again unchanged, and after the same edit,
with BuildKit and the classic builder. Ratios compare the rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from bench._common import parser, workspace
from bench._docker import BuildTimes, builder_figures
from bench._pybuild import (
    cli,
    copy_app,
    edit_app,
    make_builder,
    median,
    median_phases,
    seconds,
    timed_build,
)
from bench._results import (
    REPO,
    best_of,
    latest_figures,
    load_average,
    new_results,
    ratio_table,
    report,
    run_facts,
)
from bench.build import BUILDER, DOCKERFILE, docker_builds

NAME = "rebuild"
SAMPLE = REPO / "samples" / "python-http"
_PHASES = ("prepare", "analyze", "detect", "restore", "build", "export", "write", "cache")


def run(argv: list[str]) -> None:
    options = _parse(argv)
    results = new_results({"repeat": options.repeat, "dockerfile": DOCKERFILE}, app=SAMPLE)
    with workspace(NAME, options, "rebuild-ctx") as (home, scratch):
        results["command_bytecode"] = _bytecode_for_commands(scratch / "pycache")
        app = copy_app(SAMPLE, scratch / "python-http" / "app")
        results["setup"] = _setup(Path(options.stack_cache))
        results["pybuild"] = _pybuild_builds(app, home, options.repeat)
        results["layer_writer"] = _layer_writer(scratch / "writer", options.repeat)
        if options.docker:
            # the same app as the pybuild rows left it, with the equivalent Dockerfile
            results["docker"] = docker_builds(options, home, scratch, app, _docker_figures)
        results["ratios"] = _ratios(results)
        results["load_average_at_end"] = load_average()
    report(NAME, results, summary, ("pybuild", "docker", "ratios"))


def _parse(argv: list[str]) -> argparse.Namespace:
    options = parser(NAME, __doc__, bridge="br-rebuild")
    options.add_argument("--repeat", type=int, default=5, help="rebuilds of each kind (median; default 5)")
    return options.parse_args(argv)


def _bytecode_for_commands(prefix: Path) -> str:
    """``pybuild`` commands load compiled modules, as an installed package does.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some shells and CI jobs) and nothing compiled
    beside the sources, every command would compile ~300 modules first (~0.1 s). Commands of this
    run write and reuse bytecode under ``prefix`` instead (the checkout stays untouched).
    """
    inherited = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    return f"cached under a PYTHONPYCACHEPREFIX (PYTHONDONTWRITEBYTECODE was {inherited or 'unset'})"


def _setup(stack_cache: Path) -> dict[str, Any]:
    """The stack, the default builder and the build image's rootfs: not part of any row."""
    stack = make_builder(BUILDER, stack_cache)
    print("warm-up build (extracts the build image's rootfs)", flush=True)
    warm_up, _ = timed_build("bench/warm-up", REPO / "samples" / "static-site")
    return {"stack_and_builder_seconds": stack.seconds, "warm_up_build": warm_up}


def _pybuild_builds(app: Path, home: Path, repeat: int) -> dict[str, Any]:
    colds, unchanged, edited = [], [], []
    same_digest = []
    for number in range(repeat):
        image = f"bench/rebuild-{number}"  # a new name: no previous image, a new (empty) cache
        print(f"pybuild: cold, unchanged, edited ({number + 1}/{repeat})", flush=True)
        shutil.rmtree(home / "cache" / "blobs", ignore_errors=True)  # cold: nothing compressed before
        phases, cold = timed_build(image, app)
        colds.append(phases)
        phases, again = timed_build(image, app)
        unchanged.append(phases)
        same_digest.append(again.digest == cold.digest)
        edit_app(app, str(number))
        edited.append(timed_build(image, app)[0])
    print("pybuild: cold and unchanged builds as commands", flush=True)
    cli("build", "bench/rebuild-cli-warm-up", "--path", str(app))  # untimed: compiles the modules once
    startup = [cli("--version") for _ in range(repeat)]
    command_cold, command, rerun = [], [], []
    for number in range(repeat):
        shutil.rmtree(home / "cache" / "blobs", ignore_errors=True)
        command_cold.append(cli("build", f"bench/rebuild-cli-{number}", "--path", str(app)))
        command.append(cli("build", f"bench/rebuild-cli-{number}", "--path", str(app)))
        rerun.append(cli("build", f"bench/rebuild-cli-{number}", "--path", str(app), "--rerun"))
    return {
        "cold_command": seconds(median(command_cold)),
        "cold": median_phases(colds, runs_total=True),
        "no_change": median_phases(unchanged, runs_total=True),
        "one_file_change": median_phases(edited, runs_total=True),
        "no_change_command": seconds(median(command)),
        "no_change_command_runs": [seconds(c) for c in command],
        "no_change_command_rerun": seconds(median(rerun)),  # every phase runs, as in-process
        "startup_command": seconds(median(startup)),  # `pybuild --version`: Python and the CLI, no build
        "no_change_same_digest_as_cold": all(same_digest),
    }


def _layer_writer(scratch: Path, repeat: int) -> dict[str, Any]:
    """How a layer is written: one pass (tar, hash, deflate, hash) against tar-to-file first.

    The tree is a fresh venv made by this machine's python3 (pip included: ~1,700 files), the
    shape of tree where per-entry tar work dominates.
    """
    import subprocess

    from lifecycle.oci.compress import compress_file, write_layer
    from lifecycle.phases.export_layers import LayerWriter, dir_fill

    tree = scratch / "venv"
    subprocess.run(["python3", "-m", "venv", str(tree)], check=True)
    fill = dir_fill(tree, "/layers/bench/venv", 1000, 1000)
    files = sum(1 for _ in tree.rglob("*"))

    def one_pass() -> None:
        write_layer(scratch / "one", fill)

    tars: list[Path] = []

    def tar_to_file() -> None:
        tars.append(LayerWriter(scratch / f"tar{len(tars)}").tar("venv", fill).path)

    def compress() -> None:
        compress_file(tars[-1], scratch / "gz")

    figures = {
        name: seconds(best_of(repeat, action)[0])
        for name, action in (
            ("one_pass", one_pass),
            ("tar_to_file", tar_to_file),
            ("compress_tar_file", compress),
        )
    }
    shutil.rmtree(scratch, ignore_errors=True)
    return {"files": files, **figures}


def _docker_figures(times: BuildTimes) -> dict[str, Any]:
    return {
        "cold": seconds(median(times.cold)),
        "no_change": seconds(median(times.cached)),
        "one_file_change": seconds(median(times.edited)),
        "runs_no_change": [seconds(w) for w in times.cached],
    }


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    ours = results["pybuild"]
    ratios = {
        "pybuild cold / no change (target >= 5)": round(
            ours["cold"]["total"] / ours["no_change"]["total"], 1
        ),
        "pybuild cold / one-file change": round(ours["cold"]["total"] / ours["one_file_change"]["total"], 1),
        "pybuild command: cold / no change": round(ours["cold_command"] / ours["no_change_command"], 1),
    }
    for builder, figures in builder_figures(results.get("docker")):
        for kind in ("cold", "no_change", "one_file_change"):
            ratios[f"pybuild / docker {builder}: {kind}"] = round(ours[kind]["total"] / figures[kind], 2)
        ratios[f"pybuild command / docker {builder}: no_change"] = round(
            ours["no_change_command"] / figures["no_change"], 2
        )
        if "no_change_command_rerun" in ours:
            ratios[f"pybuild command --rerun / docker {builder}: no_change"] = round(
                ours["no_change_command_rerun"] / figures["no_change"], 2
            )
    return ratios


def summary(results: dict[str, Any]) -> str:
    ours = results["pybuild"]
    lines = [
        *latest_figures(f"{run_facts(results)}; median of {results['inputs']['repeat']}."),
        "",
        "| pybuild (in-process, s) | prepare | analyze | detect | restore | build | export | write | cache "
        "| total |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("cold", "cold"), ("no_change", "no change"), ("one_file_change", "one-file change")):
        p = ours[key]
        lines.append(
            f"| {label} | "
            + " | ".join(f"{p.get(k, 0.0):.3f}" for k in _PHASES)
            + f" | **{p['total']:.3f}** |"
        )
    lines += [
        "",
        "As commands (`pybuild build`, a new process each, modules compiled beforehand): "
        f"cold {ours['cold_command']:.2f} s, no change {ours['no_change_command']:.2f} s "
        f"(inputs unchanged, reused; runs: {', '.join(f'{r:.2f}' for r in ours['no_change_command_runs'])}), "
        f"no change with `--rerun` (every phase runs) {ours.get('no_change_command_rerun', 0.0):.2f} s; "
        f"`pybuild --version` (Python start-up and the CLI alone) {ours.get('startup_command', 0.0):.2f} s.",
    ]
    docker = results.get("docker")
    if docker:
        lines += [
            "",
            f"docker (private dockerd, started in {docker['dockerd_start_seconds']:.1f} s):",
            "",
            "| docker build (s) | cold (`--no-cache`) | no change | one-file change | image MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for builder, figures in builder_figures(docker):
            lines.append(
                f"| {builder} | {figures['cold']:.2f} | {figures['no_change']:.2f} "
                f"| {figures['one_file_change']:.2f} | {figures['image_bytes'] / 1e6:.0f} |"
            )
    writer = results.get("layer_writer")
    if writer:
        one = writer["one_pass"]
        lines += [
            "",
            f"Writing one layer of {writer['files']:,} files (a venv with pip; best of "
            f"{results['inputs']['repeat']}): one pass (tar, diffID, deflate, digest) {one:.3f} s; "
            f"tar to a file with its diffID {writer['tar_to_file']:.3f} s "
            f"({writer['tar_to_file'] / one:.0%}: the cost of a layer whose blob is known); "
            f"compressing that file {writer['compress_tar_file']:.3f} s "
            f"(a new layer: {(writer['tar_to_file'] + writer['compress_tar_file']) / one:.0%} of one pass).",
        ]
    lines += ["", *ratio_table(results["ratios"])]
    return "\n".join(lines)
