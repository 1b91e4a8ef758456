"""Dockerfiles written by image extensions: parsing, checks and word expansion.

An extension's ``build.Dockerfile`` must begin with ``ARG base_image`` and
``FROM ${base_image}``; a ``run.Dockerfile`` has one ``FROM``, which may name
another image (a run-image switch). After ``FROM`` only ``ADD``, ``ARG``,
``COPY``, ``ENV``, ``LABEL``, ``RUN``, ``SHELL``, ``USER`` and ``WORKDIR`` are
applied; the spec only recommends that set, pybuild refuses anything else so
that no instruction is silently dropped. Problems found here are
generate-phase errors (exit 92).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lifecycle.errors import ExitCode, ExtendError

__all__ = [
    "BASE_IMAGE_ARG",
    "BODY_KEYWORDS",
    "Dockerfile",
    "Instruction",
    "arg_values",
    "expand_word",
    "parse_dockerfile",
    "split_words",
]

BASE_IMAGE_ARG = "base_image"
BODY_KEYWORDS = frozenset({"ADD", "ARG", "COPY", "ENV", "LABEL", "RUN", "SHELL", "USER", "WORKDIR"})
_BASE_REFS = ("${base_image}", "$base_image")
_FLAGS = {"ADD": {"chown", "chmod"}, "COPY": {"chown", "chmod", "link"}, "FROM": set(), "RUN": set()}
_JSON_FORMS = ("ADD", "COPY", "RUN", "SHELL")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_BYTES = 1 << 20

Kind = Literal["build", "run"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: exec (JSON) form args are a tuple, any other form the raw argument text."""

    keyword: str
    args: tuple[str, ...] | str
    line: int
    flags: Mapping[str, str] = field(default_factory=dict)

    def words(self, variables: Mapping[str, str]) -> list[str]:
        """The arguments as words, variables expanded (a JSON form is expanded word by word)."""
        if isinstance(self.args, tuple):
            return [expand_word(arg, variables, quotes=False) for arg in self.args]
        return split_words(self.args, variables)


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]
    kind: Kind = "run"

    @property
    def from_instruction(self) -> Instruction:
        return next(i for i in self.instructions if i.keyword == "FROM")

    @property
    def meta_args(self) -> tuple[Instruction, ...]:
        """The ``ARG`` lines before ``FROM``: usable in ``FROM`` only."""
        return self.instructions[: self.instructions.index(self.from_instruction)]

    @property
    def body(self) -> tuple[Instruction, ...]:
        """The instructions after ``FROM``: what extends the image."""
        return self.instructions[self.instructions.index(self.from_instruction) + 1 :]

    def base_image(self, build_args: Mapping[str, str]) -> str | None:
        """The image ``FROM`` names once the meta ``ARG``s are substituted; None if it expands to nothing."""
        variables: dict[str, str] = {}
        for arg in self.meta_args:
            variables.update(arg_values(arg, build_args, variables))
        words = self.from_instruction.words(variables)
        return words[0] if words and words[0] else None

    @property
    def switches_base(self) -> bool:
        """``FROM`` names an image other than the ``base_image`` build arg."""
        return _from_word(self.from_instruction) not in _BASE_REFS

    @property
    def extends(self) -> bool:
        return bool(self.body)

    def only_switches_base(self) -> bool:
        """A ``run.Dockerfile`` of just ``ARG``s and a ``FROM`` another image: a run-image switch."""
        return self.switches_base and not self.extends

    def where(self, instruction: Instruction) -> str:
        return f"{self.path} line {instruction.line}"


def arg_values(
    instruction: Instruction, build_args: Mapping[str, str], variables: Mapping[str, str]
) -> dict[str, str]:
    """What an ``ARG`` line declares: the build arg's value, else its default; neither leaves it unset."""
    declared: dict[str, str] = {}
    for word in instruction.words(variables):
        name, has_default, default = word.partition("=")
        if name in build_args:
            declared[name] = build_args[name]
        elif has_default:
            declared[name] = default
    return declared


def _from_word(instruction: Instruction) -> str:
    text = instruction.args if isinstance(instruction.args, str) else " ".join(instruction.args)
    return text.split()[0] if text.split() else ""


def parse_dockerfile(path: Path, *, kind: Kind) -> Dockerfile:
    """Read and check one extension Dockerfile; a one-line ExtendError (exit 92) if it is not valid."""
    try:
        raw = path.read_bytes()[: _MAX_BYTES + 1]
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _invalid(path, f"cannot be read ({exc})") from exc
    if len(raw) > _MAX_BYTES:
        raise _invalid(path, f"is larger than {_MAX_BYTES} bytes")
    dockerfile = Dockerfile(path, tuple(_instructions(path, text)), kind)
    _check(dockerfile)
    return dockerfile


