"""Buildpack groups: order.toml, group.toml (DET-14) and system.toml (DET-13).

`OrderEntry` is one `[[order.group]]` element as written in order.toml, a composite
buildpack's buildpack.toml, or system.toml; `GroupElement` is one element of the group
that passed detection, as written to group.toml and read by the build phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import BuildpackApi, TomlModel
from lifecycle.cnb.ids import BuildpackId

__all__ = [
    "ExecEnvList",
    "GroupElement",
    "GroupToml",
    "OrderEntry",
    "OrderGroup",
    "OrderToml",
    "SystemBuildpacks",
    "SystemOrder",
    "SystemToml",
    "load_group_toml",
    "load_order_toml",
    "load_system_toml",
    "normalize_exec_env",
]


def normalize_exec_env(value: object) -> object:
    """Accept both exec-env forms (DET-12 Δ): `["production"]` and `[{name = "production"}]`."""
    if isinstance(value, list | tuple):
        return tuple(item["name"] if isinstance(item, dict) and "name" in item else item for item in value)
    return value


ExecEnvList = Annotated[tuple[str, ...], BeforeValidator(normalize_exec_env)]
"""Execution environments a buildpack or process is for; empty means all (DET-12)."""


class OrderEntry(TomlModel):
    """A reference to a buildpack in an order: `id`, `version`, `optional` (DET-2)."""

    id: BuildpackId
    version: str
    optional: bool = False
    exec_env: ExecEnvList = ()

    @property
    def ref(self) -> str:
        """`id@version`, the key a buildpack's detect result is cached under (DET-3)."""
        return f"{self.id}@{self.version}"


class OrderGroup(TomlModel):
    """One `[[order]]` entry: a group of buildpacks tried together."""

    group: tuple[OrderEntry, ...] = ()


class OrderToml(TomlModel):
    """order.toml: `[[order]]` groups and, optionally, `[[order-extensions]]`."""

    order: tuple[OrderGroup, ...] = ()
    order_extensions: tuple[OrderGroup, ...] = ()


class GroupElement(TomlModel):
    """A buildpack of the group that passed detection (DET-14): no `optional` any more."""

    id: BuildpackId
    version: str
    api: BuildpackApi
    homepage: str | None = None
    extension: bool = False

    @property
    def ref(self) -> str:
        """`id@version`."""
        return f"{self.id}@{self.version}"


class GroupToml(TomlModel):
    """group.toml: `[[group]]` buildpacks and `[[group-extensions]]` (DET-14)."""

    group: tuple[GroupElement, ...] = ()
    group_extensions: tuple[GroupElement, ...] = ()


class SystemBuildpacks(TomlModel):
    """`[system.pre]` or `[system.post]`: `[[...buildpacks]]` id/version/optional."""

    buildpacks: tuple[OrderEntry, ...] = ()


class SystemOrder(TomlModel):
    """The `[system]` table."""

    pre: SystemBuildpacks = Field(default_factory=SystemBuildpacks)
    post: SystemBuildpacks = Field(default_factory=SystemBuildpacks)


class SystemToml(TomlModel):
    """system.toml (Platform 0.15): buildpacks put before and after every group (DET-13)."""

    system: SystemOrder = Field(default_factory=SystemOrder)

    @property
    def pre(self) -> tuple[OrderEntry, ...]:
        """Buildpacks that go in front of every group."""
        return self.system.pre.buildpacks

    @property
    def post(self) -> tuple[OrderEntry, ...]:
        """Buildpacks that go at the end of every group."""
        return self.system.post.buildpacks


def load_order_toml(path: Path) -> OrderToml:
    """Read order.toml."""
    return load_model(path, OrderToml)


def load_group_toml(path: Path) -> GroupToml:
    """Read group.toml; an unsupported buildpack `api` is an error with exit code 12."""
    return load_model(path, GroupToml)


def load_system_toml(path: Path) -> SystemToml:
    """Read system.toml."""
    return load_model(path, SystemToml)
