"""Rebuilds of samples/python-http: cold, unchanged, and after a one-file edit, against ``docker build``.

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache) the bookworm stack and the
default builder are made once, untimed, and a warm-up build of another app extracts the build
image's root filesystem. Then, on a copy of the sample:

* **cold**: a new image name, so no previous image and an empty cache (pip downloads and installs);
* **no change**: the same image again (restore, buildpacks skip pip, every layer reused);
* **one-file change**: ``app.py`` gains a comment line (only the app layer is new).

pybuild builds run in this process (phase by phase, through ``Phases``) and, for the unchanged
rebuild, also as a command (a new process, as a user runs it). Then a private dockerd loads our
build and run images (``pybuild save`` + ``docker load``) and builds the same app with an
equivalent multi-stage Dockerfile: ``--no-cache``, again unchanged, and after the same edit,
with BuildKit and the classic builder. Ratios compare the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench._docker import dockerd
from bench._pybuild import (
    DEFAULT_STACK_CACHE,
    DEFAULT_WORKDIR,
    REPO,
    checkout,
    cli,
    fresh_home,
    load_average,
    median,
    remove_tree,
    seconds,
    timed,
    timed_build,
)
from bench._results import best_of, machine, update_readme, write_results

NAME = "rebuild"
SAMPLE = REPO / "samples" / "python-http"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
_PHASES = ("prepare", "analyze", "detect", "restore", "build", "export", "write", "cache")

# What the python buildpack does, as a Dockerfile: a venv without pip in /layers, filled by the
# build image's pip with the buildpack's pip settings; then the venv and the app over the run image.
DOCKERFILE = """\
FROM pybuild/build:bookworm AS build
USER root
# egress TLS is intercepted here: pip needs the host's CA bundle (pybuild binds it into the sandbox)
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off \\
    SOURCE_DATE_EPOCH=315532801
COPY app/requirements.txt /workspace/requirements.txt
RUN python3 -m venv --without-pip /layers/venv \\
 && python3 -m pip --python /layers/venv/bin/python install -r /workspace/requirements.txt

FROM pybuild/run:bookworm
COPY --from=build /layers/venv /layers/venv
COPY app/ /workspace/
WORKDIR /workspace
ENV VIRTUAL_ENV=/layers/venv PYTHONUNBUFFERED=1
USER 1000:1000
ENTRYPOINT ["/layers/venv/bin/python", "app.py"]
"""


def run(argv: list[str]) -> None:
    options = _parse(argv)
    workdir = Path(options.workdir)
    results: dict[str, Any] = {
        "load_average_at_start": load_average(),
        "machine": machine(),
        "checkout": checkout(),
        "inputs": {"app": str(SAMPLE.relative_to(REPO)), "repeat": options.repeat, "dockerfile": DOCKERFILE},
    }
    home = fresh_home(workdir, NAME, Path(options.stack_cache))
    scratch = Path(tempfile.mkdtemp(prefix="pybuild-bench-rebuild-ctx-", dir=workdir))
    results["command_bytecode"] = _bytecode_for_commands(scratch / "pycache")
    try:
        app = scratch / "context" / "app"
        shutil.copytree(SAMPLE, app, ignore=shutil.ignore_patterns("__pycache__"))
        results["setup"] = _setup()
        results["pybuild"] = _pybuild_builds(app, home, options.repeat)
        results["layer_writer"] = _layer_writer(scratch / "writer", options.repeat)
        if options.docker:
            results["docker"] = _docker_builds(home, scratch, options)
        results["ratios"] = _ratios(results)
        results["load_average_at_end"] = load_average()
    finally:
        if not options.keep:
            remove_tree(home)
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({k: results[k] for k in ("pybuild", "docker", "ratios") if k in results}, indent=2))
    path = write_results(NAME, results)
    update_readme(NAME, summary(results))
    print(f"wrote {path} and bench/README.md")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench rebuild", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="rebuilds of each kind (median; default 5)")
    parser.add_argument(
        "--docker",
        default="buildkit,classic",
        type=lambda text: [part for part in text.split(",") if part],
        help="docker builders to compare, comma-separated: buildkit, classic ('' for none)",
    )
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="fresh homes and dockerd go here")
    parser.add_argument("--stack-cache", default=str(DEFAULT_STACK_CACHE), help="persistent mmdebstrap cache")
    parser.add_argument("--bridge", default="br-rebuild", help="bridge for the private dockerd")
    parser.add_argument("--keep", action="store_true", help="keep the pybuild home (for debugging)")
    return parser.parse_args(argv)


def _bytecode_for_commands(prefix: Path) -> str:
    """``pybuild`` commands load compiled modules, as an installed package does.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some shells and CI jobs) and nothing compiled
    beside the sources, every command would compile ~300 modules first (~0.1 s). Commands of this
    run write and reuse bytecode under ``prefix`` instead (the checkout stays untouched).
    """
    inherited = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    return f"cached under a PYTHONPYCACHEPREFIX (PYTHONDONTWRITEBYTECODE was {inherited or 'unset'})"


def _setup() -> dict[str, Any]:
    """The stack, the default builder and the build image's rootfs: not part of any row."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.platform.defaults import ensure_builder

    elapsed, _ = timed(lambda: ensure_builder("pybuild/builder:bookworm", LocalStore(), lambda _: None))
    print("warm-up build (extracts the build image's rootfs)", flush=True)
    warm_up, _ = timed_build("bench/warm-up", REPO / "samples" / "static-site")
    return {"stack_and_builder_seconds": seconds(elapsed), "warm_up_build": warm_up}


