"""Making images from images: append, labels, annotations, config edits and rebase (REB-5)."""

from __future__ import annotations

import json

import pytest
from support.images import CREATED, random_image, random_layer

from lifecycle.backends.memory import MemoryStore
from lifecycle.errors import ImageError
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.media import DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST
from lifecycle.oci.models import History, ImageConfig
from lifecycle.oci.mutate import (
    append_layers,
    edit_config,
    new_image,
    rebase,
    set_annotations,
    set_labels,
)
from lifecycle.oci.validate import validate


def stored(image: Image) -> tuple[MemoryStore, Image]:
    """The image read back from a fresh memory store, whose stats count every layer byte read."""
    store = MemoryStore()
    store.write(image, ["base:1"])
    store.stats.layer_bytes_read = store.stats.layer_opens = 0
    return store, store.image(image.digest)


def test_new_image_takes_diff_ids_from_its_layers() -> None:
    layers = [random_layer(seed=1), random_layer(seed=2)]
    image = new_image(ImageConfig(), layers)
    assert image.config.rootfs.diff_ids == [layer.diff_id for layer in layers]
    assert image.manifest.layers == [layer.descriptor for layer in layers]


def test_new_image_config_descriptor_names_the_config_bytes() -> None:
    image = new_image(ImageConfig(), [random_layer()])
    assert image.config_descriptor.digest == sha256_digest(image.raw_config)
    assert image.config_descriptor.size == len(image.raw_config)
    assert (image.media_type, image.config_descriptor.media_type) == (OCI_MANIFEST, OCI_CONFIG)


def test_new_image_docker_manifest_gets_a_docker_config_type() -> None:
    image = new_image(ImageConfig(), [], media_type=DOCKER_MANIFEST)
    assert (image.media_type, image.config_descriptor.media_type) == (DOCKER_MANIFEST, DOCKER_CONFIG)


def test_same_inputs_give_the_same_image_digest() -> None:
    assert random_image(seed=9).digest == random_image(seed=9).digest


def test_append_puts_new_layers_on_top_and_keeps_the_base_handles() -> None:
    base = random_image(layers=2)
    extra = [random_layer(seed=100), random_layer(seed=101)]
    image = append_layers(base, extra, ["RUN a", "RUN b"])
    assert image.layers[:2] == base.layers
    assert image.layers[2:] == tuple(extra)
    assert image.config.rootfs.diff_ids == [*base.diff_ids, *(layer.diff_id for layer in extra)]
    validate(image)


def test_append_adds_one_history_entry_per_layer() -> None:
    base = random_image(layers=2)
    image = append_layers(base, [random_layer(seed=100), random_layer(seed=101)], ["RUN a"])
    history = image.config.history or []
    assert history[:2] == (base.config.history or [])
    assert [entry.created_by for entry in history[2:]] == ["RUN a", None]
    assert {entry.created for entry in history[2:]} == {CREATED}


def test_append_reads_no_layer_bytes() -> None:
    store, base = stored(random_image(layers=3))
    append_layers(base, [random_layer(seed=100)])
    assert (store.stats.layer_opens, store.stats.layer_bytes_read) == (0, 0)


def test_append_leaves_the_original_image_unchanged() -> None:
    base = random_image(layers=1)
    before = (base.raw_manifest, base.raw_config)
    append_layers(base, [random_layer(seed=100)])
    assert (base.raw_manifest, base.raw_config) == before


def test_set_labels_merges_into_existing_labels() -> None:
    image = set_labels(random_image(seed=1), {"io.buildpacks.app": "yes"})
    assert image.labels == {"org.example.seed": "1", "io.buildpacks.app": "yes"}


def test_set_labels_drops_keys_the_remove_predicate_selects() -> None:
    base = set_labels(random_image(), {"io.buildpacks.stack.id": "old", "io.buildpacks.base.distro": "x"})
    image = set_labels(
        base, {"io.buildpacks.stack.id": "new"}, remove=lambda key: key.startswith("io.buildpacks.")
    )
    assert image.labels == {"org.example.seed": "0", "io.buildpacks.stack.id": "new"}


