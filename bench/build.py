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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import parser, workspace
from bench._docker import VERSUS_DOCKER, BuildTimes, builder_figures, compare_builders, docker_context
from bench._pybuild import STEPS, cli, copy_app, make_builder, median, median_phases, seconds, timed_build
from bench._results import REPO, latest_figures, load_average, new_results, ratio_table, report, run_facts

NAME = "build"
SAMPLE = REPO / "samples" / "python-http"
BUILDER = "pybuild/builder:bookworm"
BUILD_IMAGE = "pybuild/build:bookworm"
RUN_IMAGE = "pybuild/run:bookworm"

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
    results = new_results(inputs(options), app=SAMPLE)
    with workspace(NAME, options, "build-ctx") as (home, scratch):
        results["setup"] = _setup(Path(options.stack_cache))
        results["pybuild"] = _pybuild_builds(options.repeat)
        if options.docker:
            app = copy_app(SAMPLE, scratch / "python-http" / "app")
            results["docker"] = docker_builds(options, home, scratch, app, _docker_figures)
        results["ratios"] = _ratios(results)
        results["load_average_at_end"] = load_average()
    report(NAME, results, summary, ("setup", "pybuild", "docker", "ratios"))


def inputs(options: argparse.Namespace) -> dict[str, Any]:
    """The inputs this benchmark (and the daemon one: the same app, builder and Dockerfile) records."""
    return {
        "builder": BUILDER,
        "repeat": options.repeat,
        "docker_builders": options.docker,
        "dockerfile": DOCKERFILE,
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    options = parser(NAME, __doc__, bridge="br-bench")
    options.add_argument(
        "--repeat", type=int, default=3, help="warm builds and docker builds of each kind (median; default 3)"
    )
    return options.parse_args(argv)


def _setup(stack_cache: Path) -> dict[str, Any]:
    """The stack and default builder, once: not part of any build's time."""
    stack = make_builder(BUILDER, stack_cache)
    return {
        "stack_and_builder_seconds": stack.seconds,
        "mmdebstrap_tarballs_cached_before": stack.tarballs_before,
        "mmdebstrap_ran": stack.mmdebstrap_ran,
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
        "warm_rootfs": median_phases(fresh, runs_total=repeat > 1),
        "rebuild": median_phases(again, runs_total=repeat > 1),
        "cli_warm_rootfs_total": seconds(command),
    }


def docker_builds(
    options: argparse.Namespace,
    home: Path,
    scratch: Path,
    app: Path,
    figures: Callable[[BuildTimes], dict[str, Any]],
) -> dict[str, Any]:
    """``docker build`` of ``app`` (a copy of the sample, alone in its directory) with DOCKERFILE
    over our build and run images: ``--no-cache``, the layer cache, and after an edit of app.py
    (``compare_builders``)."""
    context = docker_context(app.parent, DOCKERFILE)
    return compare_builders(options, home, scratch, [BUILD_IMAGE, RUN_IMAGE], context, figures, app)


def _docker_figures(times: BuildTimes) -> dict[str, Any]:
    return {
        "cold": seconds(median(times.cold)),
        "cached": seconds(median(times.cached)),
        "cached_app_edited": seconds(median(times.edited)),
        **({"runs_cold": [seconds(c) for c in times.cold]} if len(times.cold) > 1 else {}),
    }


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    """pybuild seconds / docker seconds: below 1 means pybuild is faster."""
    ours = results["pybuild"]
    ratios: dict[str, float] = {}
    for builder, figures in builder_figures(results.get("docker")):
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
    setup, ours = results["setup"], results["pybuild"]
    lines = [
        *latest_figures(
            f"{run_facts(results)}. Stack + default builder from cached mmdebstrap tarballs: "
            f"{setup['stack_and_builder_seconds']:.1f} s (not in any row below)."
        ),
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
        for builder, figures in builder_figures(docker):
            lines.append(
                f"| {builder} | {figures['cold']:.2f} | {figures['cached']:.2f} "
                f"| {figures['cached_app_edited']:.2f} "
                f"| {figures['image_bytes'] / 1e6:.0f} |"
            )
        lines += ["", *ratio_table(results["ratios"], VERSUS_DOCKER, ".2f")]
    return "\n".join(lines)
