"""The analyze phase: the previous image's label, or a build from scratch (ANA-1, ANA-2)."""

from __future__ import annotations

from pathlib import Path

from support.images import random_image

from lifecycle.cnb.images import load_analyzed_toml
from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL, BuildpackLayersLabel, LayerLabel, LifecycleMetadata
from lifecycle.oci import mutate
from lifecycle.phases.analyze import Analysis, analyze, write_analyzed_toml

METADATA = LifecycleMetadata(
    buildpacks=(
        BuildpackLayersLabel(
            key="a/bp",
            version="1",
            layers={"L": LayerLabel(sha="sha256:" + "1" * 64, data={"v": 1}, launch=True)},
        ),
    )
)


def _labelled(value: str):  # type: ignore[no-untyped-def]
    return mutate.set_labels(random_image(layers=1), {LIFECYCLE_METADATA_LABEL: value})


def test_no_image_or_no_label_means_no_previous_image() -> None:
    """ANA-1: neither is an error, and nothing is said about it."""
    warnings: list[str] = []
    assert analyze(None, None, warnings.append) == Analysis()
    assert analyze(random_image(layers=1), "app", warnings.append) == Analysis()
    assert warnings == []


def test_unreadable_label_means_no_previous_image_with_a_warning() -> None:
    """ANA-1: an unreadable label means there is no previous image."""
    warnings: list[str] = []
    assert analyze(_labelled('{"buildpacks": 3'), "app", warnings.append) == Analysis()
    assert len(warnings) == 1 and "ignoring previous image app" in warnings[0]


def test_label_gives_metadata_and_layer_shas() -> None:
    image = _labelled(METADATA.model_dump_json(by_alias=True))
    analysis = analyze(image, "app", lambda _: None)
    assert analysis.image is image and analysis.metadata == METADATA
    assert analysis.layer_sha("a/bp", "L") == "sha256:" + "1" * 64
    assert analysis.layer_sha("a/bp", "missing") is None


def test_analyzed_toml_records_previous_image_metadata_and_run_image(tmp_path: Path) -> None:
    """ANA-2."""
    image = _labelled(METADATA.model_dump_json(by_alias=True))
    run = random_image(layers=1, seed=2)
    write_analyzed_toml(tmp_path / "analyzed.toml", analyze(image, "app", print), run, "run@x", "run:tag")
    analyzed = load_analyzed_toml(tmp_path / "analyzed.toml")
    assert analyzed.image is not None and analyzed.image.reference == f"app@{image.digest}"
    assert analyzed.metadata.buildpacks[0].layers["L"].data == {"v": 1}
    assert analyzed.run_image is not None and analyzed.run_image.reference == "run@x"
    assert analyzed.run_image.target is not None and analyzed.run_image.target.os == "linux"