def _invalid(path: Path, problem: str, line: int | None = None) -> ExtendError:
    where = f"{path} line {line}" if line else str(path)
    return ExtendError("read extension Dockerfile", f"{where} {problem}", exit_code=ExitCode.GENERATE_OTHER)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continued lines; drop comments and blanks. The escape character may be set by a directive."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:
        directive = re.fullmatch(r"\s*#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*", line)
        if directive is None:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#") or (not pending and not line.strip()):
            continue
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.endswith(escape):
            pending.append(stripped[: -len(escape)])
            continue
        pending.append(line)
        joined.append((start, "".join(pending).strip()))
        pending = []
    if pending and "".join(pending).strip():
        joined.append((start, "".join(pending).strip()))
    return joined


def _instructions(path: Path, text: str) -> list[Instruction]:
    result = []
    for line, content in _logical_lines(text):
        keyword, _, rest = content.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        flags: dict[str, str] = {}
        if keyword in _FLAGS:
            rest, flags = _flags(path, line, keyword, rest)
        args: tuple[str, ...] | str = rest
        if keyword in _JSON_FORMS and rest.startswith("["):
            args = _json_args(rest)
        result.append(Instruction(keyword, args, line, flags))
    return result


def _flags(path: Path, line: int, keyword: str, rest: str) -> tuple[str, dict[str, str]]:
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, _, value = token[2:].partition("=")
        if name not in _FLAGS[keyword]:
            raise _invalid(path, f"{keyword} flag --{name} is not supported{_flag_hint(keyword, name)}", line)
        flags[name] = value
    return rest, flags


def _flag_hint(keyword: str, name: str) -> str:
    if keyword in ("COPY", "ADD") and name == "from":
        return " (copy files from the extension's context directory instead)"
    return ""


def _json_args(rest: str) -> tuple[str, ...] | str:
    try:
        value = json.loads(rest)
    except ValueError:
        return rest  # not JSON: Docker treats it as the shell form
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return rest


def _check(dockerfile: Dockerfile) -> None:
    path = dockerfile.path
    froms = [i for i in dockerfile.instructions if i.keyword == "FROM"]
    if not froms:
        raise _invalid(path, "has no FROM instruction")
    if len(froms) > 1:
        raise _invalid(path, "has a second FROM: multi-stage Dockerfiles are not allowed", froms[1].line)
    for instruction in dockerfile.meta_args:
        if instruction.keyword != "ARG":
            raise _invalid(
                path, f"has {instruction.keyword} before FROM (only ARG may come first)", instruction.line
            )
    if dockerfile.kind == "build":
        _check_build_preamble(dockerfile)
    _check_from(dockerfile, froms[0])
    for instruction in dockerfile.body:
        _check_body(dockerfile, instruction)


def _check_build_preamble(dockerfile: Dockerfile) -> None:
    names = [word.partition("=")[0] for arg in dockerfile.meta_args for word in arg.words({})]
    if names != [BASE_IMAGE_ARG]:
        raise _invalid(dockerfile.path, "must begin with `ARG base_image` (and no other ARG before FROM)")
    if dockerfile.switches_base:
        line = dockerfile.from_instruction.line
        raise _invalid(
            dockerfile.path, "must build FROM ${base_image}: a build.Dockerfile cannot switch images", line
        )


def _check_from(dockerfile: Dockerfile, instruction: Instruction) -> None:
    words = instruction.words({})
    if not words or len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
        raise _invalid(
            dockerfile.path, "has a malformed FROM (expected FROM <image> [AS <name>])", instruction.line
        )


