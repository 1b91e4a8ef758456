"""Extension Dockerfiles: parsing, the spec's build/run rules, and ARG/ENV word expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb.dockerfile import Dockerfile, expand_word, parse_dockerfile, split_words
from lifecycle.errors import ExitCode, ExtendError

BUILD_PREAMBLE = "ARG base_image\nFROM ${base_image}\n"


def write(tmp_path: Path, text: str, name: str = "run.Dockerfile") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def parse(tmp_path: Path, text: str, kind: str = "run") -> Dockerfile:
    return parse_dockerfile(write(tmp_path, text, f"{kind}.Dockerfile"), kind=kind)  # type: ignore[arg-type]


def test_parses_instructions_with_lines_flags_and_forms(tmp_path: Path) -> None:
    dockerfile = parse(
        tmp_path,
        BUILD_PREAMBLE
        + "# a comment\n\nUSER root\nRUN apt-get update && \\\n    apt-get install -y hello\n"
        + 'RUN ["/bin/echo", "exec form"]\nCOPY --chown=1000:1000 --chmod=0644 a b /dest/\n',
        "build",
    )

    keywords = [(i.keyword, i.line) for i in dockerfile.instructions]
    assert keywords == [("ARG", 1), ("FROM", 2), ("USER", 5), ("RUN", 6), ("RUN", 8), ("COPY", 9)]
    run, exec_form, copy = dockerfile.instructions[3:]
    assert run.args == "apt-get update &&     apt-get install -y hello"
    assert exec_form.args == ("/bin/echo", "exec form")
    assert copy.flags == {"chown": "1000:1000", "chmod": "0644"}
    assert copy.args == "a b /dest/"


def test_escape_directive_changes_the_continuation_character(tmp_path: Path) -> None:
    dockerfile = parse(tmp_path, "# escape=`\nFROM ${base_image}\nRUN echo a `\n  b\n")

    assert dockerfile.body[0].args == "echo a   b"


def test_build_dockerfile_must_begin_with_the_base_image_arg(tmp_path: Path) -> None:
    with pytest.raises(ExtendError) as raised:
        parse(tmp_path, "FROM ${base_image}\nRUN true\n", "build")

    assert raised.value.exit_code == ExitCode.GENERATE_OTHER == 92
    assert "must begin with `ARG base_image`" in str(raised.value)
    assert "build.Dockerfile" in str(raised.value)


def test_build_dockerfile_cannot_switch_the_base_image(tmp_path: Path) -> None:
    with pytest.raises(ExtendError, match="line 2 must build FROM"):
        parse(tmp_path, "ARG base_image\nFROM debian:bookworm\n", "build")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("FROM ${base_image}\nEXPOSE 8080\n", "line 2 has instruction EXPOSE, which extensions may not use"),
        ('FROM ${base_image}\nCMD ["x"]\n', "has instruction CMD"),
        ("FROM ${base_image}\nFROM other\n", "line 2 has a second FROM: multi-stage"),
        ("RUN true\nFROM ${base_image}\n", "has RUN before FROM"),
        ("ARG x=1\n", "has no FROM instruction"),
        ("FROM ${base_image}\nCOPY --from=builder /a /b\n", "COPY flag --from is not supported"),
        ("FROM ${base_image}\nRUN --mount=type=cache,target=/x true\n", "RUN flag --mount is not supported"),
        ("FROM ${base_image}\nRUN <<EOF\necho\nEOF\n", "heredoc"),
        ("FROM ${base_image}\nCOPY onlyone\n", "without a source and a destination"),
        ("FROM ${base_image}\nADD https://example.com/x.tgz /x\n", "from a URL"),
        ("FROM ${base_image}\nCOPY --chmod=rwx a /b\n", "expected an octal mode"),
        ("FROM ${base_image}\nSHELL /bin/bash -c\n", "SHELL not in JSON form"),
        ("FROM ${base_image}\nENV 'unterminated\n", "malformed ENV"),
        ("FROM ${base_image}\nENV 1BAD=x\n", "malformed ENV '1BAD=x'"),
        ("FROM ${base_image}\nUSER\n", "USER with no arguments"),
        ("FROM a b c d\n", "malformed FROM"),
    ],
)
def test_invalid_run_dockerfiles_are_generate_errors(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ExtendError) as raised:
        parse(tmp_path, text)

    assert problem in str(raised.value)
    assert raised.value.exit_code == 92


def test_unreadable_dockerfile_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ExtendError, match=r"missing\.Dockerfile cannot be read"):
        parse_dockerfile(tmp_path / "missing.Dockerfile", kind="run")


def test_from_base_image_extends_and_does_not_switch(tmp_path: Path) -> None:
    dockerfile = parse(tmp_path, "ARG base_image\nFROM ${base_image}\nRUN true\n")

    assert not dockerfile.switches_base
    assert dockerfile.extends
    assert not dockerfile.only_switches_base()
    assert dockerfile.base_image({"base_image": "registry/run:1"}) == "registry/run:1"


def test_run_dockerfile_with_only_from_another_image_is_a_switch(tmp_path: Path) -> None:
    dockerfile = parse(tmp_path, "ARG tag=2\nFROM pybuild/run:bookworm-${tag}\n")

    assert dockerfile.only_switches_base()
    assert dockerfile.base_image({}) == "pybuild/run:bookworm-2"
    assert dockerfile.base_image({"tag": "3"}) == "pybuild/run:bookworm-3"


def test_switch_that_also_extends_is_not_only_a_switch(tmp_path: Path) -> None:
    dockerfile = parse(tmp_path, "FROM pybuild/run:other AS base\nUSER 1000\n")

    assert dockerfile.switches_base and not dockerfile.only_switches_base()
    assert dockerfile.base_image({}) == "pybuild/run:other"


def test_base_image_is_none_when_from_expands_to_nothing(tmp_path: Path) -> None:
    dockerfile = parse(tmp_path, "ARG base_image\nFROM ${base_image}\n")

    assert dockerfile.base_image({}) is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$name", "value"),
        ("${name}-x", "value-x"),
        ("${unset:-fallback}", "fallback"),
        ("${empty:-fallback}", "fallback"),
        ("${empty-fallback}", ""),
        ("${name:+other}", "other"),
        ("${unset:+other}", ""),
        ("\\$name", "$name"),
        ("'$name'", "$name"),
        ('"$name and \\"q\\""', 'value and "q"'),
        ("$", "$"),
    ],
)
def test_expand_word_follows_dockerfile_substitution(word: str, expected: str) -> None:
    assert expand_word(word, {"name": "value", "empty": ""}) == expected


def test_split_words_keeps_quoted_blanks_and_expanded_values_together() -> None:
    assert split_words('A=1 B="two words" C=$v', {"v": "x y"}) == ["A=1", "B=two words", "C=x y"]
