"""docs/reference.md, generated from the click definitions: every command, argument and option.

``make docs`` runs ``python -m lifecycle.cli.docs docs/reference.md``; ``--check`` exits 1
when the file differs from what the commands say (CI runs the same comparison as a test).
The output depends only on the click definitions, never on the terminal.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

__all__ = ["main", "reference"]

_HEADER = """\
# Command reference

<!-- Generated from the click definitions by `make docs`; do not edit by hand.
     tests/e2e/test_docs_reference.py fails when this file is out of date. -->

Every command also takes `-v`/`--verbose` and `-q`/`--quiet` (before or after the command
name) and `-h`/`--help`. Errors are one line, `ERROR: failed to <action>: <cause>`, and the
exit code is the CNB code of the phase that failed (20/21 detect, 51/52 build, 62 export,
72 rebase, 12 unsupported buildpack API, 3 bad input).
"""


def reference(root: click.Group, name: str = "pybuild") -> str:
    """The whole reference as Markdown."""
    root_ctx = click.Context(root, info_name=name)
    commands = list(_walk(root, root_ctx))
    lines = [_HEADER, "## Commands", ""]
    for ctx in commands[1:]:
        lines.append(f"- [`{ctx.command_path}`](#{_anchor(ctx.command_path)}): {_summary(ctx.command)}")
    lines.append("")
    for ctx in commands:
        lines += _section(ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


def _walk(command: click.Command, ctx: click.Context) -> Iterator[click.Context]:
    """``ctx`` and then every visible subcommand's context, depth first, by name."""
    yield ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx))


def _anchor(title: str) -> str:
    """The id GitHub gives a heading: lower case, spaces to dashes, punctuation dropped."""
    kept = (c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")
    return "".join(kept)


def _help(command: click.Command) -> str:
    return inspect.cleandoc((command.help or "").split("\f")[0]).replace("\b\n", "")


def _summary(command: click.Command) -> str:
    return _help(command).split("\n\n")[0].replace("\n", " ")


def _section(ctx: click.Context) -> list[str]:
    command = ctx.command
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines = [f"## {ctx.command_path}", "", "```text", usage, "```", ""]
    if _help(command):
        lines += [_help(command), ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        lines += ["Arguments:", ""]
        lines += [f"- `{_argument_name(p, ctx)}`{' (optional)' if not p.required else ''}" for p in arguments]
        lines.append("")
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    options = [p for p in options if p.name != "help"]
    if options:
        lines += ["Options:", ""]
        lines += [_option_line(p, ctx) for p in options]
        lines.append("")
    if isinstance(command, click.Group):
        names = sorted(command.list_commands(ctx))
        lines += [
            "Commands: " + ", ".join(f"[`{n}`](#{_anchor(f'{ctx.command_path} {n}')})" for n in names),
            "",
        ]
    return lines


def _argument_name(argument: click.Argument, ctx: click.Context) -> str:
    return argument.make_metavar(ctx)


def _option_line(option: click.Option, ctx: click.Context) -> str:
    names = ", ".join(f"`{flag}`" for flag in [*option.opts, *option.secondary_opts])
    metavar = "" if option.is_flag or option.count else f" {option.make_metavar(ctx)}"
    parts = [f"- {names}{metavar}"]
    text = (option.help or "").strip()
    notes = [text] if text else []
    if option.required:
        notes.append("Required.")
    if option.multiple:
        notes.append("Repeatable.")
    default = _default(option, ctx)
    if default is not None:
        notes.append(f"Default: `{default}`.")
    if notes:
        parts.append(": " + " ".join(notes))
    return "".join(parts)


def _default(option: click.Option, ctx: click.Context) -> str | None:
    """A plain default worth showing; unset (a sentinel in click 8.3), flags and lists are not."""
    value = option.get_default(ctx, call=False)
    if option.is_flag or option.multiple or isinstance(value, bool):
        return None
    return str(value) if isinstance(value, str | int | float) else None


def main(argv: list[str] | None = None) -> int:
    """``python -m lifecycle.cli.docs [--check] [FILE]``: write (or check) the reference."""
    from lifecycle.cli.main import cli

    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    target = Path(paths[0] if paths else "docs/reference.md")
    text = reference(cli)
    if check:
        current = target.read_text() if target.is_file() else ""
        if current != text:
            print(f"{target} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