def _edit(app: Path, number: int) -> None:
    with (app / "app.py").open("a") as source:
        source.write(f"# edit {number}\n")


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
        _edit(app, number)
        edited.append(timed_build(image, app)[0])
    print("pybuild: cold and unchanged builds as commands", flush=True)
    cli("build", "bench/rebuild-cli-warm-up", "--path", str(app))  # untimed: compiles the modules once
    startup = [cli("--version") for _ in range(repeat)]
    command_cold, command = [], []
    for number in range(repeat):
        shutil.rmtree(home / "cache" / "blobs", ignore_errors=True)
        command_cold.append(cli("build", f"bench/rebuild-cli-{number}", "--path", str(app)))
        command.append(cli("build", f"bench/rebuild-cli-{number}", "--path", str(app)))
    return {
        "cold_command": seconds(median(command_cold)),
        "cold": _median_phases(colds),
        "no_change": _median_phases(unchanged),
        "one_file_change": _median_phases(edited),
        "no_change_command": seconds(median(command)),
        "no_change_command_runs": [seconds(c) for c in command],
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


def _median_phases(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = sorted({key for run in runs for key in run})
    out: dict[str, Any] = {key: seconds(median([r.get(key, 0.0) for r in runs])) for key in keys}
    out["runs_total"] = [r["total"] for r in runs]
    return out


def _docker_builds(home: Path, scratch: Path, options: argparse.Namespace) -> dict[str, Any]:
    context = scratch / "context"
    (context / "Dockerfile").write_text(DOCKERFILE)
    shutil.copyfile(HOST_CA, context / "host-ca.crt")
    out: dict[str, Any] = {}
    with dockerd(scratch, options.bridge) as (daemon, started):
        out["dockerd_start_seconds"] = seconds(started)
        loads = daemon.load_from_pybuild(["pybuild/build:bookworm", "pybuild/run:bookworm"], scratch, home)
        out["image_import_seconds"] = {key: seconds(value) for key, value in loads.items()}
        for builder in options.docker:
            buildkit = builder == "buildkit"
            tag = f"bench/python-http-docker:{builder}"
            build = ["build", "--pull=false", "--network=host", "-t", tag, "."]
            cold, warm, edited = [], [], []
            for number in range(options.repeat):
                print(
                    f"docker ({builder}): cold, unchanged, edited ({number + 1}/{options.repeat})", flush=True
                )
                cold.append(
                    daemon.timed(*build[:1], "--no-cache", *build[1:], cwd=context, buildkit=buildkit)
                )
                warm.append(daemon.timed(*build, cwd=context, buildkit=buildkit))
                _edit(context / "app", 100 + number)
                edited.append(daemon.timed(*build, cwd=context, buildkit=buildkit))
            out[builder] = {
                "cold": seconds(median(cold)),
                "no_change": seconds(median(warm)),
                "one_file_change": seconds(median(edited)),
                "runs_no_change": [seconds(w) for w in warm],
                "image_bytes": daemon.image_size(tag),
            }
            daemon.docker("image", "rm", "-f", tag)
            daemon.docker("builder", "prune", "-af")
    return out


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    ours = results["pybuild"]
    ratios = {
        "pybuild cold / no change (target >= 5)": round(
            ours["cold"]["total"] / ours["no_change"]["total"], 1
        ),
        "pybuild cold / one-file change": round(ours["cold"]["total"] / ours["one_file_change"]["total"], 1),
        "pybuild command: cold / no change": round(ours["cold_command"] / ours["no_change_command"], 1),
    }
    for builder, figures in results.get("docker", {}).items():
        if not isinstance(figures, dict) or "cold" not in figures:
            continue
        for kind in ("cold", "no_change", "one_file_change"):
            ratios[f"pybuild / docker {builder}: {kind}"] = round(ours[kind]["total"] / figures[kind], 2)
        ratios[f"pybuild command / docker {builder}: no_change"] = round(
            ours["no_change_command"] / figures["no_change"], 2
        )
    return ratios


def summary(results: dict[str, Any]) -> str:
    info, ours = results["machine"], results["pybuild"]
    lines = [
        "### Latest figures",
        "",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}; load average at start "
        f"{' / '.join(map(str, results['load_average_at_start']))} (1/5/15 min); commit "
        f"{results['checkout']['commit']}; median of {results['inputs']['repeat']}.",
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
        f"(runs: {', '.join(f'{r:.2f}' for r in ours['no_change_command_runs'])}); "
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
        for builder, figures in docker.items():
            if isinstance(figures, dict) and "cold" in figures:
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
    lines += ["", "| ratio | |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in results["ratios"].items()]
    return "\n".join(lines)
