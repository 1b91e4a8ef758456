"""``pybuild build`` of samples/python-http with the default builder, phase by phase, against
``docker build`` of the same app (multi-stage Dockerfile FROM our bookworm build image).

In a fresh ``PYBUILD_HOME`` (stack tarballs from a persistent cache): make the bookworm stack and
the default builder (timed once, apart), then build in this process, timing each phase through the
``Phases`` callbacks: the first build (the build image's rootfs is extracted), a second build of a
new image name (warm rootfs cache, no previous image), and a rebuild of that image (previous image
present). Then a private dockerd loads our build and run images (``pybuild save`` + ``docker load``)
and runs ``docker build`` cold (``--no-cache``) and again with its layer cache, with BuildKit and
with the classic builder. ``python -m bench build -- --repeat 2`` repeats the warm builds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench._docker import dockerd
from bench._pybuild import (
    DEFAULT_STACK_CACHE,
    DEFAULT_WORKDIR,
    REPO,
    STEPS,
    cached_tarballs,
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
from bench._results import machine, update_readme, write_results

NAME = "build"
SAMPLE = REPO / "samples" / "python-http"
BUILD_IMAGE = "pybuild/build:bookworm"
RUN_IMAGE = "pybuild/run:bookworm"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

# The same steps the default builder's python buildpack (buildpacks/python/bin/build) takes, as a
# Dockerfile: a venv in /layers with the buildpack's pip settings, then the venv and the app over
# the run image. Keep it in step with the buildpack.
DOCKERFILE = """\
FROM pybuild/build:bookworm AS build
USER root
# egress TLS is intercepted here: pip needs the host's CA bundle (pybuild binds it into the sandbox)
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off \\
    SOURCE_DATE_EPOCH=315532801
COPY app/requirements.txt /workspace/requirements.txt
# as the buildpack does with pip >= 22.3: a venv without pip, filled by the image's own pip
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
        "inputs": {
            "app": str(SAMPLE.relative_to(REPO)),
            "builder": "pybuild/builder:bookworm",
            "repeat": options.repeat,
            "docker_builders": options.docker,
            "dockerfile": DOCKERFILE,
        },
    }
    home = fresh_home(workdir, NAME, Path(options.stack_cache))
    scratch = Path(tempfile.mkdtemp(prefix="pybuild-bench-build-ctx-", dir=workdir))
    try:
        results["setup"] = _setup(Path(options.stack_cache))
        results["pybuild"] = _pybuild_builds(options.repeat)
        if options.docker:
            results["docker"] = _docker_builds(home, scratch, options)
        results["ratios"] = _ratios(results)
        results["load_average_at_end"] = load_average()
    finally:
        if not options.keep:
            remove_tree(home)
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        json.dumps(
            {k: results[k] for k in ("setup", "pybuild", "docker", "ratios") if k in results}, indent=2
        )
    )
    path = write_results(NAME, results)
    update_readme(NAME, summary(results))
    print(f"wrote {path} and bench/README.md")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench build", description=__doc__)
    parser.add_argument(
        "--repeat", type=int, default=3, help="warm builds and docker builds of each kind (median; default 3)"
    )
    parser.add_argument(
        "--docker",
        default="buildkit,classic",
        type=lambda text: [part for part in text.split(",") if part],
        help="docker builders to compare, comma-separated: buildkit, classic ('' for none)",
    )
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="fresh homes and dockerd go here")
    parser.add_argument("--stack-cache", default=str(DEFAULT_STACK_CACHE), help="persistent mmdebstrap cache")
    parser.add_argument("--bridge", default="br-bench", help="bridge for the private dockerd")
    parser.add_argument("--keep", action="store_true", help="keep the pybuild home (for debugging)")
    return parser.parse_args(argv)


