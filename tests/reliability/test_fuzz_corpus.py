"""Every input kept in tests/fuzz_corpus, through every parser of its kind: typed errors only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.backends.base import normalize_tag, repository_of
from lifecycle.backends.registry.reference import parse_reference, split_repository
from lifecycle.cnb._files import parse_label
from lifecycle.env import read_env_file
from lifecycle.errors import PybuildError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import MemoryBlobs
from lifecycle.oci.models import ImageConfig, Index, Manifest, parse_model
from lifecycle.phases.cache import CacheMetadata
from lifecycle.platform.targets import open_target

from .figures import record
from .test_fuzz_models import LABEL_MODELS, TOML_LOADERS

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
_VALID = random_image(layers=1, seed=5)


def _files(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).iterdir())


def _typed(call: object, *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except PybuildError as exc:
        assert "\n" not in str(exc), str(exc)


@pytest.mark.parametrize("path", _files("toml"), ids=lambda p: p.name)
def test_toml_corpus(path: Path) -> None:
    for load in TOML_LOADERS.values():
        _typed(load, path)
    record("fuzz", "corpus_inputs", 1)


@pytest.mark.parametrize("path", _files("json"), ids=lambda p: p.name)
def test_json_corpus(path: Path) -> None:
    raw = path.read_bytes()
    for model in (Manifest, Index, ImageConfig):
        _typed(parse_model, model, raw, path.name)
    _typed(Image.from_raw, raw, _VALID.raw_config, MemoryBlobs(), path.name)
    _typed(Image.from_raw, _VALID.raw_manifest, raw, MemoryBlobs(), path.name)
    text = raw.decode("utf-8", "replace")
    for label in LABEL_MODELS:
        _typed(parse_label, "io.example", label, text)
    _typed(CacheMetadata.parse, raw, path.name)
    record("fuzz", "corpus_inputs", 1)


@pytest.mark.parametrize("path", _files("env"), ids=lambda p: p.name)
def test_env_corpus(path: Path) -> None:
    _typed(read_env_file, path, {})
    record("fuzz", "corpus_inputs", 1)


def test_reference_corpus(tmp_path: Path) -> None:
    for text in json.loads((CORPUS / "references.json").read_text()):
        normalize_tag(text)
        repository_of(text)
        _typed(parse_reference, text)
        _typed(split_repository, text)
        if not text.startswith("docker-daemon:"):
            _typed(open_target, text, home=tmp_path)
        record("fuzz", "corpus_inputs", 1)
