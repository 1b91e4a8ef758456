"""Commands over stored images: images, inspect, rmi, save, gc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lifecycle.appimage import BASE_DIGEST, BASE_NAME
from lifecycle.backends.store import LocalStore
from lifecycle.cli.output import Logger
from lifecycle.cnb import parse_label
from lifecycle.cnb.labels import (
    BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    BuildMetadataLabel,
    LifecycleMetadata,
)
from lifecycle.oci.image import Image
from lifecycle.platform.targets import open_target

__all__ = ["images", "inspect", "pull", "push", "rmi", "save", "store_gc", "tag"]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1000
    return f"{size} B"


@click.command()
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def images(log: Logger, output: str) -> None:
    """List the images in the local store."""
    entries = LocalStore().list()
    if output == "json":
        rows = [{"name": e.tag, "digest": e.digest, "created": e.created, "size": e.size} for e in entries]
        log.result(json.dumps(rows, indent=2))
        return
    log.result(f"{'NAME':40} {'DIGEST':19} {'SIZE':>10}")
    for e in entries:
        log.result(f"{e.tag:40} {e.digest[7:19]:19} {_human_size(e.size):>10}")


def _cnb_section(image: Image) -> dict[str, Any]:
    """Buildpacks, processes, run image and base image, read from the CNB labels."""
    labels = image.labels
    section: dict[str, Any] = {}
    if BUILD_METADATA_LABEL in labels:
        build = parse_label(BUILD_METADATA_LABEL, BuildMetadataLabel, labels[BUILD_METADATA_LABEL])
        section["buildpacks"] = [{"id": b.id, "version": b.version} for b in build.buildpacks]
        section["processes"] = [
            {
                "type": p.type,
                "command": list(p.command) if isinstance(p.command, tuple) else [p.command],
                "args": list(p.args or ()),
                "default": p.type == build.buildpack_default_process_type,
                "workingDir": p.working_dir,
            }
            for p in build.processes
        ]
    if LIFECYCLE_METADATA_LABEL in labels:
        meta = parse_label(LIFECYCLE_METADATA_LABEL, LifecycleMetadata, labels[LIFECYCLE_METADATA_LABEL])
        run = meta.run_image
        section["runImage"] = {
            "image": run.image,
            "mirrors": list(run.mirrors),
            "reference": run.reference,
            "topLayer": run.top_layer,
        }
    annotations = image.annotations
    if BASE_NAME in annotations or BASE_DIGEST in annotations:
        section["baseImage"] = {"name": annotations.get(BASE_NAME), "digest": annotations.get(BASE_DIGEST)}
    return section


def describe(image: Image, reference: str) -> dict[str, Any]:
    """What ``inspect`` shows: the config, labels and layers of an image, and its CNB metadata."""
    config = image.config
    container = config.config
    return {
        **_cnb_section(image),
        "reference": reference,
        "digest": image.digest,
        "mediaType": image.media_type,
        "created": config.created,
        "os": config.os,
        "architecture": config.architecture,
        "user": container.user,
        "env": container.env or [],
        "entrypoint": container.entrypoint,
        "cmd": container.cmd,
        "workingDir": container.working_dir,
        "labels": container.labels or {},
        "annotations": image.annotations,
        "layers": [
            {"digest": layer.digest, "diffID": layer.diff_id, "size": layer.size} for layer in image.layers
        ],
    }


def _print_cnb(log: Logger, info: dict[str, Any]) -> None:
    if "buildpacks" in info:
        log.result("buildpacks:")
        for bp in info["buildpacks"]:
            log.result(f"  {bp['id']}@{bp['version']}")
        log.result("processes:")
        for p in info["processes"]:
            mark = " (default)" if p["default"] else ""
            log.result(f"  {p['type']}{mark}: {' '.join([*p['command'], *p['args']])}")
    if "runImage" in info:
        run = info["runImage"]
        log.result(f"run image:    {run['image']} ({run['reference']})")
        for mirror in run["mirrors"]:
            log.result(f"  mirror:     {mirror}")
    if "baseImage" in info:
        log.result(f"base image:   {info['baseImage']['name']}@{info['baseImage']['digest']}")


def _print_description(log: Logger, info: dict[str, Any]) -> None:
    _print_cnb(log, info)
    for key in ("reference", "digest", "created", "os", "architecture", "user", "workingDir"):
        log.result(f"{key + ':':14}{info[key] or ''}")
    log.result(f"{'entrypoint:':14}{json.dumps(info['entrypoint'])}")
    log.result("env:")
    for item in info["env"]:
        log.result(f"  {item}")
    log.result("labels:")
    for key, value in sorted(info["labels"].items()):
        shown = value if len(value) <= 100 else value[:97] + "..."
        log.result(f"  {key}={shown}")
    log.result("layers:")
    for layer in info["layers"]:
        log.result(f"  {layer['diffID']}  {_human_size(layer['size'])}")


@click.command()
@click.argument("image")
@click.option("--output", "-o", type=click.Choice(["human", "json"]), default="human")
@click.pass_obj
def inspect(log: Logger, image: str, output: str) -> None:
    """Show an image's config, labels and layers."""
    target = open_target(image)
    info = describe(target.store.image(target.name), target.display)
    if output == "json":
        log.result(json.dumps(info, indent=2, sort_keys=True))
    else:
        _print_description(log, info)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rmi(log: Logger, names: tuple[str, ...]) -> None:
    """Remove tags from the local store (blobs go at the next gc)."""
    store = LocalStore()
    for name in names:
        store.delete(name)
        log.info(f"Untagged {name}")


