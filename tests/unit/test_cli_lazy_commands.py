"""The CLI imports a command's module only when that command runs; help still lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from lifecycle.cli.main import COMMANDS, cli

# What ``pybuild build`` must not pay for at start-up: other commands, registry and daemon
# clients, progress bars, and the readers of buildpack refs it is not given.
NOT_ON_THE_BUILD_PATH = (
    "rich",
    "httpx",
    "docker",
    "lifecycle.cli.images",
    "lifecycle.cli.autoupdate",
    "lifecycle.cli.buildpack",
    "lifecycle.platform.bpref",
    "lifecycle.backends.registry.store",
)


def _modules_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_importing_the_cli_imports_no_command() -> None:
    loaded = _modules_after("import lifecycle.cli.main")
    assert not {module for module, _ in COMMANDS.values()} & loaded
    assert "pydantic" not in loaded


def test_the_build_command_loads_only_what_a_build_needs() -> None:
    loaded = _modules_after(
        "from lifecycle.cli.main import cli\n"
        "import click\n"
        "command = cli.get_command(click.Context(cli), 'build')\n"
        "import lifecycle.platform.build  # what the command imports when it runs\n"
    )
    assert "lifecycle.cli.build" in loaded and "lifecycle.platform.build" in loaded
    assert sorted(name for name in NOT_ON_THE_BUILD_PATH if name in loaded) == []


def test_every_command_resolves_to_a_click_command_of_its_name() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_every_command_with_its_short_help() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    listed = out.split("Commands:\n", 1)[1].splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == sorted(COMMANDS)
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        summary = command.get_short_help_str(limit=20).rstrip(".")[:15]
        assert any(line.split()[0] == name and summary in line for line in listed if line.strip()), name


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2 and "No such command 'no-such-command'" in result.output