def test_set_labels_keeps_layers_and_unknown_config_fields() -> None:
    base = random_image(layers=2)
    raw = json.loads(base.raw_config)
    raw["config"]["Healthcheck"] = {"Test": ["NONE"]}
    raw["moby.extra"] = True
    config = ImageConfig.model_validate(raw)
    image = set_labels(new_image(config, base.layers), {"a": "b"})
    again = json.loads(image.raw_config)
    assert again["config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert again["moby.extra"] is True
    assert image.layers == base.layers


def test_edit_config_replaces_container_config_fields() -> None:
    image = edit_config(
        random_image(), lambda cfg: cfg.model_copy(update={"entrypoint": ["/cnb/lifecycle/launcher"]})
    )
    assert image.config.config.entrypoint == ["/cnb/lifecycle/launcher"]
    assert image.config.config.env == ["PATH=/bin"]
    validate(image)


def test_set_annotations_merges_manifest_annotations() -> None:
    first = set_annotations(random_image(), {"a": "1", "b": "1"})
    image = set_annotations(first, {"b": "2"})
    assert image.annotations == {"a": "1", "b": "2"}
    assert json.loads(image.raw_manifest)["annotations"] == {"a": "1", "b": "2"}


def test_set_annotations_keeps_the_config_bytes_as_they_were() -> None:
    base = random_image()
    pretty_config = json.dumps(json.loads(base.raw_config), indent=2).encode()
    original = new_image(ImageConfig(), base.layers)
    manifest = json.loads(original.raw_manifest)
    manifest["config"].update(digest=sha256_digest(pretty_config), size=len(pretty_config))
    image = Image.from_raw(json.dumps(manifest).encode(), pretty_config, base.layers[0].source, "pretty")
    annotated = set_annotations(image, {"org.opencontainers.image.source": "git"})
    assert annotated.raw_config == pretty_config
    assert annotated.config_descriptor == image.config_descriptor


def test_mutations_keep_a_docker_manifest_a_docker_manifest() -> None:
    base = new_image(ImageConfig(), [random_layer()], media_type=DOCKER_MANIFEST)
    for image in (
        set_labels(base, {"a": "b"}),
        append_layers(base, [random_layer(seed=2)]),
        rebase(base, 1, base),
    ):
        assert (image.media_type, image.config_descriptor.media_type) == (DOCKER_MANIFEST, DOCKER_CONFIG)


def app_on(base: Image, app_layers: int = 2) -> Image:
    layers = [random_layer(seed=500 + number) for number in range(app_layers)]
    return set_labels(append_layers(base, layers, [f"app {n}" for n in range(app_layers)]), {"app": "1"})


def test_rebase_keeps_app_layers_above_new_base() -> None:
    old_base, new_base = random_image(layers=2, seed=1), random_image(layers=3, seed=2)
    app = app_on(old_base)
    rebased = rebase(app, len(old_base.layers), new_base)
    assert rebased.layers == (*new_base.layers, *app.layers[2:])
    assert rebased.config.rootfs.diff_ids == [*new_base.diff_ids, *app.diff_ids[2:]]
    validate(rebased)


def test_rebase_keeps_the_app_config_not_the_new_base_config() -> None:
    old_base, new_base = random_image(seed=1), random_image(seed=2)
    rebased = rebase(app_on(old_base), 3, new_base)
    assert rebased.labels == {"org.example.seed": "1", "app": "1"}


def test_rebase_history_is_new_base_history_then_app_history() -> None:
    old_base, new_base = random_image(layers=2, seed=1), random_image(layers=3, seed=2)
    rebased = rebase(app_on(old_base), 2, new_base)
    created_by = [entry.created_by for entry in rebased.config.history or []]
    assert created_by == ["random layer 0", "random layer 1", "random layer 2", "app 0", "app 1"]


def test_rebase_keeps_empty_layer_history_entries_of_the_app() -> None:
    old_base = random_image(layers=1, seed=1)
    app = app_on(old_base, 1)
    history = [*(app.config.history or [])]
    history.insert(1, History(created_by="ENV X=1", empty_layer=True))
    app = new_image(app.config.model_copy(update={"history": history}), app.layers)
    rebased = rebase(app, 1, random_image(layers=2, seed=2))
    created_by = [entry.created_by for entry in rebased.config.history or []]
    assert created_by == ["random layer 0", "random layer 1", "ENV X=1", "app 0"]


def test_rebase_drops_history_that_does_not_line_up_with_layers() -> None:
    old_base = random_image(layers=2, seed=1)
    app = app_on(old_base)
    app = new_image(app.config.model_copy(update={"history": [History(created_by="lonely")]}), app.layers)
    assert rebase(app, 2, random_image(seed=2)).config.history is None


def test_rebase_reads_no_layer_bytes() -> None:
    store, app = stored(app_on(random_image(layers=2, seed=1)))
    new_store, new_base = stored(random_image(layers=2, seed=2))
    rebase(app, 2, new_base)
    assert (store.stats.layer_opens, new_store.stats.layer_opens) == (0, 0)


def test_rebase_onto_the_same_base_gives_the_same_image() -> None:
    base = random_image(layers=2, seed=1)
    app = app_on(base)
    assert rebase(app, 2, base).digest == app.digest


def test_rebase_with_zero_base_layers_puts_the_new_base_under_everything() -> None:
    app = random_image(layers=2, seed=1)
    new_base = random_image(layers=1, seed=2)
    assert rebase(app, 0, new_base).layers == (*new_base.layers, *app.layers)


@pytest.mark.parametrize("count", [-1, 4])
def test_rebase_refuses_a_base_bigger_than_the_image(count: int) -> None:
    with pytest.raises(ImageError, match="rebase image"):
        rebase(random_image(layers=3), count, random_image(seed=2))
