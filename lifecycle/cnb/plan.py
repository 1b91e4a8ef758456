"""Build plans: a buildpack's detect output (DET-7), plan.toml (DET-10), the buildpack plan
handed to `bin/build` and build.toml's `[[unmet]]` (BLD-2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import TomlModel

__all__ = [
    "BuildToml",
    "BuildpackPlan",
    "DetectPlan",
    "PlanEntry",
    "PlanProvider",
    "PlanSections",
    "PlanToml",
    "Provide",
    "Require",
    "Unmet",
    "load_build_toml",
    "load_buildpack_plan",
    "load_detect_plan",
    "load_plan_toml",
]


class Require(TomlModel):
    """A `[[requires]]` entry: `name` and free `[metadata]` (DET-7)."""

    name: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_top_level_version(cls, raw: Any) -> Any:
        # The lifecycle rejects the pre-0.3 `version` key on a require (DET-7 [L]).
        if isinstance(raw, dict) and "version" in raw:
            name = raw.get("name", "")
            raise ValueError(f'requires "{name}" has a top-level version (move it to [requires.metadata])')
        return raw


class Provide(TomlModel):
    """A `[[provides]]` entry (DET-7)."""

    name: str = Field(min_length=1)


class PlanSections(TomlModel):
    """One alternative of a detect plan: what a buildpack requires and provides."""

    requires: tuple[Require, ...] = ()
    provides: tuple[Provide, ...] = ()


class DetectPlan(PlanSections):
    """What `bin/detect` wrote to its plan file: a top-level pair plus `[[or]]` alternatives (DET-7)."""

    or_: tuple[PlanSections, ...] = Field(default=(), alias="or")

    def alternatives(self) -> tuple[PlanSections, ...]:
        """The alternatives in trial order: the top-level pair first, then each `or` (DET-8)."""
        return (PlanSections(requires=self.requires, provides=self.provides), *self.or_)


class PlanProvider(TomlModel):
    """A provider in a plan.toml entry (DET-10)."""

    id: str
    version: str
    extension: bool = False


class PlanEntry(TomlModel):
    """A plan.toml `[[entries]]` item: every require of one name and the buildpacks providing it."""

    providers: tuple[PlanProvider, ...]
    requires: tuple[Require, ...]


class PlanToml(TomlModel):
    """plan.toml, written by detect and read by build (DET-10)."""

    entries: tuple[PlanEntry, ...] = ()


class BuildpackPlan(TomlModel):
    """The plan file given to `bin/build`: the requires this buildpack provides (BLD-2)."""

    entries: tuple[Require, ...] = ()


class Unmet(TomlModel):
    """A build.toml `[[unmet]]` entry: a plan entry this buildpack left for the next provider."""

    name: str = Field(min_length=1)


class BuildToml(TomlModel):
    """build.toml: `[[unmet]]` (BLD-2); its legacy `[[bom]]` is ignored."""

    unmet: tuple[Unmet, ...] = ()


def load_detect_plan(path: Path) -> DetectPlan:
    """Read the plan file `bin/detect` wrote."""
    return load_model(path, DetectPlan, plain=True)


def load_plan_toml(path: Path) -> PlanToml:
    """Read plan.toml."""
    return load_model(path, PlanToml)


def load_buildpack_plan(path: Path) -> BuildpackPlan:
    """Read a buildpack plan (what `bin/build` got, possibly rewritten by it)."""
    return load_model(path, BuildpackPlan, plain=True)


def load_build_toml(path: Path) -> BuildToml:
    """Read build.toml."""
    return load_model(path, BuildToml, plain=True)