@click.command(name="gc")
@click.pass_obj
def store_gc(log: Logger) -> None:
    """Delete blobs of the local store that no tag reaches."""
    freed = LocalStore().gc()
    log.result(f"Freed {_human_size(freed)}")


@click.command()
@click.argument("image")
@click.option(
    "--output",
    "-o",
    "dest",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write a docker-archive tar (for docker load).",
)
@click.pass_obj
def save(log: Logger, image: str, dest: Path) -> None:
    """Write an image as a tar that `docker load` reads."""
    from lifecycle.backends.archive import write_docker_archive

    target = open_target(image)
    with dest.open("wb") as out:
        write_docker_archive(target.store.image(target.name), [target.name], out)
    log.info(f"Saved {target.display} to {dest}")


@click.command()
@click.argument("source")
@click.argument("tags", nargs=-1, required=True)
@click.pass_obj
def tag(log: Logger, source: str, tags: tuple[str, ...]) -> None:
    """Point TAGS at the image SOURCE names (in the same store or layout)."""
    target = open_target(source)
    image = target.store.image(target.name)
    for name in tags:
        dest = open_target(name, create=True)
        dest.store.write(image, [dest.name])
        log.info(f"Tagged {dest.display} -> {image.digest}")


def _copy(log: Logger, source: str, dest: str, *, publish: bool) -> None:
    from lifecycle.cli.progress import UploadBars
    from lifecycle.platform.targets import set_registry_progress

    src = open_target(source)
    image = src.store.image(src.name)
    with UploadBars(enabled=publish and log.level >= 1) as bars:
        set_registry_progress(bars if publish else None)
        target = open_target(dest, create=True, publish=publish)
        digest = target.store.write(image, [target.name])
    log.info(f"{src.display} -> {target.display}")
    log.result(digest)


@click.command()
@click.argument("ref")
@click.argument("name", required=False)
@click.pass_obj
def pull(log: Logger, ref: str, name: str | None) -> None:
    """Copy REF from a registry into the local store (as NAME, default the same name)."""
    registry_ref = ref if ref.startswith("docker://") else f"docker://{ref}"
    _copy(log, registry_ref, name or ref.removeprefix("docker://"), publish=False)


@click.command()
@click.argument("name")
@click.argument("ref", required=False)
@click.pass_obj
def push(log: Logger, name: str, ref: str | None) -> None:
    """Copy NAME from the local store (or oci:DIR:tag) to a registry REF (default: NAME)."""
    _copy(log, name, ref or name, publish=True)
