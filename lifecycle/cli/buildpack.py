"""``pybuild buildpack``: new (a working skeleton), test (the host inner loop), validate."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
import tomli_w

from lifecycle.cli.output import Logger
from lifecycle.env import EnvOperation, parse_env_assignment, read_env_file

if TYPE_CHECKING:
    from lifecycle.platform.authoring_run import TrialReport

__all__ = ["buildpack"]


@click.group()
def buildpack() -> None:
    """Create, check and try buildpacks."""


@buildpack.command(name="new")
@click.argument("buildpack_id", metavar="ID")
@click.option(
    "--api", default="0.12", show_default=True, help="Buildpack API the skeleton speaks (0.10 - 0.12)."
)
@click.option(
    "--language",
    "-l",
    type=click.Choice(["bash", "python"]),
    default="bash",
    show_default=True,
    help="Language of bin/detect, bin/build and the processes (python needs python3 in the images).",
)
@click.option(
    "--path",
    "-p",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to create (default: the last part of ID).",
)
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    help="OS[/ARCH[/VARIANT]][:DISTRO[@VERSION]] the buildpack runs on (default: linux, any architecture).",
)
@click.option("--version", "-V", "bp_version", default="0.0.1", show_default=True, help="Buildpack version.")
@click.pass_obj
def buildpack_new(
    log: Logger,
    buildpack_id: str,
    api: str,
    language: str,
    path: Path | None,
    targets: tuple[str, ...],
    bp_version: str,
) -> None:
    """Create a working buildpack skeleton ID: detect, build, a layer, processes, README."""
    from lifecycle.platform.authoring import new_buildpack, skeleton_options

    options = skeleton_options(
        buildpack_id, path=path, api=api, language=language, version=bp_version, targets=targets
    )
    descriptor = new_buildpack(options)
    log.info(f"Created {descriptor.ref} ({language}, buildpack API {descriptor.api}) in {options.path}")
    log.info(f"Next: pybuild buildpack test {options.path} --path APP_DIR  (see {options.path}/README.md)")
    log.result(str(options.path))


@buildpack.command(name="test")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--path",
    "-p",
    "app",
    type=click.Path(path_type=Path),
    default=".",
    show_default=True,
    help="App source directory.",
)
@click.option("--env", "-e", "env", multiple=True, help="Build-time variable KEY=VALUE (or KEY).")
@click.option("--env-file", type=click.Path(path_type=Path), multiple=True, help="File of KEY=VALUE lines.")
@click.option(
    "--layers",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the layers in this directory between runs (default: a scratch dir, removed).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format; with json, the buildpack's own output goes to stderr.",
)
@click.pass_obj
def buildpack_test(
    log: Logger,
    directory: Path,
    app: Path,
    env: tuple[str, ...],
    env_file: tuple[Path, ...],
    layers: Path | None,
    output: str,
) -> None:
    """Run detect and build of the buildpack in DIR on this machine and show what it made.

    Exits 20 when detect steps aside, 21 when it errors, 51 when bin/build fails.
    """
    from lifecycle.platform.authoring_run import TrialPhases, try_buildpack

    values: dict[str, str] = {}
    for file in env_file:
        values.update(read_env_file(file, os.environ))
    values.update(dict(parse_env_assignment(e, os.environ) for e in env))
    quiet = output == "json"  # stdout is the JSON document; the buildpack's output goes to stderr
    phases = TrialPhases(
        phase=_ignore if quiet else log.phase,
        output=_to_stderr if quiet else log.info,
        info=_ignore if quiet else log.info,
    )
    report = try_buildpack(directory, app, phases, env=values, layers_dir=layers)
    if quiet:
        log.result(json.dumps(report.as_json(), indent=2))
        return
    log.phase("RESULT")
    for line in _report_lines(report):
        log.result(line)


@buildpack.command(name="validate")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.pass_obj
def buildpack_validate(log: Logger, directory: Path) -> None:
    """Check the buildpack in DIR: buildpack.toml (api, id, version) and runnable bin/ scripts."""
    from lifecycle.platform.authoring import check_buildpack

    descriptor = check_buildpack(directory)
    kind = "composite buildpack" if descriptor.is_composite else "buildpack"
    log.result(f"{descriptor.ref}: valid {kind} (buildpack API {descriptor.api})")


def _ignore(_: str) -> None:
    pass


def _to_stderr(line: str) -> None:
    click.echo(line, err=True)


def _report_lines(report: TrialReport) -> list[str]:
    """The text form of ``buildpack test``'s report."""
    lines = [f"Plan: {', '.join(report.plan) or '(no entries)'}"]
    lines.append(f"Layers in {report.layers_dir}:" if report.layers_dir else "Layers:")
    for layer in report.layers:
        types = [name for name, on in layer.types.model_dump().items() if on] or ["no type: ignored"]
        size = "no dir (reused)" if layer.size is None else _human_size(layer.size)
        lines.append(f"  {layer.name}  [{', '.join(types)}]  {size}")
        metadata = tomli_w.dumps({"metadata": layer.metadata}) if layer.metadata else ""
        lines += [f"    {line}" for line in metadata.splitlines()]
    lines += [] if report.layers else ["  (none)"]
    lines.append("Processes:")
    for process in report.processes:
        marker = " (default)" if process.type == report.default_process else ""
        lines.append(f"  {process.type}{marker}: {' '.join([*process.command, *process.args])}")
    lines += [] if report.processes else ["  (none)"]
    lines += _env_lines("Launch env (the app's processes, in the image)", report.launch_env)
    lines += _env_lines("Build env (later buildpacks)", report.build_env)
    return lines


def _env_lines(title: str, operations: Sequence[EnvOperation]) -> list[str]:
    lines = [f"{title}:"]
    for op in operations:
        delim = f" (delim {op.delim!r})" if op.delim is not None else ""
        lines.append(f"  {op.name} {op.op.value} {op.value!r}{delim}")
    return lines if operations else [*lines, "  (none)"]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
