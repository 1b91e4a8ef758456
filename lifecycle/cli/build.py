"""``pybuild build``, ``pybuild run`` and ``pybuild builder``: flags as pack spells them."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from lifecycle.cli.output import Logger
from lifecycle.cli.progress import UploadBars
from lifecycle.platform.build_inputs import BuildRequest, Reuse

__all__ = ["build", "builder", "run"]


def _creation_time(value: str | None) -> int | None:
    if value is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        return int(epoch) if epoch and epoch.isdigit() else None
    if value == "now":
        return int(time.time())
    if not value.isdigit():
        raise click.BadParameter("use seconds since the epoch or 'now'", param_hint="--creation-time")
    return int(value)


def _env_values(env: tuple[str, ...], env_file: tuple[Path, ...]) -> dict[str, str]:
    """``--env-file`` then ``--env`` values (``KEY`` alone: this process's value)."""
    if not env and not env_file:
        return {}  # an unchanged rebuild checked for reuse without loading the env rules (~3 ms)
    from lifecycle.env import parse_env_assignment, read_env_file

    values: dict[str, str] = {}
    for file in env_file:
        values.update(read_env_file(file, os.environ))
    values.update(dict(parse_env_assignment(e, os.environ) for e in env))
    return values


def _reported_reuse(log: Logger, reuse: Reuse, started: float) -> bool:
    """Report the image IMAGE names if the build would have the inputs of the build it came from."""
    digest = reuse.reusable()
    if digest is None:
        return False
    log.phase("REUSING")
    log.info(
        f"Inputs unchanged since the build of {digest}; nothing to do "
        "(use --rerun to run the buildpacks anyway)"
    )
    log.info(f"Image {reuse.tag} is up to date ({time.monotonic() - started:.2f}s)")
    log.result(digest)
    return True


@click.command()
@click.argument("image")
@click.option(
    "--path",
    "-p",
    "path",
    type=click.Path(path_type=Path),
    default=".",
    show_default=True,
    help="App source directory.",
)
@click.option("--builder", "-B", help="Builder name (default: pybuild/builder:bookworm).")
@click.option("--buildpack", "-b", "buildpacks", multiple=True, help="Buildpack directory or archive.")
@click.option(
    "--extension",
    "extensions",
    multiple=True,
    help="Image extension directory, or id[@version] in the builder (replaces its order-extensions).",
)
@click.option("--env", "-e", "env", multiple=True, help="Build-time variable KEY=VALUE (or KEY).")
@click.option("--env-file", type=click.Path(path_type=Path), multiple=True, help="File of KEY=VALUE lines.")
@click.option(
    "--secret",
    "secret_specs",
    multiple=True,
    metavar="id=ID,env=NAME|src=FILE",
    help="Build secret from variable NAME or FILE: read-only at /platform/secrets/ID during detect "
    "and build, masked in output, refused in layers.",
)
@click.option("--run-image", help="Run image to build on (default: the builder's).")
@click.option(
    "--descriptor", "-d", type=click.Path(path_type=Path), help="project.toml (default: PATH/project.toml)."
)
@click.option("--creation-time", help="Image created time: seconds since the epoch, or 'now'.")
@click.option("--network", default="host", type=click.Choice(["host", "none"]), show_default=True)
@click.option(
    "--executor",
    default="bwrap",
    type=click.Choice(["bwrap", "docker", "host"]),
    show_default=True,
    help="Where buildpacks run.",
)
@click.option("--default-process", help="Process type to use as the entrypoint.")
@click.option("--no-host-ca", is_flag=True, help="Do not give buildpacks this machine's CA bundle.")
@click.option(
    "--cache",
    "cache_name",
    metavar="NAME",
    help="Directory cache to use (default: the image name without tag).",
)
@click.option(
    "--cache-image", metavar="REF", help="Keep the build cache in this image instead of a directory."
)
@click.option("--clear-cache", is_flag=True, help="Restore no layers and start the cache afresh.")
@click.option(
    "--rerun",
    is_flag=True,
    help="Run the buildpacks even if nothing changed since IMAGE was built (else IMAGE is reused).",
)
@click.option("--previous-image", metavar="REF", help="Reuse layers from this image (default: IMAGE).")
@click.option(
    "--publish", is_flag=True, help="Write IMAGE to its registry (host/repo:tag) instead of the store."
)
@click.option("--daemon", is_flag=True, help="Write IMAGE into the Docker daemon (DOCKER_HOST).")
@click.pass_obj
def build(
    log: Logger,
    image: str,
    path: Path,
    builder: str | None,
    buildpacks: tuple[str, ...],
    extensions: tuple[str, ...],
    env: tuple[str, ...],
    env_file: tuple[Path, ...],
    secret_specs: tuple[str, ...],
    run_image: str | None,
    descriptor: Path | None,
    creation_time: str | None,
    network: str,
    executor: str,
    default_process: str | None,
    no_host_ca: bool,
    cache_name: str | None,
    cache_image: str | None,
    clear_cache: bool,
    rerun: bool,
    previous_image: str | None,
    publish: bool,
    daemon: bool,
) -> None:
    """Build IMAGE from source with buildpacks.

    A build into the local store whose inputs are those of the build IMAGE came from reports
    that image and runs nothing (see --rerun).
    """
    started = time.monotonic()
    values = _env_values(env, env_file)
    if publish and daemon:
        raise click.UsageError("--publish and --daemon exclude each other")
    if publish and not image.startswith("docker://"):
        image = "docker://" + image
    if daemon and not image.startswith("docker-daemon:"):
        image = "docker-daemon:" + image
    created = _creation_time(creation_time)
    request = BuildRequest(
        image=image,
        path=path,
        builder=builder,
        buildpacks=buildpacks,
        extensions=extensions,
        env=values,
        descriptor=descriptor,
        run_image=run_image,
        creation_time=creation_time,
        network=network,
        executor=executor,
        default_process=default_process,
        ca_bundle=not no_host_ca,
        cache_name=cache_name,
        previous_image=previous_image,
        cache_image=cache_image,
        secrets=bool(secret_specs),
    )
    reuse = Reuse.open(request)  # before the build machinery loads: a reused build needs none of it
    if reuse is not None and not (rerun or clear_cache) and _reported_reuse(log, reuse, started):
        return
    from lifecycle.platform.build import BuildOptions, Phases
    from lifecycle.platform.build import build as run_build
    from lifecycle.platform.project import apply_project
    from lifecycle.platform.secrets import parse_secrets
    from lifecycle.platform.targets import set_registry_progress

    options = BuildOptions(
        image=image,
        path=path,
        builder=builder,
        buildpacks=buildpacks,
        extensions=extensions,
        env=values,
        secrets=parse_secrets(secret_specs, os.environ),
        run_image=run_image,
        executor=executor,
        network=network,
        creation_time=created,
        process_type=default_process,
        ca_bundle=not no_host_ca,
        cache=cache_name,
        cache_image=cache_image,
        clear_cache=clear_cache,
        previous_image=previous_image,
        reuse=reuse,
    )
    options = apply_project(options, descriptor)
    with UploadBars(enabled=publish and log.level >= 1) as bars:
        set_registry_progress(bars if publish else None)
        report = run_build(options, Phases(phase=log.phase, output=log.info, info=log.info, warn=log.warn))
    log.info(f"Successfully built image {report.image} in {time.monotonic() - started:.1f}s")
    log.result(report.digest)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--process", "-t", help="Process type to run.")
@click.option(
    "--entrypoint", help="Run this instead of the image's entrypoint (e.g. /cnb/lifecycle/launcher)."
)
@click.option("--env", "-e", "env", multiple=True, help="KEY=VALUE for the process.")
@click.option("--network", default="host", type=click.Choice(["host", "none"]), show_default=True)
def run(
    image: str,
    args: tuple[str, ...],
    process: str | None,
    entrypoint: str | None,
    env: tuple[str, ...],
    network: str,
) -> None:
    """Run IMAGE from the local store under bubblewrap (args after --)."""
    from lifecycle.platform.run import run_image

    values = _env_values(env, ())
    code = run_image(image, process=process, entrypoint=entrypoint, args=args, env=values, network=network)
    sys.exit(code)


@click.group()
def builder() -> None:
    """Create and list builders."""


@builder.command(name="create")
@click.argument("name")
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="builder.toml in pack's format.",
)
@click.option("--publish", is_flag=True, help="Write the builder image to its registry (host/repo:tag).")
@click.option("--daemon", is_flag=True, help="Write the builder image into the Docker daemon (DOCKER_HOST).")
@click.pass_obj
def builder_create(log: Logger, name: str, config: Path, publish: bool, daemon: bool) -> None:
    """Create builder NAME from a builder.toml: a store name, oci:DIR[:TAG], or a registry or daemon image."""
    from lifecycle.platform.builders import create_builder
    from lifecycle.platform.targets import set_registry_progress

    if publish and daemon:
        raise click.UsageError("--publish and --daemon exclude each other")
    if publish and not name.startswith("docker://"):
        name = "docker://" + name
    if daemon and not name.startswith("docker-daemon:"):
        name = "docker-daemon:" + name
    with UploadBars(enabled=publish and log.level >= 1) as bars:
        set_registry_progress(bars if publish else None)
        created = create_builder(name, config, info=log.info)
    log.info(f"Successfully created builder {created.name}")
    for ref in created.buildpacks:
        log.info(f"  {ref}")
    log.result(created.digest)


