"""``pybuild rebase``: a new run image under an app image, with no rebuild."""

from __future__ import annotations

import time
from pathlib import Path

import click

from lifecycle.cli.output import Logger

__all__ = ["rebase"]


@click.command()
@click.argument("image")
@click.option(
    "--run-image", help="New run image (default: the one in the image's label, at its current digest)."
)
@click.option("--previous-image", help="Read the app image from here and write the result to IMAGE.")
@click.option("--base-image", help="Adopt an image that has no base (FROM scratch) onto this run image.")
@click.option("--force", is_flag=True, help="Rebase even if a safety check fails.")
@click.option("--report", type=click.Path(path_type=Path), help="Write report.toml here.")
@click.option("--publish", is_flag=True, help="IMAGE is in a registry (host/repo:tag): rebase it there.")
@click.option("--daemon", is_flag=True, help="IMAGE is in the Docker daemon: rebase it there.")
@click.pass_obj
def rebase(
    log: Logger,
    image: str,
    run_image: str | None,
    previous_image: str | None,
    base_image: str | None,
    force: bool,
    report: Path | None,
    publish: bool,
    daemon: bool,
) -> None:
    """Swap the run image under IMAGE, keeping every app layer."""
    from lifecycle.platform.rebase import RebaseOptions
    from lifecycle.platform.rebase import rebase as run_rebase

    started = time.monotonic()
    if daemon and not image.startswith("docker-daemon:"):
        image = "docker-daemon:" + image
    options = RebaseOptions(image, run_image, previous_image, base_image, force, report, publish)
    done = run_rebase(options)
    elapsed = (time.monotonic() - started) * 1000
    result = done.result
    if result is None:
        log.info(f"Adopted {done.image} onto {base_image} in {elapsed:.0f} ms")
    elif result.up_to_date:
        log.info(f"{done.image} is already up to date on {result.new_base_digest[:19]}")
    else:
        for warning in result.warnings:
            log.warn(warning)
        log.info(f"Rebased {done.image}: base {result.old_base_digest[:19]} -> {result.new_base_digest[:19]}")
        log.info(f"  {result.replaced} base layers replaced, {result.kept} app layers kept, {elapsed:.0f} ms")
    log.debug(f"layer bytes read: {done.layer_bytes_read}")
    log.result(done.digest)
