"""A CNB view of an image: its labels, layers by diffID, and rebase by top layer.

Label *contents* are parsed above this module (``lifecycle.cnb``); here they
are strings, so every backend and phase shares one way to find, reuse and
restack layers (imgutil's model: the old base is viewed only up to the
recorded run-image top layer and is never fetched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.errors import ImageError
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer

__all__ = [
    "BASE_DIGEST",
    "BASE_LABEL_PREFIXES",
    "BASE_NAME",
    "BUILD_METADATA",
    "LIFECYCLE_METADATA",
    "PROJECT_METADATA",
    "REBASABLE",
    "AppImage",
]

LIFECYCLE_METADATA = "io.buildpacks.lifecycle.metadata"
BUILD_METADATA = "io.buildpacks.build.metadata"
PROJECT_METADATA = "io.buildpacks.project.metadata"
REBASABLE = "io.buildpacks.rebasable"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_LABEL_PREFIXES = ("io.buildpacks.base.", "io.buildpacks.stack.")


@dataclass(frozen=True)
class AppImage:
    image: Image

    def label(self, key: str) -> str | None:
        return self.image.labels.get(key)

    def layer(self, diff_id: str) -> Layer:
        """The handle of the layer with ``diff_id``; reusing it moves no bytes (EXP-3, EXP-7)."""
        layer = self.image.layer_by_diff_id(diff_id)
        if layer is None:
            raise ImageError("reuse layer", f"{diff_id} is not a layer of {self.image.digest}")
        return layer

    def base_layer_count(self, top_layer: str) -> int:
        """How many layers belong to the run image whose top layer is ``top_layer`` (REB-5)."""
        diff_ids = self.image.diff_ids
        if top_layer not in diff_ids:
            raise ImageError("find run image layers", f"top layer {top_layer} is not in the image")
        return diff_ids.index(top_layer) + 1

    def rebase(self, top_layer: str, new_base: Image) -> Image:
        """Swap every layer up to ``top_layer`` for ``new_base``'s, keep the rest and the config."""
        rebased = mutate.rebase(self.image, self.base_layer_count(top_layer), new_base)
        return self.with_base_labels(rebased, new_base)

    @staticmethod
    def with_base_labels(image: Image, base: Image) -> Image:
        """Replace ``io.buildpacks.base.*``/``stack.*`` labels with the base's (REB-7, EXP-11)."""
        inherited = {k: v for k, v in base.labels.items() if k.startswith(BASE_LABEL_PREFIXES)}
        return mutate.set_labels(image, inherited, remove=lambda k: k.startswith(BASE_LABEL_PREFIXES))

    @staticmethod
    def with_base_annotations(image: Image, name: str, digest: str) -> Image:
        """OCI base annotations, so tools that rebase by annotation (crane) work too."""
        return mutate.set_annotations(image, {BASE_NAME: name, BASE_DIGEST: digest})

    def app_layers(self, top_layer: str) -> Sequence[Layer]:
        return self.image.layers[self.base_layer_count(top_layer) :]