def _check_body(dockerfile: Dockerfile, instruction: Instruction) -> None:
    path, line, keyword = dockerfile.path, instruction.line, instruction.keyword
    if keyword not in BODY_KEYWORDS:
        allowed = ", ".join(sorted(BODY_KEYWORDS))
        raise _invalid(
            path, f"has instruction {keyword}, which extensions may not use (allowed: {allowed})", line
        )
    text = instruction.args if isinstance(instruction.args, str) else "x"
    if not text.strip():
        raise _invalid(path, f"has {keyword} with no arguments", line)
    if keyword in ("RUN", "COPY", "ADD") and isinstance(instruction.args, str) and "<<" in text.split()[0]:
        raise _invalid(path, f"uses a heredoc in {keyword}, which is not supported", line)
    if keyword == "SHELL" and not isinstance(instruction.args, tuple):
        raise _invalid(path, 'has SHELL not in JSON form (write SHELL ["/bin/sh", "-c"])', line)
    if keyword in ("COPY", "ADD"):
        _check_copy(dockerfile, instruction)
    try:
        words = [] if keyword in ("RUN", "SHELL") else instruction.words({})
    except ValueError as exc:
        raise _invalid(path, f"has a malformed {keyword}: {exc}", line) from exc
    if keyword in ("ENV", "LABEL") and len(words) > 1 and "=" not in words[0]:
        return  # the legacy `ENV name value` form
    if keyword in ("ENV", "LABEL", "ARG"):
        for word in words:
            name, eq, _ = word.partition("=")
            if (
                (keyword != "ARG" and not eq)
                or not name
                or (keyword != "LABEL" and not _NAME.fullmatch(name))
            ):
                raise _invalid(path, f"has a malformed {keyword} {word!r} (expected name=value)", line)


def _check_copy(dockerfile: Dockerfile, instruction: Instruction) -> None:
    path, line = dockerfile.path, instruction.line
    chmod = instruction.flags.get("chmod")
    if chmod is not None and not re.fullmatch(r"[0-7]{3,4}", chmod):
        raise _invalid(path, f"has {instruction.keyword} --chmod={chmod} (expected an octal mode)", line)
    try:
        words = instruction.words({})
    except ValueError as exc:
        raise _invalid(path, f"has a malformed {instruction.keyword}: {exc}", line) from exc
    if len(words) < 2:
        raise _invalid(path, f"has {instruction.keyword} without a source and a destination", line)
    for source in words[:-1]:
        if re.match(r"^[a-z][a-z0-9+.-]*://|^git@", source):
            raise _invalid(path, f"has {instruction.keyword} from a URL ({source}); only context files", line)


def expand_word(word: str, variables: Mapping[str, str], *, quotes: bool = True) -> str:
    """One word with ``$name``, ``${name}``, ``${name:-default}`` and ``${name:+other}`` expanded."""
    words = _lex(word, variables, split=False, quotes=quotes)
    return words[0] if words else ""


def split_words(text: str, variables: Mapping[str, str]) -> list[str]:
    """Shell-like words: quotes and backslashes removed, variables expanded, split on blanks."""
    return _lex(text, variables, split=True, quotes=True)


def _lex(text: str, variables: Mapping[str, str], *, split: bool, quotes: bool) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    started = False
    i = 0
    while i < len(text):
        char = text[i]
        if split and char.isspace():
            if started:
                words.append("".join(current))
                current, started = [], False
            i += 1
            continue
        started = True
        if char == "\\" and quotes and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
        elif char == "'" and quotes:
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated single quote")
            current.append(text[i + 1 : end])
            i = end + 1
        elif char == '"' and quotes:
            i = _double_quoted(text, i + 1, variables, current)
        elif char == "$":
            i = _variable(text, i, variables, current)
        else:
            current.append(char)
            i += 1
    if started:
        words.append("".join(current))
    return words


def _double_quoted(text: str, i: int, variables: Mapping[str, str], current: list[str]) -> int:
    while i < len(text):
        char = text[i]
        if char == '"':
            return i + 1
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$':
            current.append(text[i + 1])
            i += 2
        elif char == "$":
            i = _variable(text, i, variables, current)
        else:
            current.append(char)
            i += 1
    raise ValueError("unterminated double quote")


def _variable(text: str, i: int, variables: Mapping[str, str], current: list[str]) -> int:
    if text.startswith("${", i):
        end = text.find("}", i)
        if end < 0:
            raise ValueError("unterminated ${")
        current.append(_substitute(text[i + 2 : end], variables))
        return end + 1
    name = _NAME.match(text, i + 1)
    if name is None:
        current.append("$")
        return i + 1
    current.append(variables.get(name.group(), ""))
    return name.end()


def _substitute(expression: str, variables: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])(.*))?", expression, re.DOTALL)
    if match is None:
        raise ValueError(f"bad substitution ${{{expression}}}")
    name, operator, word = match.groups()
    colon = expression[len(name) : len(name) + 1] == ":"
    value = variables.get(name)
    is_set = value is not None and (value != "" or not colon)
    if operator == "-":
        return value if is_set and value is not None else expand_word(word, variables)
    if operator == "+":
        return expand_word(word, variables) if is_set else ""
    return value or ""
