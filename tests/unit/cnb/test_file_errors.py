"""Every load error is one line naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb import load_buildpack_toml, load_order_toml
from lifecycle.errors import ConfigError, ExitCode


def test_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "order.toml"
    with pytest.raises(ConfigError) as caught:
        load_order_toml(path)
    assert str(caught.value) == f"failed to read order.toml: {path}: does not exist (check the path)"
    assert caught.value.exit_code == ExitCode.BAD_ARGS


def test_bad_toml_syntax_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "order.toml"
    path.write_text("[[order]\n")
    with pytest.raises(
        ConfigError, match=r"order.toml: is not valid TOML: .*line 1, column .* \(fix the syntax\)"
    ):
        load_order_toml(path)


def test_wrong_type_names_the_nested_field_and_what_was_given(tmp_path: Path) -> None:
    path = tmp_path / "order.toml"
    path.write_text('[[order]]\n[[order.group]]\nid = "a"\nversion = "1"\noptional = "maybe"\n')
    with pytest.raises(ConfigError) as caught:
        load_order_toml(path)
    assert str(caught.value.cause) == (
        f"{path}: order[0].group[0].optional is invalid: input should be a valid boolean, "
        "unable to interpret input (got 'maybe')"
    )


def test_long_bad_values_are_shortened_to_keep_one_line(tmp_path: Path) -> None:
    path = tmp_path / "buildpack.toml"
    path.write_text('api = "0.12"\n[buildpack]\nversion = "1"\nid = [' + ", ".join(['"x"'] * 40) + "]\n")
    with pytest.raises(ConfigError) as caught:
        load_buildpack_toml(path)
    message = str(caught.value)
    assert "buildpack.id is invalid: input should be a valid string (got ['x', " in message
    assert "...)" in message and "\n" not in message and len(message) < 200 + len(str(path))