def _setup(stack_cache: Path) -> dict[str, Any]:
    """The stack and default builder, once: not part of any build's time."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.platform.defaults import ensure_builder

    tarballs = cached_tarballs(stack_cache)
    print(f"stack + builder ({len(tarballs)} cached mmdebstrap tarballs)", flush=True)
    elapsed, _ = timed(lambda: ensure_builder("pybuild/builder:bookworm", LocalStore(), lambda _: None))
    return {
        "stack_and_builder_seconds": seconds(elapsed),
        "mmdebstrap_tarballs_cached_before": len(tarballs),
        "mmdebstrap_ran": len(cached_tarballs(stack_cache)) > len(tarballs),
    }


def _pybuild_builds(repeat: int) -> dict[str, Any]:
    print("pybuild build: first (rootfs extraction)", flush=True)
    first, _ = timed_build("bench/python-http-first", SAMPLE)
    fresh, again = [], []
    for number in range(repeat):
        print(f"pybuild build: warm rootfs, new image ({number + 1}/{repeat})", flush=True)
        fresh.append(timed_build(f"bench/python-http-{number}", SAMPLE)[0])
        print(f"pybuild build: rebuild over previous image ({number + 1}/{repeat})", flush=True)
        again.append(timed_build(f"bench/python-http-{number}", SAMPLE)[0])
    print("pybuild build: CLI (a new process), warm rootfs, new image", flush=True)
    command = cli("build", "bench/python-http-cli", "--path", str(SAMPLE))
    return {
        "first": first,
        "warm_rootfs": _median_phases(fresh),
        "rebuild": _median_phases(again),
        "cli_warm_rootfs_total": seconds(command),
    }


def _median_phases(runs: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {key: seconds(median([r[key] for r in runs])) for key in runs[0]}
    if len(runs) > 1:
        out["runs_total"] = [r["total"] for r in runs]
    return out


def _docker_builds(home: Path, scratch: Path, options: argparse.Namespace) -> dict[str, Any]:
    context = scratch / "context"
    shutil.copytree(SAMPLE, context / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (context / "Dockerfile").write_text(DOCKERFILE)
    shutil.copyfile(HOST_CA, context / "host-ca.crt")
    out: dict[str, Any] = {}
    with dockerd(scratch, options.bridge) as (daemon, started):
        out["dockerd_start_seconds"] = seconds(started)
        loads = daemon.load_from_pybuild([BUILD_IMAGE, RUN_IMAGE], scratch, home)
        out["image_import_seconds"] = {key: seconds(value) for key, value in loads.items()}
        for builder in options.docker:
            buildkit = builder == "buildkit"
            tag = f"bench/python-http-docker:{builder}"
            build = ["build", "--pull=false", "--network=host", "-t", tag, "."]
            cold, warm, edited = [], [], []
            for number in range(options.repeat):
                print(f"docker build ({builder}): cold ({number + 1}/{options.repeat})", flush=True)
                cold.append(
                    daemon.timed(*build[:1], "--no-cache", *build[1:], cwd=context, buildkit=buildkit)
                )
                print(f"docker build ({builder}): layer cache ({number + 1}/{options.repeat})", flush=True)
                warm.append(daemon.timed(*build, cwd=context, buildkit=buildkit))
                with (context / "app" / "app.py").open("a") as source:  # only the last COPY reruns
                    source.write(f"# edit {builder} {number}\n")
                edited.append(daemon.timed(*build, cwd=context, buildkit=buildkit))
            out[builder] = {
                "cold": seconds(median(cold)),
                "cached": seconds(median(warm)),
                "cached_app_edited": seconds(median(edited)),
                "image_bytes": daemon.image_size(tag),
                **({"runs_cold": [seconds(c) for c in cold]} if len(cold) > 1 else {}),
            }
            daemon.docker("image", "rm", "-f", tag)
            daemon.docker("builder", "prune", "-af")
    return out


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    """pybuild seconds / docker seconds: below 1 means pybuild is faster."""
    ours = results["pybuild"]
    ratios: dict[str, float] = {}
    for builder, figures in results.get("docker", {}).items():
        if not isinstance(figures, dict) or "cold" not in figures:
            continue
        ratios[f"first / docker {builder} cold"] = round(ours["first"]["total"] / figures["cold"], 2)
        ratios[f"warm_rootfs / docker {builder} cold"] = round(
            ours["warm_rootfs"]["total"] / figures["cold"], 2
        )
        ratios[f"rebuild / docker {builder} cached"] = round(ours["rebuild"]["total"] / figures["cached"], 2)
        ratios[f"rebuild / docker {builder} cached, app.py edited"] = round(
            ours["rebuild"]["total"] / figures["cached_app_edited"], 2
        )
    return ratios


def summary(results: dict[str, Any]) -> str:
    info, setup = results["machine"], results["setup"]
    ours = results["pybuild"]
    lines = [
        "### Latest figures",
        "",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}; load average at start "
        f"{' / '.join(map(str, results['load_average_at_start']))} (1/5/15 min); commit "
        f"{results['checkout']['commit']}. Stack + default builder from cached mmdebstrap tarballs: "
        f"{setup['stack_and_builder_seconds']:.1f} s (not in any row below).",
        f"Dirty files under lifecycle/ at the time: {results['checkout']['lifecycle_dirty_files']}.",
        "",
    ]
    labels = {
        "first": "first build (extracts build-image rootfs)",
        "warm_rootfs": "new image: warm rootfs, no previous image or cache",
        "rebuild": "rebuild: previous image and its cache",
    }
    steps = [step for step in STEPS.values() if any(step in ours[key] for key in labels)]
    lines += [
        "| pybuild build (in-process), s | " + " | ".join(steps) + " | **total** | rootfs extraction |",
        "|---|" + "---:|" * (len(steps) + 2),
    ]
    for key, label in labels.items():
        p = ours[key]
        cells = [f"{p[step]:.2f}" if step in p else "-" for step in steps]
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | **{p['total']:.2f}** | {p['rootfs_extract']:.2f} |"
        )
    lines += [
        "",
        f"The same as a command (`pybuild build`, a new process, warm rootfs): "
        f"{ours['cli_warm_rootfs_total']:.2f} s.",
    ]
    docker = results.get("docker")
    if docker:
        imports = docker["image_import_seconds"]
        lines += [
            "",
            f"docker (private dockerd, started in {docker['dockerd_start_seconds']:.1f} s; "
            "importing our images: " + ", ".join(f"{k} {v:.1f} s" for k, v in imports.items()) + "):",
            "",
            "| docker build | cold (`--no-cache`) | layer cache | layer cache, app.py edited | image MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for builder, figures in docker.items():
            if isinstance(figures, dict) and "cold" in figures:
                lines.append(
                    f"| {builder} | {figures['cold']:.2f} | {figures['cached']:.2f} "
                    f"| {figures['cached_app_edited']:.2f} "
                    f"| {figures['image_bytes'] / 1e6:.0f} |"
                )
        lines += ["", "| ratio (pybuild / docker; < 1 = pybuild faster) | |", "|---|---:|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in results["ratios"].items()]
    return "\n".join(lines)
