"""Make new images from old ones: append layers, edit config, rebase.

Every function returns a new ``Image`` whose config and manifest are
serialised once, canonically; layer handles are carried over untouched, so
no layer byte moves (DESIGN.md "lazy images").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lifecycle.errors import ImageError
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.media import DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST
from lifecycle.oci.models import ContainerConfig, Descriptor, History, ImageConfig, Manifest

__all__ = [
    "append_layers",
    "edit_config",
    "new_image",
    "rebase",
    "set_annotations",
    "set_labels",
]


def new_image(
    config: ImageConfig,
    layers: Sequence[Layer],
    *,
    media_type: str = OCI_MANIFEST,
    annotations: dict[str, str] | None = None,
) -> Image:
    """Serialise ``config`` (with diff_ids taken from ``layers``) and a manifest over it."""
    rootfs = config.rootfs.model_copy(update={"diff_ids": [layer.diff_id for layer in layers]})
    raw_config = config.model_copy(update={"rootfs": rootfs}).to_bytes()
    return _with_manifest(raw_config, layers, media_type, annotations)


def _with_manifest(
    raw_config: bytes, layers: Sequence[Layer], media_type: str, annotations: dict[str, str] | None
) -> Image:
    config_type = DOCKER_CONFIG if media_type == DOCKER_MANIFEST else OCI_CONFIG
    manifest = Manifest(
        schema_version=2,
        media_type=media_type,
        config=Descriptor(media_type=config_type, digest=sha256_digest(raw_config), size=len(raw_config)),
        layers=[layer.descriptor for layer in layers],
        annotations=annotations or None,
    )
    return Image(manifest.to_bytes(), raw_config, tuple(layers))


def _remake(image: Image, config: ImageConfig, layers: Sequence[Layer]) -> Image:
    return new_image(config, layers, media_type=image.media_type, annotations=image.manifest.annotations)


def append_layers(
    image: Image, layers: Sequence[Layer], created_by: Sequence[str] = (), created: str | None = None
) -> Image:
    """Add ``layers`` on top, with one history entry each (dated ``created``, else the image's)."""
    config = image.config
    history = list(config.history or [])
    for i in range(len(layers)):
        by = created_by[i] if i < len(created_by) else ""
        history.append(History(created=created or config.created, created_by=by or None))
    return _remake(image, config.model_copy(update={"history": history or None}), [*image.layers, *layers])


def edit_config(image: Image, change: Callable[[ContainerConfig], ContainerConfig]) -> Image:
    """Replace the container config (Env, Entrypoint, Labels ...) through ``change``."""
    config = image.config
    return _remake(image, config.model_copy(update={"config": change(config.config)}), image.layers)


def edit_image_config(image: Image, **fields: object) -> Image:
    """Replace top-level config fields (created, os, architecture, ...)."""
    return _remake(image, image.config.model_copy(update=fields), image.layers)


def set_labels(image: Image, labels: dict[str, str], remove: Callable[[str], bool] | None = None) -> Image:
    """Merge ``labels`` into the config, first dropping existing keys for which ``remove`` is true."""

    def change(cfg: ContainerConfig) -> ContainerConfig:
        kept = {k: v for k, v in (cfg.labels or {}).items() if not (remove and remove(k))}
        return cfg.model_copy(update={"labels": {**kept, **labels} or None})

    return edit_config(image, change)


def set_annotations(image: Image, annotations: dict[str, str]) -> Image:
    """Merge manifest annotations; the config bytes are kept as they are (only the manifest changes)."""
    merged = {**image.annotations, **annotations}
    return _with_manifest(image.raw_config, image.layers, image.media_type, merged)


def _non_empty_history(history: list[History]) -> list[int]:
    return [i for i, h in enumerate(history) if not h.empty_layer]


def rebase(image: Image, old_base_layers: int, new_base: Image) -> Image:
    """Put ``image``'s layers above its first ``old_base_layers`` onto ``new_base``'s layers.

    The old base is only a count: its layers are never read (imgutil's model).
    History entries follow the layers they describe when they line up.
    """
    if not 0 <= old_base_layers <= len(image.layers):
        raise ImageError("rebase image", f"base of {old_base_layers} layers exceeds {len(image.layers)}")
    layers = [*new_base.layers, *image.layers[old_base_layers:]]
    return _remake(image, _rebased_config(image, old_base_layers, new_base), layers)


def _rebased_config(image: Image, old_base_layers: int, new_base: Image) -> ImageConfig:
    history = list(image.config.history or [])
    layer_entries = _non_empty_history(history)
    if len(layer_entries) == len(image.layers):
        cut = layer_entries[old_base_layers - 1] + 1 if old_base_layers else 0
        new_history = [*(new_base.config.history or []), *history[cut:]] or None
    else:
        new_history = None
    return image.config.model_copy(update={"history": new_history})