@builder.command(name="inspect")
@click.argument("name")
@click.option("--output", "-o", type=click.Choice(["human", "json"]), default="human")
@click.pass_obj
def builder_inspect(log: Logger, name: str, output: str) -> None:
    """Show a builder's build image, run images, buildpacks and order.

    NAME is a builder of the store, or a builder image: oci:DIR[:TAG], docker://REF,
    host/repo:tag (a registry) or docker-daemon:NAME."""
    from lifecycle.platform.builders import load_builder

    found = load_builder(name)
    run_images = [{"image": r.image, "mirrors": list(r.mirrors)} for r in found.run_images]
    buildpacks = [
        {
            "id": s.descriptor.buildpack.id,
            "version": s.descriptor.buildpack.version,
            "api": str(s.descriptor.api),
        }
        for _, s in sorted(found.buildpacks.items())
    ]
    order = [
        [{"id": e.id, "version": e.version, "optional": e.optional} for e in g.group] for g in found.order
    ]
    if output == "json":
        info = {
            "name": found.name,
            "buildImage": found.build_image,
            "runImages": run_images,
            "buildpacks": buildpacks,
            "order": order,
        }
        log.result(json.dumps(info, indent=2))
        return
    log.result(f"Builder:      {found.name}\nBuild image:  {found.build_image}")
    for run in found.run_images:
        mirrors = f" (mirrors: {', '.join(run.mirrors)})" if run.mirrors else ""
        log.result(f"Run image:    {run.image}{mirrors}")
    log.result("Buildpacks:")
    for _, source in sorted(found.buildpacks.items()):
        log.result(f"  {source.descriptor.ref} (api {source.descriptor.api})")
    log.result("Detection order:")
    for number, group in enumerate(found.order, start=1):
        names = ", ".join(f"{e.ref}" + (" (optional)" if e.optional else "") for e in group.group)
        log.result(f"  Group #{number}: {names}")
