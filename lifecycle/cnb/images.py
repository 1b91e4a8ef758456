"""Files that name images, passed between the platform and the phases: run.toml (ANA-3),
analyzed.toml (ANA-2) and report.toml (EXP-13, REB-8).

analyzed.toml's `[metadata]` is the lifecycle label (`LifecycleMetadata`) written with the
label's own key names; the lifecycle's TOML spellings (`run-image`, `top-layer`) are read too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from lifecycle.cnb._files import load_model
from lifecycle.cnb._model import TomlModel
from lifecycle.cnb.buildpack import Distro
from lifecycle.cnb.labels import LifecycleMetadata

__all__ = [
    "AnalyzedRunImage",
    "AnalyzedToml",
    "ImageIdentifier",
    "ImageReport",
    "ReportToml",
    "RunImageRef",
    "RunToml",
    "TargetMetadata",
    "load_analyzed_toml",
    "load_report_toml",
    "load_run_toml",
]


class RunImageRef(TomlModel):
    """A run image and its mirrors (run.toml `[[images]]`, builder.toml `[[run.images]]`)."""

    image: str = Field(min_length=1)
    mirrors: tuple[str, ...] = ()


class RunToml(TomlModel):
    """run.toml: the run images to choose from, first readable one wins (ANA-3)."""

    images: tuple[RunImageRef, ...] = ()


class ImageIdentifier(TomlModel):
    """An image as a digest reference, daemon image ID or layout path (ANA-2)."""

    reference: str


class TargetMetadata(TomlModel):
    """The run image's target (ANA-2, ANA-4); `variant` is read as a synonym of `arch-variant`."""

    id: str | None = None
    os: str
    arch: str
    arch_variant: str | None = Field(default=None, validation_alias=AliasChoices("arch-variant", "variant"))
    distro: Distro | None = None


class AnalyzedRunImage(TomlModel):
    """analyzed.toml `[run-image]`."""

    reference: str
    image: str | None = None
    target: TargetMetadata | None = None
    extend: bool = False


class AnalyzedToml(TomlModel):
    """analyzed.toml (ANA-2): the previous image, its lifecycle metadata, and the run image."""

    image: ImageIdentifier | None = None
    build_image: ImageIdentifier | None = None
    metadata: LifecycleMetadata = Field(default_factory=LifecycleMetadata)
    run_image: AnalyzedRunImage | None = None


class ImageReport(TomlModel):
    """report.toml `[image]` (EXP-13)."""

    tags: tuple[str, ...] = ()
    digest: str = ""
    image_id: str | None = None
    manifest_size: int | None = None


class ReportToml(TomlModel):
    """report.toml, written by export and rebase (EXP-13, REB-8)."""

    image: ImageReport = Field(default_factory=ImageReport)


def load_run_toml(path: Path) -> RunToml:
    """Read run.toml."""
    return load_model(path, RunToml)


def load_analyzed_toml(path: Path) -> AnalyzedToml:
    """Read analyzed.toml."""
    return load_model(path, AnalyzedToml)


def load_report_toml(path: Path) -> ReportToml:
    """Read report.toml."""
    return load_model(path, ReportToml)
