"""``pybuild stack build``: make a stack's build and run images from Debian packages."""

from __future__ import annotations

from pathlib import Path

import click

from lifecycle.backends.store import LocalStore
from lifecycle.cli.output import Logger

__all__ = ["stack"]


@click.group()
def stack() -> None:
    """Build images of the stacks under stacks/."""


@stack.command(name="build")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Rebuild even if the images exist.")
@click.pass_obj
def build(log: Logger, path: Path, force: bool) -> None:
    """Build the stack defined in PATH/stack.toml into the local store."""
    from lifecycle.platform.stacks import RichStackProgress, build_stack

    progress = RichStackProgress() if log.level >= 1 else None
    result = build_stack(path, LocalStore(), progress=progress, force=force)
    for tag, digest in result.digests.items():
        log.result(f"{tag} {digest}")
