"""The ``pybuild`` command: the only place that prints final errors and exits.

Domain errors become ``ERROR: failed to <action>: <cause>`` and the CNB exit
code of the phase that failed (cnb-spec.md §5); no traceback for user errors.
An ``OSError`` that escapes a command (a full disk, a permission denied) is reported
the same way, with its path and what to do; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import errno
import importlib
import sys
import traceback
from collections.abc import Mapping
from itertools import takewhile
from typing import Any

import click

from lifecycle import __version__
from lifecycle.cli.output import Logger
from lifecycle.errors import ExitCode, PybuildError

__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]

COMMANDS: Mapping[str, tuple[str, str]] = {
    "autoupdate": ("lifecycle.cli.autoupdate", "autoupdate"),
    "build": ("lifecycle.cli.build", "build"),
    "builder": ("lifecycle.cli.build", "builder"),
    "buildpack": ("lifecycle.cli.buildpack", "buildpack"),
    "cache": ("lifecycle.cli.cache", "cache"),
    "gc": ("lifecycle.cli.images", "store_gc"),
    "images": ("lifecycle.cli.images", "images"),
    "inspect": ("lifecycle.cli.images", "inspect"),
    "lifecycle": ("lifecycle.cli.lifecycle", "lifecycle"),
    "pull": ("lifecycle.cli.images", "pull"),
    "push": ("lifecycle.cli.images", "push"),
    "rebase": ("lifecycle.cli.rebase", "rebase"),
    "rmi": ("lifecycle.cli.images", "rmi"),
    "run": ("lifecycle.cli.build", "run"),
    "save": ("lifecycle.cli.images", "save"),
    "stack": ("lifecycle.cli.stack", "stack"),
    "tag": ("lifecycle.cli.images", "tag"),
}
"""Command name -> (module, attribute). A command's module is imported when that command runs, or
when help or the reference lists every command: ``pybuild build`` does not import the registry,
daemon, rich or the image commands' models."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``lazy`` (name -> module, attribute) on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}.{attribute} is not a click command")
            if command.name != cmd_name:
                raise TypeError(f"{module}.{attribute} is named {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug output.")
@click.option("-q", "--quiet", is_flag=True, help="Show only errors and results.")
@click.version_option(__version__, prog_name="pybuild")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Build, run and rebase OCI images with Cloud Native Buildpacks."""
    ctx.obj = Logger(level=0 if quiet else 2 if verbose else 1)


_GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Accept ``-v``/``-q`` after the command too (``pybuild build app -q``), up to a ``--``."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _GLOBAL_FLAGS]
    rest = [a for a in argv[:end] if a not in _GLOBAL_FLAGS]
    return [*flags, *rest, *argv[end:]]


_VERBS = frozenset({"build", "inspect", "pull", "push", "rebase", "run", "save", "tag"})
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free space and retry",
    errno.EDQUOT: "free space (or raise the quota) and retry",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EROFS: "use a writable location",
    errno.EMFILE: "raise the open-file limit (ulimit -n) and retry",
}


def os_error_exit(exc: OSError, args: list[str]) -> tuple[str, int]:
    """The one-line message and CNB exit code for an ``OSError`` that escaped the command in ``args``.

    ``pybuild lifecycle <phase>`` exits with the phase's code, ``pybuild rebase`` with 72, any
    other command with 1 (cnb-spec.md §5).
    """
    words = [arg for arg in args if not arg.startswith("-")][:2]
    action, code = " ".join(["run pybuild", *words[:1]]), ExitCode.FAILED
    if words[:1] and words[0] in _VERBS:
        action = words[0]  # "failed to build", "failed to push"
    if words[:1] == ["rebase"]:
        code = ExitCode.REBASE
    elif words[:1] == ["lifecycle"] and len(words) == 2:
        from lifecycle.cli.lifecycle import PHASE_EXIT_CODES

        action, code = f"run the {words[1]}", PHASE_EXIT_CODES.get(words[1], ExitCode.FAILED)
    cause = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    if exc.filename is not None:
        cause += f": {exc.filename!s}" + (f" -> {exc.filename2!s}" if exc.filename2 is not None else "")
    hint = _OS_ERROR_HINTS.get(exc.errno or 0)
    return f"failed to {action}: {cause}" + (f" ({hint})" if hint else ""), code


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
    except OSError as exc:
        message, code = os_error_exit(exc, args)
        if {"-v", "--verbose"} & set(takewhile(lambda arg: arg in _GLOBAL_FLAGS, args)):
            traceback.print_exception(exc, file=sys.stderr)  # hoisted: global flags lead ``args``
        log.error(message)
        sys.exit(code)
    sys.exit(code if isinstance(code, int) else 0)
