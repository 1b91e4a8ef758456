"""The rebase phase: put an app image on a new run image with no rebuild (REB-1..8).

Only manifests and configs are read: the old base is the app image cut at
``runImage.topLayer`` and is never fetched (imgutil's model). Beyond the spec,
a new digest or tag of the *same* run-image repository is accepted without
force when the target checks pass (a patch-level bump is the common case);
another repository needs force.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from lifecycle.api import ApiVersion
from lifecycle.appimage import REBASABLE, AppImage
from lifecycle.backends.base import repository_of
from lifecycle.cnb import parse_label
from lifecycle.cnb.labels import (
    BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    BuildMetadataLabel,
    LifecycleMetadata,
    RunImageForRebase,
    StackLabel,
)
from lifecycle.errors import ConfigError, ExitCode, PybuildError
from lifecycle.oci import mutate
from lifecycle.oci.image import Image

__all__ = ["RebaseFailed", "RebaseInputs", "RebaseResult", "Rebaser"]

_DISTRO_LABELS = ("io.buildpacks.base.distro.name", "io.buildpacks.base.distro.version")


class RebaseFailed(PybuildError):
    exit_code = ExitCode.REBASE


@dataclass(frozen=True)
class RebaseInputs:
    app_image: Image
    new_base: Image
    new_base_name: str
    force: bool = False
    explicit_run_image: bool = False


@dataclass(frozen=True)
class RebaseResult:
    image: Image
    old_base_digest: str
    new_base_digest: str
    replaced: int
    kept: int
    up_to_date: bool = False
    warnings: tuple[str, ...] = field(default=())


def read_metadata(image: Image) -> LifecycleMetadata:
    """The lifecycle label, or a rebase error saying what is wrong with it."""
    raw = image.labels.get(LIFECYCLE_METADATA_LABEL)
    if raw is None:
        raise RebaseFailed(
            "rebase image",
            f"it has no {LIFECYCLE_METADATA_LABEL} label (adopt it onto a base with --base-image)",
        )
    try:
        return parse_label(LIFECYCLE_METADATA_LABEL, LifecycleMetadata, raw)
    except ConfigError as exc:
        raise RebaseFailed("rebase image", exc.cause) from None


class Rebaser:
    def __init__(self, inputs: RebaseInputs) -> None:
        self.inputs = inputs
        self.warnings: list[str] = []

    def _refuse(self, reason: str) -> None:
        if not self.inputs.force:
            raise RebaseFailed("rebase image", f"{reason} (use --force to rebase anyway)")
        self.warnings.append(reason)

    def rebase(self) -> RebaseResult:
        ins = self.inputs
        app = AppImage(ins.app_image)
        metadata = read_metadata(ins.app_image)
        run = metadata.run_image
        if not run.top_layer:
            raise RebaseFailed("rebase image", "its runImage.topLayer is empty (the label is incomplete)")
        old_base_digest = run.reference.rpartition("@")[2]
        base_count = _base_count(app, run.top_layer)
        if old_base_digest == ins.new_base.digest or (
            ins.new_base.diff_ids == ins.app_image.diff_ids[:base_count]
        ):
            return RebaseResult(ins.app_image, old_base_digest, ins.new_base.digest, 0, 0, up_to_date=True)
        self._check(metadata)
        rebased = app.rebase(run.top_layer, ins.new_base)
        rebased = self._relabel(rebased, metadata)
        kept = len(ins.app_image.layers) - base_count
        return RebaseResult(
            rebased, old_base_digest, ins.new_base.digest, base_count, kept, warnings=tuple(self.warnings)
        )

    def _check(self, metadata: LifecycleMetadata) -> None:
        app, new = self.inputs.app_image, self.inputs.new_base
        platform_api = app.config.config.env_dict().get("CNB_PLATFORM_API", "")
        if _legacy(platform_api):
            self._check_stack(app, new)
        else:
            self._check_target(app, new)
        self._check_name(metadata.run_image)

    def _check_stack(self, app: Image, new: Image) -> None:
        """REB-2: images without a Platform API >= 0.12 compare stack ids."""
        app_stack, new_stack = (
            app.labels.get("io.buildpacks.stack.id"),
            new.labels.get("io.buildpacks.stack.id"),
        )
        if not app_stack or app_stack != new_stack:
            self._refuse(f"stack id {new_stack!r} of the new run image differs from the app's {app_stack!r}")

    def _check_target(self, app: Image, new: Image) -> None:
        """REB-3: rebasable, os/arch/variant, distro."""
        if app.labels.get(REBASABLE) == "false":
            self._refuse(_not_rebasable(app))
        a, n = app.config, new.config
        if (a.os, a.architecture) != (n.os, n.architecture) or (
            a.variant and n.variant and a.variant != n.variant
        ):
            self._refuse(f"the new run image is {n.os}/{n.architecture}, the app is {a.os}/{a.architecture}")
        for label in _DISTRO_LABELS:
            want, have = app.labels.get(label), new.labels.get(label)
            if want and have and want != have:
                self._refuse(f"the new run image has {label}={have}, the app has {want}")

    def _check_name(self, run: RunImageForRebase) -> None:
        """REB-4, relaxed: the same repository passes, another needs force."""
        name = self.inputs.new_base_name
        known = [run.image, *run.mirrors]
        if name in known or repository_of(name) in {repository_of(k) for k in known if k}:
            return
        self._refuse(f"{name} is not the app's run image {run.image} or one of its mirrors")

    def _relabel(self, image: Image, metadata: LifecycleMetadata) -> Image:
        """REB-6: new top layer and reference; the image name follows an explicit choice."""
        ins = self.inputs
        run = metadata.run_image
        same_name = ins.new_base_name in (run.image, *run.mirrors)
        image_name, mirrors = run.image, run.mirrors
        if not same_name and (ins.explicit_run_image or ins.force):
            image_name = ins.new_base_name
            mirrors = run.mirrors if repository_of(image_name) == repository_of(run.image) else ()
        new_run = run.model_copy(
            update={
                "top_layer": ins.new_base.diff_ids[-1],
                "reference": f"{repository_of(ins.new_base_name)}@{ins.new_base.digest}",
                "image": image_name,
                "mirrors": mirrors,
            }
        )
        update: dict[str, object] = {"run_image": new_run}
        if metadata.stack is not None:
            update["stack"] = StackLabel.model_validate(
                {"runImage": {"image": image_name, "mirrors": list(mirrors)}}
            )
        label = metadata.model_copy(update=update).model_dump_json(by_alias=True)
        image = mutate.set_labels(image, {LIFECYCLE_METADATA_LABEL: label})
        if ins.force:
            n = ins.new_base.config
            image = mutate.edit_image_config(image, os=n.os, architecture=n.architecture, variant=n.variant)
        return AppImage.with_base_annotations(image, ins.new_base_name, ins.new_base.digest)


def _not_rebasable(app: Image) -> str:
    """REB-3, EXP-12: which image extensions extended the run image, and what to do instead."""
    names: list[str] = []
    raw = app.labels.get(BUILD_METADATA_LABEL)
    if raw is not None:
        with contextlib.suppress(ConfigError):
            names = [e.id for e in parse_label(BUILD_METADATA_LABEL, BuildMetadataLabel, raw).extensions]
    by = f" by image extension {', '.join(names)}" if names else " by an image extension"
    return (
        f"its run image was extended{by}, which left {REBASABLE}=false: those layers may not suit "
        "a new base, so rebuild the app (pybuild build) to move it to the new run image"
    )


def _base_count(app: AppImage, top_layer: str) -> int:
    try:
        return app.base_layer_count(top_layer)
    except PybuildError as exc:
        raise RebaseFailed("rebase image", exc.cause) from None


def _legacy(platform_api: str) -> bool:
    try:
        return ApiVersion.parse(platform_api) < ApiVersion(0, 12)
    except ValueError:
        return True
