"""Manifest, index and config models: unknown fields survive, output is canonical JSON."""

from __future__ import annotations

import json

import pytest

from lifecycle.errors import ImageError
from lifecycle.oci.models import (
    ContainerConfig,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_model,
)

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64

MANIFEST_WITH_EXTRAS = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.example+type",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST_A, "size": 7},
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": DIGEST_B,
            "size": 9,
            "annotations": {"org.example.layer": "x"},
            "data": "AAAA",
        }
    ],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST_B, "size": 3},
    "annotations": {"org.opencontainers.image.created": "1980-01-01T00:00:01Z"},
}

CONFIG_WITH_EXTRAS = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "os.features": ["win32k"],
    "created": "2020-01-01T00:00:00Z",
    "config": {
        "Env": ["PATH=/bin", "EMPTY=", "BARE"],
        "Labels": {"io.buildpacks.stack.id": "tiny"},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5},
        "ArgsEscaped": True,
    },
    "rootfs": {"type": "layers", "diff_ids": [DIGEST_A]},
    "history": [{"created_by": "base", "x-extra": 1}, {"empty_layer": True, "comment": "env"}],
    "container": "abc",
}


def test_manifest_round_trip_keeps_unknown_fields_at_every_level() -> None:
    manifest = Manifest.model_validate(MANIFEST_WITH_EXTRAS)
    assert json.loads(manifest.to_bytes()) == MANIFEST_WITH_EXTRAS


def test_config_round_trip_keeps_unknown_fields_at_every_level() -> None:
    config = ImageConfig.model_validate(CONFIG_WITH_EXTRAS)
    assert json.loads(config.to_bytes()) == CONFIG_WITH_EXTRAS


def test_changing_a_known_field_keeps_unknown_siblings() -> None:
    config = ImageConfig.model_validate(CONFIG_WITH_EXTRAS)
    changed = config.model_copy(update={"config": config.config.model_copy(update={"user": "cnb"})})
    dumped = json.loads(changed.to_bytes())
    assert dumped["config"]["User"] == "cnb"
    assert dumped["config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5}
    assert dumped["os.features"] == ["win32k"]


def test_to_bytes_is_canonical_sorted_keys_without_spaces() -> None:
    raw = Descriptor(media_type="m", digest=DIGEST_A, size=1, annotations={"b": "2", "a": "1"}).to_bytes()
    assert raw == (
        b'{"annotations":{"a":"1","b":"2"},"digest":"' + DIGEST_A.encode() + b'","mediaType":"m","size":1}'
    )


def test_to_bytes_is_the_same_whatever_the_input_key_order() -> None:
    shuffled = dict(reversed(list(CONFIG_WITH_EXTRAS.items())))
    assert (
        ImageConfig.model_validate(shuffled).to_bytes()
        == ImageConfig.model_validate(CONFIG_WITH_EXTRAS).to_bytes()
    )


def test_to_bytes_leaves_out_unset_optional_fields() -> None:
    manifest = Manifest(config=Descriptor(media_type="c", digest=DIGEST_A, size=2))
    assert json.loads(manifest.to_bytes()) == {
        "schemaVersion": 2,
        "config": {"mediaType": "c", "digest": DIGEST_A, "size": 2},
        "layers": [],
    }


def test_canonical_json_writes_utf8_not_escapes() -> None:
    assert canonical_json({"label": "café ☕"}) == '{"label":"café ☕"}'.encode()


def test_platform_uses_the_dotted_os_version_key() -> None:
    platform = Platform(architecture="amd64", os="windows", os_version="10.0.17763")
    assert json.loads(platform.to_bytes()) == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763",
    }


def test_index_keeps_platforms_of_its_manifests() -> None:
    raw = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "m",
                "digest": DIGEST_A,
                "size": 1,
                "platform": {"architecture": "arm64", "os": "linux"},
            }
        ],
    }
    index = Index.model_validate(raw)
    assert index.manifests[0].platform == Platform(architecture="arm64", os="linux")
    assert json.loads(index.to_bytes()) == raw


def test_env_dict_splits_on_the_first_equals_sign() -> None:
    config = ContainerConfig(env=["A=1", "B=x=y", "C=", "D"])
    assert config.env_dict() == {"A": "1", "B": "x=y", "C": "", "D": ""}


def test_image_config_labels_is_an_empty_dict_without_labels() -> None:
    assert ImageConfig().labels == {}


def test_models_are_frozen_values() -> None:
    descriptor = Descriptor(media_type="m", digest=DIGEST_A, size=1)
    with pytest.raises(ValueError, match="frozen"):
        descriptor.size = 2  # type: ignore[misc]


def test_parse_model_names_the_document_and_the_bad_field_on_one_line() -> None:
    raw = json.dumps({"config": {"mediaType": "c", "digest": DIGEST_A, "size": -1}}).encode()
    with pytest.raises(ImageError) as caught:
        parse_model(Manifest, raw, "manifest of app:1")
    message = str(caught.value)
    assert message.startswith("failed to read manifest of app:1: config.size")
    assert "\n" not in message


def test_parse_model_rejects_text_that_is_not_json() -> None:
    with pytest.raises(ImageError, match="failed to read index"):
        parse_model(Index, b"{not json", "index")
