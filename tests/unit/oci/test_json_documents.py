"""``json_object``: the one parser for untrusted JSON documents (size limit, typed one-line errors)."""

from __future__ import annotations

import pytest

from lifecycle.errors import ConfigError, ExitCode, ImageError
from lifecycle.oci.models import MAX_MANIFEST_BYTES, json_object


def _parse(raw: bytes, limit: int = MAX_MANIFEST_BYTES) -> dict[str, object]:
    return json_object(raw, "read manifest of app:1", what="manifest", limit=limit)


def test_a_json_object_is_returned_as_a_dict() -> None:
    assert _parse(b'{"schemaVersion": 2, "layers": []}') == {"schemaVersion": 2, "layers": []}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}", "JSON nested too deeply"),
        (b"[" * 100_000, "JSON nested too deeply"),
        (b"\xff\xfe{}", "invalid JSON"),
        (b'{"a": 1,\n\n}', "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[1, 2]", "is not a JSON object$"),
        (b'"text"', "is not a JSON object$"),
    ],
)
def test_anything_but_a_json_object_is_a_one_line_image_error(raw: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message) as raised:
        _parse(raw)
    text = str(raised.value)
    assert text.startswith("failed to read manifest of app:1: the manifest ")
    assert "\n" not in text and len(text) < 400
    assert raised.value.__cause__ is None  # no RecursionError chained behind it


def test_more_bytes_than_the_limit_are_refused_before_parsing() -> None:
    with pytest.raises(ImageError, match="is 11 bytes, more than the 10 bytes allowed"):
        _parse(b'{"a":"123"}', limit=10)
    assert _parse(b'{"a":"12"}', limit=10) == {"a": "12"}


def test_the_error_type_can_be_the_callers() -> None:
    with pytest.raises(ConfigError) as raised:
        json_object(b"[", "read project.json", what="file", limit=100, error=ConfigError)
    assert raised.value.exit_code == ExitCode.BAD_ARGS
