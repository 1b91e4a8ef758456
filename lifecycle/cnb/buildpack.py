"""buildpack.toml: what a buildpack declares (GEN-3, DET-1, DET-11); extension.toml is in `extension`.

A buildpack with `[[order]]` is a composite (DET-1); one without runs `bin/detect` and
`bin/build`. Targets accept both `variant` and the lifecycle's `arch-variant` (DET-11 Δ), and
`exec-env` both as strings and as `{name = ...}` tables (DET-12 Δ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field

from lifecycle.api import BuildpackFeatures
from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import BuildpackApi, TomlModel
from lifecycle.cnb.ids import BuildpackId
from lifecycle.cnb.order import ExecEnvList, OrderGroup

__all__ = [
    "BuildpackDescriptor",
    "BuildpackInfo",
    "Distro",
    "License",
    "Stack",
    "Target",
    "load_buildpack_toml",
]

_BIONIC_STACK = "io.buildpacks.stacks.bionic"


class Distro(TomlModel):
    """An OS distribution: `name` and, where it matters, `version`."""

    name: str
    version: str | None = None


class Target(TomlModel):
    """A `[[targets]]` entry; an unset field matches anything (DET-11)."""

    os: str | None = None
    arch: str | None = None
    variant: str | None = Field(default=None, validation_alias=AliasChoices("variant", "arch-variant"))
    distros: tuple[Distro, ...] = ()


class Stack(TomlModel):
    """A legacy `[[stacks]]` entry (buildpack API below 0.10)."""

    id: str
    mixins: tuple[str, ...] = ()


class License(TomlModel):
    """A `[[buildpack.licenses]]` entry."""

    type: str | None = None
    uri: str | None = None


class BuildpackInfo(TomlModel):
    """The `[buildpack]` table."""

    id: BuildpackId
    version: str
    name: str = ""
    homepage: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    licenses: tuple[License, ...] = ()
    clear_env: bool = False
    sbom_formats: tuple[str, ...] = ()
    exec_env: ExecEnvList = ()


class BuildpackDescriptor(TomlModel):
    """buildpack.toml; `api` outside 0.7-0.12 fails to load with exit code 12 (GEN-1)."""

    api: BuildpackApi
    buildpack: BuildpackInfo
    order: tuple[OrderGroup, ...] = ()
    stacks: tuple[Stack, ...] = ()
    targets: tuple[Target, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """`id@version`."""
        return f"{self.buildpack.id}@{self.buildpack.version}"

    @property
    def is_composite(self) -> bool:
        """A composite buildpack has an order instead of executables (DET-1)."""
        return bool(self.order)

    @property
    def features(self) -> BuildpackFeatures:
        """What this buildpack's `api` switches on."""
        return BuildpackFeatures.for_api(self.api)

    def effective_targets(self, *, has_bin_build: bool) -> tuple[Target, ...]:
        """The targets to match against the run image (DET-11).

        `[[targets]]` when given; else legacy stacks (bionic is linux/amd64 Ubuntu 18.04, `*`
        matches anything); else `os = linux` when the buildpack has `bin/build`; else none.
        """
        if self.targets:
            return self.targets
        from_stacks = tuple(
            target for stack in self.stacks if (target := _stack_target(stack.id)) is not None
        )
        if from_stacks:
            return from_stacks
        return (Target(os="linux"),) if has_bin_build else ()


def _stack_target(stack_id: str) -> Target | None:
    if stack_id == _BIONIC_STACK:
        return Target(os="linux", arch="amd64", distros=(Distro(name="ubuntu", version="18.04"),))
    if stack_id == "*":
        return Target()
    return None


def load_buildpack_toml(path: Path) -> BuildpackDescriptor:
    """Read buildpack.toml; an unsupported `api` raises ConfigError with exit code 12."""
    return load_model(path, BuildpackDescriptor)
