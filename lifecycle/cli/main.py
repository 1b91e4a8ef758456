"""The ``pybuild`` command: the only place that prints final errors and exits.

Domain errors become ``ERROR: failed to <action>: <cause>`` and the CNB exit
code of the phase that failed (cnb-spec.md §5); no traceback for user errors.
"""

from __future__ import annotations

import sys

import click

from lifecycle import __version__
from lifecycle.cli.autoupdate import autoupdate
from lifecycle.cli.build import build, builder, run
from lifecycle.cli.buildpack import buildpack
from lifecycle.cli.cache import cache
from lifecycle.cli.images import images, inspect, pull, push, rmi, save, store_gc, tag
from lifecycle.cli.lifecycle import lifecycle
from lifecycle.cli.output import Logger
from lifecycle.cli.rebase import rebase
from lifecycle.cli.stack import stack
from lifecycle.errors import ExitCode, PybuildError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug output.")
@click.option("-q", "--quiet", is_flag=True, help="Show only errors and results.")
@click.version_option(__version__, prog_name="pybuild")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Build, run and rebase OCI images with Cloud Native Buildpacks."""
    ctx.obj = Logger(level=0 if quiet else 2 if verbose else 1)


for command in (
    autoupdate,
    build,
    builder,
    buildpack,
    cache,
    images,
    inspect,
    lifecycle,
    pull,
    push,
    rebase,
    rmi,
    run,
    save,
    store_gc,
    stack,
    tag,
):
    cli.add_command(command)


_GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Accept ``-v``/``-q`` after the command too (``pybuild build app -q``), up to a ``--``."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _GLOBAL_FLAGS]
    rest = [a for a in argv[:end] if a not in _GLOBAL_FLAGS]
    return [*flags, *rest, *argv[end:]]


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to CNB exit codes."""
    log = Logger()
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=args, prog_name="pybuild", standalone_mode=False)
    except PybuildError as exc:
        log.error(str(exc))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        log.error("aborted")
        sys.exit(ExitCode.FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.BAD_ARGS)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
