"""stack.toml: the shipped stacks parse, and every malformed file gets a one-line message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import StackError
from lifecycle.platform.stack_spec import load_stack

STACKS = Path(__file__).parents[3] / "stacks"

VALID = """
id = "io.example.stacks.mini"
name = "mini"
description = "a test stack"
maintainer = "tests"
homepage = "https://example.test/mini"
source-date-epoch = 1700000000

[debs]

[build]
packages = ["busybox-static"]

[run]
packages = ["busybox-static"]

[run.patch]
files = { "/etc/release" = "2" }
"""


def write_stack(tmp_path: Path, text: str) -> Path:
    stack_dir = tmp_path / "mini"
    stack_dir.mkdir(exist_ok=True)
    (stack_dir / "stack.toml").write_text(text)
    return stack_dir


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(StackError) as caught:
        load_stack(write_stack(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"failed to read stack: {tmp_path / 'mini' / 'stack.toml'}: ")
    return message.split("stack.toml: ", 1)[1]


@pytest.mark.parametrize("name", ["tiny", "bookworm"])
def test_shipped_stacks_are_valid(name: str) -> None:
    spec = load_stack(STACKS / name)
    assert spec.name == name
    assert spec.id == f"io.pybuild.stacks.{name}"
    assert spec.run.patch.files or spec.run.patch.packages


def test_valid_stack_gets_defaults_for_the_user(tmp_path: Path) -> None:
    spec = load_stack(write_stack(tmp_path, VALID))
    assert (spec.user.name, spec.user.uid, spec.user.gid, spec.user.home) == ("cnb", 1000, 1000, "/home/cnb")
    assert spec.debs is not None and spec.mmdebstrap is None


# (text in VALID, its replacement, the message after "<file>: ")
MALFORMED = [
    (
        'packages = ["busybox-static"]\n\n[run.patch]',
        'packages = "busybox-static"\n\n[run.patch]',
        "run.packages must be a list of Debian package names",
    ),
    (
        '[run]\npackages = ["busybox-static"]',
        '[run]\npackages = ["Busybox"]',
        "run.packages must be a list of Debian package names",
    ),
    ('"/etc/release"', '"etc/release"', "run.patch.files must be a table of absolute paths to file contents"),
    (
        "source-date-epoch = 1700000000",
        'source-date-epoch = "yesterday"',
        "source-date-epoch must be a Unix time in whole seconds, e.g. 1700000000",
    ),
    (
        'id = "io.example.stacks.mini"',
        'id = "mini"',
        "id must be a reverse-DNS id such as io.pybuild.stacks.tiny",
    ),
    (
        'name = "mini"',
        'name = "Mini:1"',
        "name must be a tag-safe name: lowercase letters, digits, '.', '_' or '-'",
    ),
    (
        "[debs]",
        "[debs]\n[user]\nuid = 0",
        "user.uid must be an integer from 1 to 2147483647 (images run as this non-root user)",
    ),
    ('homepage = "https://example.test/mini"', 'homepage = "x.test"', "homepage must be an http(s) URL"),
    (
        "[debs]",
        '[debs]\nlinks = { "bin/sh" = "busybox" }',
        "debs.links must be a table of absolute symlink paths to their targets",
    ),
    ("[run]\n", "[run]\npakages = []\n", "unknown key run.pakages: remove it or correct its spelling"),
    ('[run.patch]\nfiles = { "/etc/release" = "2" }', "", "run.patch is missing: add it"),
    (
        'files = { "/etc/release" = "2" }',
        "",
        "run.patch must add packages or files, so version 2 differs from version 1",
    ),
    (
        "[debs]",
        '[debs]\n[mmdebstrap]\nsuite = "bookworm"\nvariant = "minbase"',
        "give exactly one of [debs] or [mmdebstrap] to say how the images are made",
    ),
    (
        "[debs]",
        '[mmdebstrap]\nsuite = "bookworm"\nvariant = "tiny"',
        "mmdebstrap.variant must be one of essential, apt, required, minbase, buildd, important, standard",
    ),
    (
        '[build]\npackages = ["busybox-static"]',
        "[build]",
        "build.packages and run.packages must not be empty with [debs]",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), MALFORMED)
def test_malformed_stack_names_field_and_fix(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VALID
    assert error_for(tmp_path, VALID.replace(old, new, 1)) == expected


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    assert error_for(tmp_path, 'name = "mini\n').startswith("not valid TOML: ")


def test_missing_stack_toml_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"stack.toml does not exist: a stack directory needs a stack.toml"):
        load_stack(tmp_path)


def test_path_filter_keeps_included_files_of_excluded_dirs(tmp_path: Path) -> None:
    text = VALID.replace(
        "[debs]", '[debs]\npath-exclude = ["/usr/share/doc/*"]\npath-include = ["/usr/share/doc/*/copyright"]'
    )
    debs = load_stack(write_stack(tmp_path, text)).debs
    assert debs is not None
    assert not debs.keeps("/usr/share/doc/bash/changelog.gz")
    assert debs.keeps("/usr/share/doc/bash/copyright")
    assert debs.keeps("/usr/bin/bash")
