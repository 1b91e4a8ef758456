"""Image label JSON shapes (cnb-spec.md §3, EXP-11, REB-6): key names, order, omitted keys."""

from __future__ import annotations

import pytest

from lifecycle.cnb import (
    BuildMetadataLabel,
    BuildpackLayersLabel,
    BuildpackRefLabel,
    LayerLabel,
    LayerSha,
    LifecycleMetadata,
    ProcessLabel,
    ProjectMetadataLabel,
    ProjectSource,
    RunImageForRebase,
    StoreLabel,
    label_json,
    parse_label,
)
from lifecycle.errors import ConfigError

# The examples of cnb-spec.md §3, as the lifecycle writes them (compact, in struct order).
LIFECYCLE_EXAMPLE = (
    '{"app":[{"sha":"sha256:a1"},{"sha":"sha256:a2"}],'
    '"sbom":{"sha":"sha256:b1"},'
    '"buildpacks":[{"key":"acme/node","version":"1.4.0",'
    '"layers":{"runtime":{"sha":"sha256:c1","data":{"node_version":"20.11.1"},'
    '"build":false,"launch":true,"cache":true}},'
    '"store":{"metadata":{"lock_hash":"9f2c"}}}],'
    '"config":{"sha":"sha256:d1"},"launcher":{"sha":"sha256:e1"},'
    '"process-types":{"sha":"sha256:f1"},'
    '"runImage":{"topLayer":"sha256:01","reference":"reg.test/run@sha256:02",'
    '"image":"reg.test/run:jammy","mirrors":["mirror.test/run:jammy"]},'
    '"stack":{"runImage":{"image":"reg.test/run:jammy","mirrors":["mirror.test/run:jammy"]}}}'
)
BUILD_EXAMPLE = (
    '{"buildpacks":[{"id":"acme/node","version":"1.4.0","homepage":"https://bp.test/node"}],'
    '"launcher":{"version":"0.21.0","source":{"git":{"repository":"github.com/example/launcher","commit":"abc123"}}},'
    '"processes":['
    '{"type":"web","command":["node"],"args":["server.js"],"direct":true,"buildpackID":"acme/node"},'
    '{"type":"worker","command":["node","worker.js"],"args":null,"direct":true,'
    '"buildpackID":"acme/node","working-dir":"/workspace/jobs"}],'
    '"buildpack-default-process-type":"web"}'
)


@pytest.mark.parametrize(
    ("label", "model", "example"),
    [
        ("io.buildpacks.lifecycle.metadata", LifecycleMetadata, LIFECYCLE_EXAMPLE),
        ("io.buildpacks.build.metadata", BuildMetadataLabel, BUILD_EXAMPLE),
    ],
)
def test_spec_examples_round_trip_byte_for_byte(
    label: str, model: type[LifecycleMetadata | BuildMetadataLabel], example: str
) -> None:
    assert label_json(parse_label(label, model, example)) == example


def test_lifecycle_label_fields_are_read_under_their_json_names() -> None:
    metadata = parse_label("io.buildpacks.lifecycle.metadata", LifecycleMetadata, LIFECYCLE_EXAMPLE)
    assert metadata.run_image.top_layer == "sha256:01"
    assert metadata.process_types == LayerSha(sha="sha256:f1")
    assert metadata.buildpacks[0].layers["runtime"].data == {"node_version": "20.11.1"}
    assert metadata.stack is not None and metadata.stack.run_image.mirrors == ("mirror.test/run:jammy",)


def test_sbom_store_and_mirrors_are_left_out_when_empty() -> None:
    metadata = LifecycleMetadata(
        buildpacks=(BuildpackLayersLabel(key="acme/node", version="1"),),
        run_image=RunImageForRebase(top_layer="sha256:01", reference="r@sha256:02", image="r:1"),
    )
    assert label_json(metadata) == (
        '{"app":[],"buildpacks":[{"key":"acme/node","version":"1","layers":{}}],'
        '"config":{"sha":""},"launcher":{"sha":""},"process-types":{"sha":""},'
        '"runImage":{"topLayer":"sha256:01","reference":"r@sha256:02","image":"r:1"}}'
    )


def test_exp6_layers_and_data_are_written_in_sorted_key_order() -> None:
    buildpack = BuildpackLayersLabel(
        key="acme/node",
        version="1",
        layers={
            "zeta": LayerLabel(sha="z", data={"b": 1, "a": {"d": 1, "c": 2}}),
            "alpha": LayerLabel(sha="a"),
        },
        store=StoreLabel(metadata={"y": 1, "x": 2}),
    )
    assert label_json(buildpack) == (
        '{"key":"acme/node","version":"1","layers":{'
        '"alpha":{"sha":"a","data":null,"build":false,"launch":false,"cache":false},'
        '"zeta":{"sha":"z","data":{"a":{"c":2,"d":1},"b":1},"build":false,"launch":false,"cache":false}},'
        '"store":{"metadata":{"x":2,"y":1}}}'
    )


def test_reb6_unknown_keys_survive_a_round_trip() -> None:
    text = '{"app":[],"buildpacks":[],"config":{"sha":""},"launcher":{"sha":""},"process-types":{"sha":""},'
    text += '"runImage":{"topLayer":"t","reference":"r","future":1},"exec-env":"production"}'
    assert label_json(parse_label("io.buildpacks.lifecycle.metadata", LifecycleMetadata, text)) == text


def test_build_metadata_leaves_out_bom_extensions_and_empty_fields() -> None:
    label = BuildMetadataLabel(
        buildpacks=(BuildpackRefLabel(id="acme/node", version="1"),),
        processes=(ProcessLabel(type="web", command="node s.js", direct=False, buildpack_id="acme/node"),),
    )
    assert label_json(label) == (
        '{"buildpacks":[{"id":"acme/node","version":"1"}],'
        '"launcher":{"version":"","source":{"git":{"repository":"","commit":""}}},'
        '"processes":[{"type":"web","command":"node s.js","args":null,"direct":false,'
        '"buildpackID":"acme/node"}]}'
    )


def test_build_metadata_accepts_the_spec_only_api_and_exec_env_keys() -> None:
    text = '{"buildpacks":[{"id":"a","version":"1","api":"0.12","exec-env":["*"]}],"processes":[]}'
    label = parse_label("io.buildpacks.build.metadata", BuildMetadataLabel, text)
    assert label.buildpacks[0].id == "a"


def test_exp11_project_metadata_is_empty_object_or_source() -> None:
    assert label_json(ProjectMetadataLabel()) == "{}"
    source = ProjectSource(type="git", version={"commit": "abc"}, metadata={"url": "https://git.test/x"})
    assert label_json(ProjectMetadataLabel(source=source)) == (
        '{"source":{"type":"git","version":{"commit":"abc"},"metadata":{"url":"https://git.test/x"}}}'
    )


def test_unreadable_label_is_a_config_error_naming_the_label() -> None:
    with pytest.raises(ConfigError, match=r"label io\.buildpacks\.lifecycle\.metadata: is not valid JSON"):
        parse_label("io.buildpacks.lifecycle.metadata", LifecycleMetadata, "{not json")
    with pytest.raises(ConfigError, match=r"buildpacks\[0\].key is missing"):
        parse_label("io.buildpacks.lifecycle.metadata", LifecycleMetadata, '{"buildpacks":[{"version":"1"}]}')
