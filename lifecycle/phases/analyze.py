"""The analyze phase: what the previous image can give this build (ANA-1, ANA-2).

The platform finds the previous image (``--previous-image`` or the output image's current
tag) and hands it over, or None. Here its lifecycle label is parsed; an image without a
label, or with one that is not valid, counts as no previous image (ANA-1): the build goes
on from scratch, with a warning in the second case. ``analyzed.toml`` (ANA-2) records what
was found, as the lifecycle writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.cnb import parse_label, write_toml
from lifecycle.cnb.buildpack import Distro
from lifecycle.cnb.images import AnalyzedRunImage, AnalyzedToml, ImageIdentifier, TargetMetadata
from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL, LifecycleMetadata
from lifecycle.errors import ConfigError
from lifecycle.oci.image import Image

__all__ = ["Analysis", "analyze", "write_analyzed_toml"]


@dataclass(frozen=True)
class Analysis:
    """The previous image and its label, or neither."""

    image: Image | None = None
    reference: str | None = None  # how the previous image was named, for analyzed.toml
    metadata: LifecycleMetadata | None = None

    def layer_sha(self, buildpack_id: str, name: str) -> str | None:
        """The diffID the previous image recorded for a launch layer."""
        for entry in self.metadata.buildpacks if self.metadata else ():
            if entry.key == buildpack_id and name in entry.layers:
                return entry.layers[name].sha or None
        return None


def analyze(previous: Image | None, reference: str | None, warn: Callable[[str], None]) -> Analysis:
    """Parse the previous image's lifecycle label (ANA-1: a bad or missing one means no image)."""
    if previous is None:
        return Analysis()
    raw = previous.labels.get(LIFECYCLE_METADATA_LABEL)
    if raw is None:
        return Analysis()
    try:
        metadata = parse_label(LIFECYCLE_METADATA_LABEL, LifecycleMetadata, raw)
    except ConfigError as exc:
        warn(f"ignoring previous image {reference}: {exc.cause}")
        return Analysis()
    return Analysis(previous, reference, metadata)


def write_analyzed_toml(
    path: Path, analysis: Analysis, run_image: Image, run_reference: str, run_name: str
) -> None:
    """analyzed.toml (ANA-2): previous image, its label, and the run image with its target."""
    labels = run_image.labels
    distro_name = labels.get("io.buildpacks.base.distro.name")
    target = TargetMetadata(
        id=labels.get("io.buildpacks.base.id"),
        os=run_image.config.os,
        arch=run_image.config.architecture,
        arch_variant=run_image.config.variant,
        distro=Distro(name=distro_name, version=labels.get("io.buildpacks.base.distro.version"))
        if distro_name
        else None,
    )
    image = None
    if analysis.image is not None:
        image = ImageIdentifier(reference=f"{analysis.reference or ''}@{analysis.image.digest}")
    analyzed = AnalyzedToml(
        image=image,
        metadata=analysis.metadata or LifecycleMetadata(),
        run_image=AnalyzedRunImage(reference=run_reference, image=run_name, target=target),
    )
    write_toml(path, analyzed)
