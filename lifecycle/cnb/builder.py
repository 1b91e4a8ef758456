"""builder.toml in pack's format: build image, buildpacks, order, run images (+ mirrors).

Image extensions (DET-16) are listed like buildpacks, in `[[extensions]]` (`id`, `version`,
`uri`), and ordered by `[[order-extensions]]` groups, whose entries are always optional.

The legacy `[stack]` table (`build-image`, `run-image`, `run-image-mirrors`) stands in for
`[build]` and `[[run.images]]` when those are absent, so readers only look at `build` and
`run`. `[lifecycle]` is ignored: pybuild is the lifecycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import TomlModel
from lifecycle.cnb.ids import BuildpackId
from lifecycle.cnb.images import RunImageRef
from lifecycle.cnb.order import SystemOrder

__all__ = [
    "BuilderBuild",
    "BuilderBuildpack",
    "BuilderConfig",
    "BuilderEnv",
    "BuilderOrderEntry",
    "BuilderOrderGroup",
    "BuilderRun",
    "BuilderStack",
    "load_builder_toml",
]


class BuilderBuildpack(TomlModel):
    """A `[[buildpacks]]` entry: where to get a buildpack (`uri`) and/or which one (`id`, `version`)."""

    id: str | None = None
    version: str | None = None
    uri: str | None = None

    @model_validator(mode="after")
    def _id_or_uri(self) -> BuilderBuildpack:
        if not self.id and not self.uri:
            raise ValueError("a buildpack has neither id nor uri (set one)")
        return self


class BuilderOrderEntry(TomlModel):
    """An `[[order.group]]` element; `version` may be left for the builder to fill in."""

    id: BuildpackId
    version: str | None = None
    optional: bool = False


class BuilderOrderGroup(TomlModel):
    """An `[[order]]` entry."""

    group: tuple[BuilderOrderEntry, ...] = ()


class BuilderEnv(TomlModel):
    """A `[[build.env]]` operator variable, becoming `<build-config>/env/<name>[.<suffix>]` (BLD-8)."""

    name: str = Field(min_length=1)
    value: str = ""
    suffix: Literal["", "default", "override", "append", "prepend"] = ""
    delim: str = ""


class BuilderBuild(TomlModel):
    """`[build]`: the build image and operator env."""

    image: str = Field(min_length=1)
    env: tuple[BuilderEnv, ...] = ()


class BuilderRun(TomlModel):
    """`[run]`: run images in preference order."""

    images: tuple[RunImageRef, ...] = Field(min_length=1)


class BuilderStack(TomlModel):
    """The legacy `[stack]` table."""

    id: str = ""
    build_image: str = ""
    run_image: str = ""
    run_image_mirrors: tuple[str, ...] = ()


class BuilderConfig(TomlModel):
    """builder.toml."""

    description: str = ""
    buildpacks: tuple[BuilderBuildpack, ...] = ()
    order: tuple[BuilderOrderGroup, ...] = ()
    extensions: tuple[BuilderBuildpack, ...] = ()
    order_extensions: tuple[BuilderOrderGroup, ...] = ()
    build: BuilderBuild
    run: BuilderRun
    stack: BuilderStack | None = None
    system: SystemOrder = Field(default_factory=SystemOrder)

    @model_validator(mode="before")
    @classmethod
    def _stack_fills_build_and_run(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        stack, build = _table(raw, "stack"), _table(raw, "build")
        filled = dict(raw)
        if "image" not in build:
            if not stack.get("build-image"):
                raise ValueError(
                    "build.image is missing (set [build] image, or the legacy [stack] build-image)"
                )
            filled["build"] = {**build, "image": stack["build-image"]}
        if "run" not in raw:
            if not stack.get("run-image"):
                raise ValueError(
                    "run.images is missing (add [[run.images]] image, or the legacy [stack] run-image)"
                )
            run_image = {"image": stack["run-image"], "mirrors": stack.get("run-image-mirrors", [])}
            filled["run"] = {"images": [run_image]}
        return filled


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def load_builder_toml(path: Path) -> BuilderConfig:
    """Read builder.toml."""
    return load_model(path, BuilderConfig)
