"""Adopt an image built with no base (``FROM scratch``) onto a run image.

All of the app's layers go on top of the base's; the app's Entrypoint, Cmd,
WorkingDir, User and Env win, PATH is merged; CNB metadata and OCI base
annotations are written so that a later plain rebase keeps it patched (the
``--base-image`` of Cloud Run's automatic base image updates).
"""

from __future__ import annotations

from lifecycle.appimage import BASE_DIGEST, AppImage
from lifecycle.backends.base import repository_of
from lifecycle.cnb.labels import (
    LIFECYCLE_METADATA_LABEL,
    LayerSha,
    LifecycleMetadata,
    RunImageForRebase,
    StackLabel,
)
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.oci.models import ContainerConfig
from lifecycle.phases.rebase import RebaseFailed

__all__ = ["adopt"]

ADOPTED_PLATFORM_API = "0.15"


def adopt(app: Image, base: Image, base_name: str, *, force: bool = False) -> Image:
    """``app`` on top of ``base``, with the labels a later rebase needs (REB-5, REB-6)."""
    if not force and (LIFECYCLE_METADATA_LABEL in app.labels or BASE_DIGEST in app.annotations):
        raise RebaseFailed(
            "adopt image",
            "it already has a base image (rebase it without --base-image, or use --force)",
        )
    a, b = app.config, base.config
    if not force and (a.os, a.architecture) != (b.os, b.architecture):
        raise RebaseFailed(
            "adopt image", f"the base is {b.os}/{b.architecture}, the image is {a.os}/{a.architecture}"
        )
    config = b.model_copy(
        update={
            "config": _merged(a.config, b.config),
            "created": a.created,
            "history": [*(b.history or []), *(a.history or [])] or None,
        }
    )
    image = mutate.new_image(config, [*base.layers, *app.layers], media_type=app.media_type)
    metadata = LifecycleMetadata(
        app=tuple(LayerSha(sha=diff_id) for diff_id in app.diff_ids),
        run_image=RunImageForRebase(
            top_layer=base.diff_ids[-1] if base.layers else "",
            reference=f"{repository_of(base_name)}@{base.digest}",
            image=base_name,
        ),
        stack=StackLabel.model_validate({"runImage": {"image": base_name}}),
    )
    image = mutate.set_labels(image, {LIFECYCLE_METADATA_LABEL: metadata.model_dump_json(by_alias=True)})
    image = AppImage.with_base_labels(image, base)
    return AppImage.with_base_annotations(image, base_name, base.digest)


def _merged(app: ContainerConfig, base: ContainerConfig) -> ContainerConfig:
    env = {**base.env_dict(), **app.env_dict()}
    paths = [p for p in app.env_dict().get("PATH", "").split(":") if p]
    paths += [p for p in base.env_dict().get("PATH", "").split(":") if p and p not in paths]
    if paths:
        env["PATH"] = ":".join(paths)
    # The rebaser runs target checks, not the legacy stack check, for this Platform API (REB-2).
    env.setdefault("CNB_PLATFORM_API", ADOPTED_PLATFORM_API)
    return base.model_copy(
        update={
            "env": [f"{k}={v}" for k, v in env.items()],
            "entrypoint": app.entrypoint if app.entrypoint is not None else base.entrypoint,
            "cmd": app.cmd if app.cmd is not None or app.entrypoint is not None else base.cmd,
            "working_dir": app.working_dir or base.working_dir,
            "user": app.user or base.user,
            "labels": {**(base.labels or {}), **(app.labels or {})} or None,
            "exposed_ports": app.exposed_ports or base.exposed_ports,
        }
    )
