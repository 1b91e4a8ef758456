"""What `bin/build` leaves in its layers dir, and what the build phase makes of it.

- `<layer>.toml` with `[types]` and `[metadata]` (BLD-3; flags at top level are an error);
- launch.toml processes, labels and slices (BLD-10), checked against the buildpack's API;
- store.toml (BLD-15) and `<layers>/config/metadata.toml` (BLD-14).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from lifecycle.api import ApiVersion, BuildpackFeatures
from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import FreeForm, TomlModel
from lifecycle.cnb.ids import ProcessType
from lifecycle.cnb.order import ExecEnvList, GroupElement

__all__ = [
    "ConfigMetadata",
    "Label",
    "LaunchToml",
    "LayerToml",
    "LayerTypes",
    "MetadataProcess",
    "Process",
    "Slice",
    "StoreToml",
    "load_config_metadata",
    "load_launch_toml",
    "load_layer_toml",
    "load_store_toml",
]

_FLAGS = ("launch", "build", "cache")


class LayerTypes(TomlModel):
    """`[types]` of a layer: missing flags are false (BLD-3)."""

    launch: bool = False
    build: bool = False
    cache: bool = False


class LayerToml(TomlModel):
    """`<layers>/<id>/<name>.toml` (BLD-3)."""

    types: LayerTypes = Field(default_factory=LayerTypes)
    metadata: FreeForm = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flags_under_types(cls, raw: Any) -> Any:
        # Top-level flags are the pre-0.6 layout; the lifecycle rejects them (BLD-3 [L]).
        misplaced = [flag for flag in _FLAGS if isinstance(raw, dict) and flag in raw]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} must be under [types] (move them into a [types] table)")
        return raw


class StoreToml(TomlModel):
    """`<layers>/<id>/store.toml`: `[metadata]` kept between builds (BLD-15)."""

    metadata: FreeForm = Field(default_factory=dict)


def _features(info: ValidationInfo) -> BuildpackFeatures | None:
    return info.context if isinstance(info.context, BuildpackFeatures) else None


class Process(TomlModel):
    """A launch.toml `[[processes]]` entry (BLD-10).

    `command` is kept as a tuple: an API below 0.9 writes a string, which becomes a 1-tuple.
    `direct` exists only below API 0.9; from 0.9 every process is direct and the key is an error.
    """

    type: ProcessType
    command: tuple[str, ...] = Field(min_length=1)
    args: tuple[str, ...] = ()
    direct: bool = False
    default: bool = False
    working_dir: str | None = None
    exec_env: ExecEnvList = ()

    @field_validator("command", mode="before")
    @classmethod
    def _command_shape(cls, value: Any, info: ValidationInfo) -> Any:
        features = _features(info)
        if features is not None and features.command_is_array and not isinstance(value, list | tuple):
            raise ValueError(f'must be an array for buildpack API {features.api} (write command = ["..."])')
        if features is not None and not features.command_is_array and not isinstance(value, str):
            raise ValueError(f'must be a string for buildpack API {features.api} (write command = "...")')
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _direct_allowed(cls, raw: Any, info: ValidationInfo) -> Any:
        features = _features(info)
        if features is not None and not features.direct_allowed and isinstance(raw, dict) and "direct" in raw:
            raise ValueError(
                f'process "{raw.get("type", "")}" sets direct, which buildpack API {features.api} '
                "does not allow (remove it: processes are always direct)"
            )
        return raw


class Label(TomlModel):
    """A launch.toml `[[labels]]` entry (BLD-12)."""

    key: str
    value: str


class Slice(TomlModel):
    """A launch.toml `[[slices]]` entry: globs relative to the app dir (EXP-4)."""

    paths: tuple[str, ...] = ()


class LaunchToml(TomlModel):
    """`<layers>/<id>/launch.toml` (BLD-10); load with `load_launch_toml` to apply API rules."""

    processes: tuple[Process, ...] = ()
    labels: tuple[Label, ...] = ()
    slices: tuple[Slice, ...] = ()

    @model_validator(mode="after")
    def _one_of_each_type_and_default(self) -> LaunchToml:
        types = [process.type for process in self.processes]
        duplicates = sorted({t for t in types if types.count(t) > 1})
        if duplicates:
            raise ValueError(
                f'process type "{duplicates[0]}" is defined twice (give each process its own type)'
            )
        defaults = [process.type for process in self.processes if process.default]
        if len(defaults) > 1:
            raise ValueError(f"processes {', '.join(defaults)} are all default=true (mark at most one)")
        return self


class MetadataProcess(TomlModel):
    """A process as the build phase records it in metadata.toml (BLD-11): owner, no default."""

    type: ProcessType
    command: tuple[str, ...] = Field(min_length=1)
    args: tuple[str, ...] = ()
    direct: bool = False
    buildpack_id: str
    working_dir: str | None = None
    exec_env: ExecEnvList = ()

    @field_validator("command", mode="before")
    @classmethod
    def _legacy_string_command(cls, value: Any) -> Any:
        # Platform API below 0.10 wrote the command as one string.
        return (value,) if isinstance(value, str) else value


class ConfigMetadata(TomlModel):
    """`<layers>/config/metadata.toml`, the launcher's input (BLD-14, LCH-1)."""

    buildpacks: tuple[GroupElement, ...] = ()
    extensions: tuple[GroupElement, ...] = ()
    processes: tuple[MetadataProcess, ...] = ()
    slices: tuple[Slice, ...] = ()
    labels: tuple[Label, ...] = ()
    buildpack_default_process_type: str | None = None


def load_layer_toml(path: Path) -> LayerToml:
    """Read a `<layer>.toml`."""
    return load_model(path, LayerToml, plain=True)


def load_store_toml(path: Path) -> StoreToml:
    """Read a store.toml."""
    return load_model(path, StoreToml, plain=True)


def load_launch_toml(path: Path, api: ApiVersion | BuildpackFeatures) -> LaunchToml:
    """Read launch.toml with the rules of the writing buildpack's API (command shape, direct)."""
    features = api if isinstance(api, BuildpackFeatures) else BuildpackFeatures.for_api(api)
    return load_model(path, LaunchToml, context=features, plain=True)


def load_config_metadata(path: Path) -> ConfigMetadata:
    """Read `<layers>/config/metadata.toml`."""
    return load_model(path, ConfigMetadata, plain=True)
