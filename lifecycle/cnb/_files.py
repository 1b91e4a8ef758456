"""Reading and writing CNB files: TOML via tomllib/tomli_w, labels via JSON.

Every failure becomes one `ConfigError` line that names the file, the field and the fix,
e.g. ``/cnb/buildpacks/acme_x/1/buildpack.toml: api "0.99" is not supported (use 0.7 - 0.12)``.
An unsupported buildpack `api` carries exit code 12 (GEN-1).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lifecycle.errors import ConfigError, ExitCode

__all__ = [
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

# pydantic error types that mean an API is out of range rather than a malformed file.
_EXIT_CODES = {"unsupported_buildpack_api": ExitCode.BUILDPACK_API}


def load_model(path: Path, model: type[ModelT], *, context: object = None) -> ModelT:
    """Read the TOML file at `path` as `model`; `context` reaches context-aware validators."""
    return validate(path, model, read_toml(path), context=context)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at `path` as plain data."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise config_error(path, "does not exist (check the path)") from None
    except OSError as exc:
        raise config_error(path, f"cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise config_error(path, f"is not valid TOML: {exc} (fix the syntax)") from None


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
    """Write `model` as TOML to `path` (see `dump_toml`)."""
    path.write_text(dump_toml(model))


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
