"""``--secret id=ID,env=NAME|src=FILE``: parsed once, values read into memory, mistakes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import ConfigError, ExitCode
from lifecycle.execution.secrets import Secret, Secrets
from lifecycle.platform.secrets import MAX_SECRET_BYTES, check_secrets, parse_secret, parse_secrets

ENV = {"PIP_TOKEN": "tok-0123456789", "SHORT": "abc", "PADDED": "  abc  \n"}


def test_a_secret_comes_from_pybuilds_env_or_a_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"\xffbinary-key\n")
    parsed = parse_secrets(["id=pip-token,env=PIP_TOKEN", f"id=index.key_1,src={key}"], ENV)
    assert parsed == Secrets(
        (Secret("pip-token", b"tok-0123456789"), Secret("index.key_1", b"\xffbinary-key\n"))
    )
    assert parse_secret(f"source={key},id=k", ENV).value == b"\xffbinary-key\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("id=../x,env=PIP_TOKEN", "id='../x': an id is a file name"),
        ("id=-x,env=PIP_TOKEN", "id='-x': an id is a file name"),
        ("env=PIP_TOKEN", "no id: an id is a file name"),
        ("id=" + "a" * 129 + ",env=PIP_TOKEN", "an id is a file name"),
        ("id=a", "id=a: give exactly one of env=NAME and src=FILE"),
        ("id=a,env=PIP_TOKEN,src=/x", "id=a: give exactly one of env=NAME and src=FILE"),
        ("id=a,env=NOPE", "id=a: environment variable NOPE is not set (export it, or use src=FILE)"),
        ("id=a,env=", "id=a: env= names no variable"),
        ("id=a,src=/nonexistent/key", "id=a: cannot read /nonexistent/key: No such file or directory"),
        ("id=a,value=x", "unknown key 'value' in a --secret value"),
        ("id=a,id=b,env=PIP_TOKEN", "id= is given twice"),
        ("id=a,env=SHORT", "id=a: the value has fewer than 8 bytes"),
        ("id=a,env=PADDED", "id=a: the value has fewer than 8 bytes"),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_flag_and_the_fix(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_secret(spec, ENV)
    text = str(caught.value)
    assert text.startswith("failed to read --secret: ") and message in text and "\n" not in text
    assert caught.value.exit_code == ExitCode.BAD_ARGS


def test_a_bare_word_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_secret("hunter2-token-value", ENV)
    assert "hunter2" not in str(caught.value) and "KEY=VALUE" in str(caught.value)


def test_an_id_given_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="id=a is given twice"):
        parse_secrets(["id=a,env=PIP_TOKEN", "id=a,env=PIP_TOKEN"], ENV)


def test_an_unreadable_or_oversized_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Is a directory"):
        parse_secret(f"id=a,src={tmp_path}", ENV)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 512 KiB"):
        parse_secret(f"id=a,src={big}", ENV)


def test_docker_executor_and_env_values_holding_a_secret_are_refused() -> None:
    given = parse_secrets(["id=a,env=PIP_TOKEN"], ENV)
    with pytest.raises(ConfigError, match="--executor docker mounts no secrets"):
        check_secrets(given, executor="docker", env={})
    with pytest.raises(ConfigError, match="drop --env TOKEN_COPY") as caught:
        check_secrets(given, executor="bwrap", env={"TOKEN_COPY": "x tok-0123456789"})
    assert "tok-0123456789" not in str(caught.value)
    check_secrets(given, executor="host", env={"OTHER": "1"})
    check_secrets(Secrets(), executor="docker", env={"A": "tok-0123456789"})
