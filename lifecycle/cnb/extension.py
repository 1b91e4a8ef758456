"""extension.toml and an image extension on disk (DET-16, image extension spec).

An image extension is always a component: its extension.toml has no `[[order]]`. It takes part
in detection like a buildpack but only `provides`; `bin/detect` is optional (a missing one
passes, with `<extension>/detect/plan.toml` as its plan when present). Its `bin/generate` writes
`build.Dockerfile` / `run.Dockerfile`; without one, the `<extension>/generate/` dir is its
ready-made output. The `id`, `version`, `api`, `licenses` and `targets` keys follow buildpack.toml
(GEN-1, GEN-3, DET-11); image extensions came with Buildpack API 0.9, so an older `api` is refused.
extend-config.toml carries the build args `bin/generate` gives its Dockerfiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from lifecycle.api import ApiVersion, BuildpackFeatures
from lifecycle.cnb._files import config_error, load_model
from lifecycle.cnb._model import BuildpackApi, TomlModel
from lifecycle.cnb.buildpack import License, Target
from lifecycle.cnb.ids import BuildpackId
from lifecycle.cnb.order import ExecEnvList
from lifecycle.errors import ExitCode

__all__ = [
    "EXTENSION_TOML",
    "MIN_EXTENSION_API",
    "BuildArg",
    "ExtendArgs",
    "ExtendConfig",
    "ExtensionDescriptor",
    "ExtensionDir",
    "ExtensionInfo",
    "load_extend_config",
    "load_extension_dir",
    "load_extension_toml",
]

EXTENSION_TOML = "extension.toml"
MIN_EXTENSION_API = ApiVersion(0, 9)
"""The first Buildpack API with image extensions."""


class ExtensionInfo(TomlModel):
    """The `[extension]` table."""

    id: BuildpackId
    version: str = Field(min_length=1)
    name: str = ""
    homepage: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    licenses: tuple[License, ...] = ()
    clear_env: bool = False
    exec_env: ExecEnvList = ()


class ExtensionDescriptor(TomlModel):
    """extension.toml; `api` outside the supported range fails to load with exit code 12 (GEN-1)."""

    api: BuildpackApi
    extension: ExtensionInfo
    targets: tuple[Target, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _component_only(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "order" in raw:
            raise ValueError(
                "an image extension cannot have an [[order]] (remove it: extensions are components)"
            )
        return raw

    @property
    def ref(self) -> str:
        """`id@version`."""
        return f"{self.extension.id}@{self.extension.version}"

    @property
    def features(self) -> BuildpackFeatures:
        """What this extension's `api` switches on (the same rules as a buildpack's)."""
        return BuildpackFeatures.for_api(self.api)


@dataclass(frozen=True)
class ExtensionDir:
    """An image extension unpacked at `path`: its descriptor and which executables it has."""

    descriptor: ExtensionDescriptor
    path: Path

    @property
    def ref(self) -> str:
        return self.descriptor.ref

    @property
    def has_detect(self) -> bool:
        """Without `bin/detect` the extension passes detection (image extension spec)."""
        return (self.path / "bin" / "detect").is_file()

    @property
    def has_generate(self) -> bool:
        return (self.path / "bin" / "generate").is_file()

    @property
    def detect_dir(self) -> Path:
        """The ready-made detect output used when there is no `bin/detect`."""
        return self.path / "detect"

    @property
    def generate_dir(self) -> Path:
        """The ready-made generate output used when there is no `bin/generate`."""
        return self.path / "generate"


class BuildArg(TomlModel):
    """A `[[build.args]]` / `[[run.args]]` entry of extend-config.toml."""

    name: str = Field(min_length=1)
    value: str


class ExtendArgs(TomlModel):
    """`[build]` or `[run]` of extend-config.toml."""

    args: tuple[BuildArg, ...] = ()


class ExtendConfig(TomlModel):
    """extend-config.toml: build args an extension gives its build.Dockerfile and run.Dockerfile."""

    build: ExtendArgs = Field(default_factory=ExtendArgs)
    run: ExtendArgs = Field(default_factory=ExtendArgs)

    def args(self, kind: str) -> tuple[BuildArg, ...]:
        """The args for `kind` ("build" or "run")."""
        return self.run.args if kind == "run" else self.build.args


def load_extend_config(path: Path) -> ExtendConfig:
    """Read an extend-config.toml that `bin/generate` wrote (a plain file only)."""
    return load_model(path, ExtendConfig, plain=True)


def load_extension_toml(path: Path) -> ExtensionDescriptor:
    """Read extension.toml; an unsupported `api` raises ConfigError with exit code 12."""
    descriptor = load_model(path, ExtensionDescriptor)
    if descriptor.api < MIN_EXTENSION_API:
        raise config_error(
            path,
            f'api "{descriptor.api}" has no image extensions (use {MIN_EXTENSION_API} or later)',
            exit_code=ExitCode.BUILDPACK_API,
        )
    return descriptor


def load_extension_dir(path: Path) -> ExtensionDir:
    """The extension at `path`: extension.toml, plus `bin/generate` or a `generate/` dir."""
    descriptor = load_extension_toml(path / EXTENSION_TOML)
    found = ExtensionDir(descriptor, path)
    if not found.has_generate and not found.generate_dir.is_dir():
        raise config_error(
            path / EXTENSION_TOML,
            f"extension {descriptor.ref} has neither bin/generate nor a generate/ dir (add bin/generate)",
        )
    return found
