"""``pybuild autoupdate``: keep a fleet of app images on the current digest of their run images."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import click

from lifecycle.cli.output import Logger

__all__ = ["autoupdate"]


def _fleet(images_file: Path | None, refs: tuple[str, ...], registry: str | None) -> list[str]:
    from lifecycle.platform.fleet import fleet_refs

    return fleet_refs(images_file=images_file, refs=refs, registry=registry)


@click.command()
@click.argument("refs", nargs=-1)
@click.option(
    "--images-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A file of image references, one per line.",
)
@click.option("--registry", help="Every repository of a registry, or those under a prefix: HOST[/PREFIX].")
@click.option(
    "--policy",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="TOML policy: repositories opted out, force.",
)
@click.option("--dry-run", is_flag=True, help="Plan only: change nothing.")
@click.option("--watch", is_flag=True, help="Keep going: check again every --interval seconds.")
@click.option("--interval", type=float, default=60.0, show_default=True)
@click.option("--concurrency", "-j", type=int, default=4, show_default=True)
@click.option("--report", type=click.Path(path_type=Path), help="Write the JSON report here.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def autoupdate(
    log: Logger,
    refs: tuple[str, ...],
    images_file: Path | None,
    registry: str | None,
    policy: Path | None,
    dry_run: bool,
    watch: bool,
    interval: float,
    concurrency: int,
    report: Path | None,
    output: str,
) -> None:
    """Rebase every image (REFS, a file, a registry, or the local store) whose run image moved."""
    from lifecycle.platform.autoupdate import autoupdate as run
    from lifecycle.platform.autoupdate import load_policy

    rules = load_policy(policy)
    while True:
        started = time.monotonic()
        outcomes = run(_fleet(images_file, refs, registry), rules, dry_run=dry_run, concurrency=concurrency)
        rows = [o.as_dict() for o in outcomes]
        if report:
            report.write_text(json.dumps(rows, indent=2))
        if output == "json":
            log.result(json.dumps(rows, indent=2))
        else:
            _table(log, outcomes, time.monotonic() - started)
        if not watch:
            return
        time.sleep(interval)


def _table(log: Logger, outcomes: list, seconds: float) -> None:  # type: ignore[type-arg]
    for o in outcomes:
        if o.action == "rebased" or o.action == "would-rebase":
            log.info(f"{o.action:13} {o.image}  {o.old_base[:19]} -> {o.new_base[:19]}")
        elif o.action in ("failed", "conflict", "skipped"):
            log.info(f"{o.action:13} {o.image}  {o.reason}")
        else:
            log.debug(f"{o.action:13} {o.image}")
    counts = Counter(o.action for o in outcomes)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    log.result(f"{len(outcomes)} images in {seconds:.2f}s: {summary or 'nothing to do'}")
