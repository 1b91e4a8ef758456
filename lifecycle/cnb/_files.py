"""Reading and writing CNB files: TOML via tomllib/tomli_w, labels via JSON.

Every failure becomes one `ConfigError` line that names the file, the field and the fix,
e.g. ``/cnb/buildpacks/acme_x/1/buildpack.toml: api "0.99" is not supported (use 0.7 - 0.12)``.
An unsupported buildpack `api` carries exit code 12 (GEN-1).
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lifecycle.errors import ConfigError, ExitCode
from lifecycle.fsutil import UnsafePath, write_replacing

__all__ = [
    "MAX_BUILDPACK_TOML",
    "config_error",
    "describe",
    "dump_toml",
    "label_json",
    "load_model",
    "parse_label",
    "read_toml",
    "validate",
    "write_toml",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BUILDPACK_TOML = 8 << 20
"""The most bytes of a TOML file a buildpack wrote that are read (its metadata ends up in a label)."""

# pydantic error types that mean an API is out of range rather than a malformed file.
_EXIT_CODES = {"unsupported_buildpack_api": ExitCode.BUILDPACK_API}


def load_model(path: Path, model: type[ModelT], *, context: object = None, plain: bool = False) -> ModelT:
    """Read the TOML file at `path` as `model`; `context` reaches context-aware validators.

    `plain` is for files a buildpack wrote (see `read_toml`).
    """
    return validate(path, model, read_toml(path, plain=plain), context=context)


def read_toml(path: Path, *, plain: bool = False) -> dict[str, Any]:
    """The TOML file at `path` as plain data.

    With `plain`, for a file a buildpack wrote, the file must be a regular file of at most
    `MAX_BUILDPACK_TOML` bytes, not a symbolic link: a link made in the sandbox would be
    resolved against the host's filesystem here (a host file read into the image), and a FIFO
    or `/dev/zero` would hang or exhaust the lifecycle.
    """
    try:
        return tomllib.loads(_read_plain(path) if plain else path.read_text())
    except FileNotFoundError:
        raise config_error(path, "does not exist (check the path)") from None
    except OSError as exc:
        if plain and exc.errno == errno.ELOOP:
            raise config_error(path, "is a symbolic link (write a plain file)") from None
        raise config_error(path, f"cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise config_error(path, f"is not valid TOML: {exc} (fix the syntax)") from None
    except RecursionError:
        raise config_error(path, "nests arrays or tables too deeply to read") from None


def validate(
    source: Path,
    model: type[ModelT],
    raw: Any,
    *,
    context: object = None,
    renamed: Mapping[str, str] | None = None,
) -> ModelT:
    """Validate already-parsed data as `model`, naming `source` in the error.

    `renamed` maps a top-level key of `raw` back to where it sits in the file, for data that
    was reshaped before validation.
    """
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        detail = describe(first, renamed or {})
        raise config_error(source, detail, exit_code=_EXIT_CODES.get(first["type"])) from None


def describe(error: ErrorDetails, renamed: Mapping[str, str]) -> str:
    """One pydantic error as `<field> <problem> (<fix>)`."""
    loc = error["loc"]
    if loc and isinstance(loc[0], str) and loc[0] in renamed:
        loc = (renamed[loc[0]], *loc[1:])
    field = _dotted(loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{field} is missing (add it)"
    if not field:
        return message
    if error["type"] in ("api_syntax", "unsupported_buildpack_api"):
        return f"{field} {message}"
    if error["type"] == "value_error":
        return f"{field}: {message}"
    got = repr(error["input"])
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{field} is invalid: {message[:1].lower()}{message[1:]} (got {got})"


def _dotted(loc: tuple[int | str, ...]) -> str:
    """`("order", 0, "group", 1, "id")` as `order[0].group[1].id`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def config_error(path: Path, detail: str, *, exit_code: int | None = None) -> ConfigError:
    """The one-line error for a problem `detail` in the file at `path`."""
    return ConfigError(f"read {path.name}", f"{path}: {detail}", exit_code=exit_code)


def dump_toml(model: BaseModel) -> str:
    """TOML text of `model`: aliases as keys, unset and default values left out (TOML has no null)."""
    return tomli_w.dumps(model.model_dump(exclude_none=True, exclude_defaults=True))


def write_toml(path: Path, model: BaseModel) -> None:
    """Write `model` as TOML to `path` (see `dump_toml`), in one rename.

    Files under the layers dir sit where buildpacks write too: whatever is at `path` (a
    symbolic link a buildpack left there included) is replaced, never written through, and
    a parent dir that is a symbolic link is refused (`lifecycle.fsutil.write_replacing`).
    """
    try:
        write_replacing(path, dump_toml(model).encode())
    except UnsafePath as exc:
        raise ConfigError(f"write {path.name}", str(exc)) from None


def _read_plain(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise config_error(path, "is not a regular file (write a plain file)")
        data = source.read(MAX_BUILDPACK_TOML + 1)
    if len(data) > MAX_BUILDPACK_TOML:
        raise config_error(path, f"is larger than {MAX_BUILDPACK_TOML} bytes")
    return data.decode()


def parse_label(label: str, model: type[ModelT], text: str) -> ModelT:
    """Parse the JSON value of image label `label` as `model`; errors name the label."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        detail = (
            f"is not valid JSON: {first['msg']}" if first["type"] == "json_invalid" else describe(first, {})
        )
        raise ConfigError(f"read label {label}", f"label {label}: {detail}") from None


def label_json(model: BaseModel) -> str:
    """Compact JSON with keys in declaration order, the way the lifecycle writes labels (EXP-6)."""
    return model.model_dump_json()
