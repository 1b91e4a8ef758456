"""Rebase and adopt over in-memory images (REB-1..8)."""

from __future__ import annotations

import json

import pytest
from support.images import random_image, random_layer

from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL, LayerSha, LifecycleMetadata, RunImageForRebase
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.oci.models import ContainerConfig
from lifecycle.phases.adopt import adopt
from lifecycle.phases.rebase import RebaseFailed, RebaseInputs, Rebaser

DISTRO = {"io.buildpacks.base.distro.name": "debian", "io.buildpacks.base.distro.version": "12"}


def base(seed: int, **labels: str) -> Image:
    image = random_image(layers=2, seed=seed)
    return mutate.set_labels(image, {**DISTRO, "io.buildpacks.base.id": f"base-{seed}", **labels})


def app_on(
    run: Image, name: str = "acme/run:1", *, platform_api: str | None = "0.15", **labels: str
) -> Image:
    layers = [random_layer(seed=900 + n) for n in range(2)]
    image = mutate.append_layers(run, layers)
    meta = LifecycleMetadata(
        app=tuple(LayerSha(sha=layer.diff_id) for layer in layers),
        run_image=RunImageForRebase(
            top_layer=run.diff_ids[-1],
            reference=f"acme/run@{run.digest}",
            image=name,
            mirrors=("mirror/run:1",),
        ),
    )
    image = mutate.set_labels(
        image, {LIFECYCLE_METADATA_LABEL: meta.model_dump_json(by_alias=True), **labels}
    )
    if platform_api:
        image = mutate.edit_config(
            image,
            lambda c: c.model_copy(update={"env": [*(c.env or []), f"CNB_PLATFORM_API={platform_api}"]}),
        )
    return image


def rebase(app: Image, new: Image, name: str = "acme/run:1", **kw: bool) -> Image:
    return Rebaser(RebaseInputs(app, new, name, **kw)).rebase().image


def test_rebase_keeps_app_layers_above_new_base() -> None:
    """REB-5, REB-6, REB-7, REB-8."""
    old, new = base(1), base(2)
    app = app_on(old)
    result = Rebaser(RebaseInputs(app, new, "acme/run:2")).rebase()
    image = result.image
    assert image.layers[:2] == new.layers
    assert image.layers[2:] == app.layers[2:]
    meta = json.loads(image.labels[LIFECYCLE_METADATA_LABEL])
    assert meta["runImage"]["topLayer"] == new.diff_ids[-1]
    assert meta["runImage"]["reference"] == f"acme/run@{new.digest}"
    assert meta["runImage"]["image"] == "acme/run:1"  # the name only follows an explicit --run-image
    assert image.labels["io.buildpacks.base.id"] == "base-2"
    assert image.config.created == app.config.created
    assert image.annotations["org.opencontainers.image.base.digest"] == new.digest
    assert (result.replaced, result.kept) == (2, 2)


def test_explicit_run_image_of_same_repository_becomes_the_recorded_name() -> None:
    """Beyond REB-4: a tag bump of the same repository needs no force and is followed from then on."""
    image = rebase(app_on(base(1)), base(2), "acme/run:2", explicit_run_image=True)
    meta = json.loads(image.labels[LIFECYCLE_METADATA_LABEL])
    assert meta["runImage"]["image"] == "acme/run:2"
    assert meta["runImage"]["mirrors"] == ["mirror/run:1"]


def test_same_base_is_already_up_to_date() -> None:
    old = base(1)
    app = app_on(old)
    result = Rebaser(RebaseInputs(app, old, "acme/run:1")).rebase()
    assert result.up_to_date and result.image is app


def test_other_repository_needs_force_and_then_replaces_name_and_mirrors() -> None:
    """REB-4."""
    app = app_on(base(1))
    with pytest.raises(RebaseFailed, match="not the app's run image") as caught:
        rebase(app, base(2), "other/run:1")
    assert caught.value.exit_code == 72
    meta = json.loads(rebase(app, base(2), "other/run:1", force=True).labels[LIFECYCLE_METADATA_LABEL])
    assert meta["runImage"]["image"] == "other/run:1"
    assert "mirrors" not in meta["runImage"]


def test_mirror_name_is_accepted() -> None:
    rebase(app_on(base(1)), base(2), "mirror/run:1")


@pytest.mark.parametrize(
    ("app_labels", "new_labels", "needle"),
    [
        ({"io.buildpacks.rebasable": "false"}, {}, "rebasable=false"),
        ({}, {"io.buildpacks.base.distro.version": "13"}, "distro.version"),
    ],
)
def test_target_checks_refuse_unless_forced(
    app_labels: dict[str, str], new_labels: dict[str, str], needle: str
) -> None:
    """REB-3."""
    app = app_on(base(1), **app_labels)
    new = base(2, **new_labels)
    with pytest.raises(RebaseFailed, match=needle):
        rebase(app, new)
    result = Rebaser(RebaseInputs(app, new, "acme/run:1", force=True)).rebase()
    assert any(needle in w for w in result.warnings)


def test_missing_rebasable_label_or_true_passes() -> None:
    rebase(app_on(base(1), **{"io.buildpacks.rebasable": "true"}), base(2))


def test_other_architecture_is_refused() -> None:
    """REB-3: os and arch must be equal."""
    new = mutate.edit_image_config(base(2), architecture="arm64")
    with pytest.raises(RebaseFailed, match="linux/arm64"):
        rebase(app_on(base(1)), new)


def test_legacy_image_compares_stack_ids() -> None:
    """REB-2: no CNB_PLATFORM_API in the image means the stack id check."""
    old = base(1, **{"io.buildpacks.stack.id": "stack-a"})
    app = app_on(old, platform_api=None, **{"io.buildpacks.stack.id": "stack-a"})
    with pytest.raises(RebaseFailed, match="stack id"):
        rebase(app, base(2, **{"io.buildpacks.stack.id": "stack-b"}))
    rebase(app, base(3, **{"io.buildpacks.stack.id": "stack-a"}))


def test_image_without_metadata_or_with_corrupt_label_exits_72() -> None:
    with pytest.raises(RebaseFailed, match="--base-image") as caught:
        rebase(random_image(layers=1, seed=5), base(2))
    assert caught.value.exit_code == 72
    corrupt = mutate.set_labels(app_on(base(1)), {LIFECYCLE_METADATA_LABEL: "{not json"})
    with pytest.raises(RebaseFailed, match="not valid JSON"):
        rebase(corrupt, base(2))


def test_adopt_puts_scratch_image_on_base_and_is_then_rebasable() -> None:
    scratch = mutate.edit_config(
        random_image(layers=2, seed=40),
        lambda c: ContainerConfig(
            entrypoint=["/app/server"], env=["PATH=/app", "MODE=prod"], user="1000:1000"
        ),
    )
    run_v1, run_v2 = base(1), base(2)
    adopted = adopt(scratch, run_v1, "acme/run:1")
    assert adopted.layers == (*run_v1.layers, *scratch.layers)
    env = adopted.config.config.env_dict()
    assert env["PATH"] == "/app:/bin" and env["MODE"] == "prod"
    assert adopted.config.config.entrypoint == ["/app/server"]
    assert adopted.config.config.user == "1000:1000"
    rebased = rebase(adopted, run_v2)
    assert rebased.layers == (*run_v2.layers, *scratch.layers)
    with pytest.raises(RebaseFailed, match="already has a base"):
        adopt(adopted, run_v2, "acme/run:1")
