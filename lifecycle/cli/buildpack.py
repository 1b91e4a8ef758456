"""``pybuild buildpack``: new (a working skeleton), test (the host inner loop), validate,
package (a buildpackage image or .cnb file) and inspect (what a buildpack reference resolves to)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
import tomli_w

from lifecycle.cli.output import Logger
from lifecycle.env import EnvOperation, parse_env_assignment, read_env_file

if TYPE_CHECKING:
    from lifecycle.platform.authoring_run import TrialReport
    from lifecycle.platform.builders import BuildpackSource

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


@buildpack.command(name="package")
@click.argument("name", metavar="NAME")
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    default="package.toml",
    show_default=True,
    help="package.toml in pack's format: [buildpack] uri, [[dependencies]] uri or image, [platform] os.",
)
@click.option(
    "--format",
    "-f",
    "package_format",
    type=click.Choice(["image", "file"]),
    help="image: NAME is an image reference (local store, oci:DIR[:tag], registry with --publish); "
    "file: NAME is a .cnb file to write. Default: file when NAME ends in .cnb, else image.",
)
@click.option("--publish", is_flag=True, help="Push the image to the registry NAME names.")
@click.pass_obj
def buildpack_package(
    log: Logger, name: str, config: Path, package_format: str | None, publish: bool
) -> None:
    """Package a buildpack and its dependencies as buildpackage NAME (Distribution spec).

    One layer per buildpack at /cnb/buildpacks/<id>/<version>; the same inputs give the same digest.
    """
    from lifecycle.cli.progress import UploadBars
    from lifecycle.platform.buildpackage import check_output, package_buildpack, write_buildpackage
    from lifecycle.platform.targets import set_registry_progress

    as_file = package_format == "file" or (package_format is None and name.endswith(".cnb"))
    check_output(as_file=as_file, publish=publish)
    with tempfile.TemporaryDirectory(prefix="pybuild-package-") as scratch:
        image = package_buildpack(config, scratch=Path(scratch))
        with UploadBars(enabled=publish and log.level >= 1) as bars:
            set_registry_progress(bars if publish else None)
            where = write_buildpackage(image, name, as_file=as_file, publish=publish)
    log.info(f"Successfully created buildpackage {where} ({len(image.layers)} buildpacks)")
    log.result(image.digest)


@buildpack.command(name="inspect")
@click.argument("reference", metavar="REF")
@click.option("--builder", "-B", help="Builder whose buildpacks ID[@VERSION] and urn:cnb:builder: name.")
@click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Format."
)
@click.pass_obj
def buildpack_inspect(log: Logger, reference: str, builder: str | None, output: str) -> None:
    """Show the buildpacks REF resolves to: a directory, .tgz, .cnb, image or ID@VERSION of a builder.

    The named buildpack comes first, then those that come with it (a package's dependencies).
    """
    from lifecycle.platform.bpref import resolve_buildpack
    from lifecycle.platform.builders import load_builder

    known = load_builder(builder).buildpacks if builder else None
    with tempfile.TemporaryDirectory(prefix="pybuild-inspect-") as scratch:
        sources = resolve_buildpack(
            reference, base=Path.cwd(), scratch=Path(scratch), builder_buildpacks=known
        )
    if output == "json":
        log.result(json.dumps([_source_json(s) for s in sources], indent=2))
        return
    for line in (line for source in sources for line in _source_lines(source)):
        log.result(line)


def _source_json(source: BuildpackSource) -> dict[str, object]:
    descriptor = source.descriptor
    return {
        "id": descriptor.buildpack.id,
        "version": descriptor.buildpack.version,
        "name": descriptor.buildpack.name,
        "api": str(descriptor.api),
        "homepage": descriptor.buildpack.homepage,
        "path": str(source.path),
        "order": [[entry.ref for entry in group.group] for group in descriptor.order],
    }


def _source_lines(source: BuildpackSource) -> list[str]:
    descriptor = source.descriptor
    kind = "composite, " if descriptor.is_composite else ""
    name = f"  {descriptor.buildpack.name}" if descriptor.buildpack.name else ""
    lines = [f"{descriptor.ref}  ({kind}buildpack API {descriptor.api}){name}", f"  path: {source.path}"]
    for number, group in enumerate(descriptor.order, start=1):
        optional = {entry.ref for entry in group.group if entry.optional}
        refs = [f"{ref} (optional)" if ref in optional else ref for ref in (e.ref for e in group.group)]
        lines.append(f"  group {number}: {', '.join(refs)}")
    return lines


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
