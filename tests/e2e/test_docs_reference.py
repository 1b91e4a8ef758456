"""docs/reference.md is current: it equals what `make docs` generates from the click definitions."""

from __future__ import annotations

import click
import pytest
from support.cli import ROOT

from lifecycle.cli.docs import reference
from lifecycle.cli.main import cli

REFERENCE = ROOT / "docs" / "reference.md"


def _commands(group: click.Group, prefix: str) -> list[str]:
    ctx = click.Context(group, info_name=prefix)
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        paths.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            paths += _commands(command, f"{prefix} {name}")
    return paths


def test_reference_is_current() -> None:
    assert REFERENCE.read_text() == reference(cli), "docs/reference.md is out of date: run `make docs`"


def test_reference_has_a_section_for_every_command_and_every_option() -> None:
    text = reference(cli)
    for path in _commands(cli, "pybuild"):
        assert f"\n## {path}\n" in text, path
    build = text.split("\n## pybuild build\n")[1].split("\n## ")[0]
    assert "- `--path`, `-p` PATH: App source directory. Default: `.`." in build
    assert "- `--network` [host|none]: Default: `host`." in build


def test_reference_is_the_same_whatever_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    first = reference(cli)
    monkeypatch.setenv("COLUMNS", "40")
    assert reference(cli) == first
