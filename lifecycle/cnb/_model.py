"""Base pydantic models and shared field types for every CNB file format.

TOML files use kebab-case keys (`working-dir`, `clear-env`), so `TomlModel` derives each
alias from the field name. Label JSON mixes styles (`runImage`, `process-types`), so
`LabelModel` spells every alias out, keeps unknown keys for round trips (REB-6), and leaves
out the keys the lifecycle omits when empty (cnb-spec.md §3).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from lifecycle.api import BUILDPACK_APIS, ApiVersion

__all__ = ["BuildpackApi", "FreeForm", "LabelModel", "TomlModel", "sorted_keys"]


def _kebab(field_name: str) -> str:
    return field_name.rstrip("_").replace("_", "-")


class TomlModel(BaseModel):
    """A value read from or written to a CNB TOML file; unknown keys are ignored."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=_kebab,
        defer_build=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


def sorted_keys(value: Any) -> Any:
    """Sort mapping keys at every depth, as Go's encoding/json does (reproducible labels, EXP-6)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_keys(item) for item in value]
    return value


FreeForm = Annotated[dict[str, Any], PlainSerializer(sorted_keys)]
"""A buildpack's own `[metadata]` table: kept as read, written with sorted keys."""

# What Go's `omitempty` leaves out (False and 0 compare equal, as in Go).
_EMPTY: tuple[object, ...] = (None, False, "", [], {}, ())


class LabelModel(BaseModel):
    """A value in an image label's JSON; aliases are explicit, unknown keys survive a round trip."""

    model_config = ConfigDict(
        frozen=True,
        defer_build=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )

    omit_when_empty: ClassVar[frozenset[str]] = frozenset()
    """JSON keys the lifecycle writes with `omitempty`; every other key is written, even as null."""

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {
            key: value
            for key, value in dumped.items()
            if key not in self.omit_when_empty or value not in _EMPTY
        }


def _buildpack_api(value: object) -> ApiVersion:
    if isinstance(value, ApiVersion):
        version = value
    elif isinstance(value, str):
        try:
            version = ApiVersion.parse(value)
        except ValueError:
            raise PydanticCustomError("api_syntax", 'is not an API version (write it as "0.12")') from None
    else:
        raise PydanticCustomError("api_syntax", 'must be a string such as "0.12"')
    if version not in BUILDPACK_APIS:
        raise PydanticCustomError(
            "unsupported_buildpack_api",
            '"{api}" is not supported (use {supported})',
            {"api": str(value), "supported": str(BUILDPACK_APIS)},
        )
    return version


BuildpackApi = Annotated[ApiVersion, PlainValidator(_buildpack_api), PlainSerializer(str, return_type=str)]
"""A buildpack `api` key, parsed once; out of range is an `unsupported_buildpack_api` error (GEN-1)."""
