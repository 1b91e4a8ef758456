"""Property tests: no input to a file model, label, OCI document, env rule or reference raises
anything but our typed errors (``PybuildError``; ``ValueError`` only where an API documents it).

Each test counts the inputs it tried into ``bench/results/reliability.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import given
from hypothesis import strategies as st
from support.images import random_image
from support.registry_fake import FakeRegistry, fake_store

from lifecycle.api import ApiVersion
from lifecycle.backends.base import normalize_tag, repository_of
from lifecycle.backends.registry.reference import is_host, is_loopback_host, parse_reference, split_repository
from lifecycle.cnb import labels as label_models
from lifecycle.cnb import (
    load_analyzed_toml,
    load_build_toml,
    load_builder_toml,
    load_buildpack_plan,
    load_buildpack_toml,
    load_config_metadata,
    load_detect_plan,
    load_extension_toml,
    load_group_toml,
    load_layer_toml,
    load_order_toml,
    load_plan_toml,
    load_project_toml,
    load_report_toml,
    load_run_toml,
    load_store_toml,
    load_system_toml,
)
from lifecycle.cnb._files import parse_label
from lifecycle.cnb._model import LabelModel
from lifecycle.cnb.layers import load_launch_toml
from lifecycle.env import (
    Env,
    EnvOp,
    EnvOperation,
    parse_env_assignment,
    parse_env_file,
    read_env_dir,
    read_env_file,
)
from lifecycle.errors import ConfigError, ImageError, PybuildError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import MemoryBlobs
from lifecycle.oci.models import ImageConfig, Index, Manifest, canonical_json, parse_model
from lifecycle.phases.analyze import analyze
from lifecycle.phases.cache import CacheMetadata
from lifecycle.phases.rebase import RebaseInputs, Rebaser
from lifecycle.platform.targets import open_target

from .figures import record
from .strategies import FUZZ, JSON_KEYS, hostile_text, json_documents, json_objects, toml_documents

TOML_LOADERS: dict[str, Callable[[Path], object]] = {
    "buildpack.toml": load_buildpack_toml,
    "extension.toml": load_extension_toml,
    "builder.toml": load_builder_toml,
    "project.toml": load_project_toml,
    "order.toml": load_order_toml,
    "group.toml": load_group_toml,
    "system.toml": load_system_toml,
    "layer.toml": load_layer_toml,
    "store.toml": load_store_toml,
    "launch.toml (api 0.12)": lambda p: load_launch_toml(p, ApiVersion(0, 12)),
    "launch.toml (api 0.7)": lambda p: load_launch_toml(p, ApiVersion(0, 7)),
    "metadata.toml": load_config_metadata,
    "detect plan": load_detect_plan,
    "plan.toml": load_plan_toml,
    "buildpack plan": load_buildpack_plan,
    "build.toml": load_build_toml,
    "run.toml": load_run_toml,
    "analyzed.toml": load_analyzed_toml,
    "report.toml": load_report_toml,
}
LABEL_MODELS = sorted(
    (
        m
        for m in vars(label_models).values()
        if isinstance(m, type) and issubclass(m, LabelModel) and m is not LabelModel
    ),
    key=lambda m: m.__name__,
)


def _load_every_toml(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-toml-") as scratch:
        path = Path(scratch) / "file.toml"
        path.write_bytes(data)
        for name, load in TOML_LOADERS.items():
            try:
                load(path)
            except PybuildError:
                pass
            except Exception as exc:
                raise AssertionError(f"{name}: {type(exc).__name__}: {exc}") from exc
    record("fuzz", "toml_inputs", 1)


@FUZZ
@given(toml_documents())
def test_toml_models_raise_only_config_errors_for_structured_documents(document: dict[str, Any]) -> None:
    _load_every_toml(tomli_w.dumps(document).encode())


@FUZZ
@given(st.one_of(hostile_text().map(str.encode), st.binary(max_size=300)))
def test_toml_models_raise_only_config_errors_for_any_bytes(data: bytes) -> None:
    _load_every_toml(data)


@FUZZ
@given(st.one_of(json_documents().map(json.dumps), hostile_text()), st.sampled_from(LABEL_MODELS))
def test_labels_raise_only_config_errors(text: str, model: type[LabelModel]) -> None:
    record("fuzz", "label_inputs", 1)
    try:
        parsed = parse_label("io.example", model, text)
    except ConfigError:
        return
    # What parses must survive our own round trip.
    parse_label("io.example", model, parsed.model_dump_json())


@FUZZ
@given(st.one_of(json_documents().map(json.dumps), hostile_text()))
def test_cache_metadata_raises_only_cache_errors(text: str) -> None:
    record("fuzz", "label_inputs", 1)
    with contextlib.suppress(PybuildError):
        CacheMetadata.parse(text, "fuzz")


_BASE = random_image(layers=2, seed=21)
_NEW_BASE = random_image(layers=2, seed=22)


@FUZZ
@given(json_objects(JSON_KEYS), st.booleans())
def test_images_with_hostile_lifecycle_labels_fail_rebase_and_analyze_typed(
    label: dict[str, Any], force: bool
) -> None:
    """The label drives rebase (top layer, run image) and the next build's restore."""
    record("fuzz", "label_inputs", 1)
    config = json.loads(_BASE.raw_config)
    config["config"]["Labels"] = {"io.buildpacks.lifecycle.metadata": json.dumps(label)}
    raw_config = canonical_json(config)
    manifest = json.loads(_BASE.raw_manifest)
    manifest["config"].update(digest="sha256:" + hashlib.sha256(raw_config).hexdigest(), size=len(raw_config))
    app = Image.from_raw(canonical_json(manifest), raw_config, _BASE.layers[0].source, "fuzz")
    with contextlib.suppress(PybuildError):
        Rebaser(RebaseInputs(app, _NEW_BASE, "run:new", force)).rebase()
    analyze(app, "fuzz", lambda message: None)


@FUZZ
@given(
    st.one_of(json_objects().map(canonical_json), hostile_text().map(str.encode)),
    st.one_of(json_objects().map(canonical_json), hostile_text().map(str.encode)),
)
def test_oci_documents_raise_only_image_errors(raw_manifest: bytes, raw_config: bytes) -> None:
    record("fuzz", "oci_inputs", 1)
    for model in (Manifest, Index, ImageConfig):
        with contextlib.suppress(ImageError):
            parse_model(model, raw_manifest, "fuzz")
    try:
        image = Image.from_raw(raw_manifest, raw_config, MemoryBlobs(), "fuzz")
    except ImageError:
        return
    _ = image.digest, image.labels, image.config_descriptor, image.media_type


@FUZZ
@given(
    st.lists(st.sampled_from(JSON_KEYS), max_size=3),
    json_documents(),
)
def test_consistent_manifests_with_hostile_values_raise_only_image_errors(
    path: list[str], value: Any
) -> None:
    """A real image with one value replaced, with its digests fixed up: validation's turn."""
    record("fuzz", "oci_inputs", 1)
    config = json.loads(_BASE.raw_config)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node
    if isinstance(node, dict) and path:
        node[path[-1]] = value
    raw_config = canonical_json(config)
    manifest = json.loads(_BASE.raw_manifest)
    manifest["config"]["digest"] = "sha256:" + hashlib.sha256(raw_config).hexdigest()
    with contextlib.suppress(ImageError):
        Image.from_raw(canonical_json(manifest), raw_config, MemoryBlobs(), "fuzz")


_NAME_CHARS = st.sampled_from(list("ABCxyz_09.=-/ \t#\0é\n"))


@FUZZ
@given(st.text(alphabet=st.one_of(_NAME_CHARS, st.characters()), max_size=300))
def test_env_file_and_env_flags_raise_only_config_errors(text: str) -> None:
    record("fuzz", "env_inputs", 1)
    environ = {"FROM_HOST": "host value"}
    try:
        parsed = parse_env_file(text, environ)
    except ConfigError:
        parsed = {}
    for name, value in parsed.items():
        assert name and "=" not in name and "\0" not in name + value, (name, value)
    for line in text.split("\n"):
        try:
            name, value = parse_env_assignment(line, environ)
        except ConfigError:
            continue
        assert "\0" not in name + value


@FUZZ
@given(st.binary(max_size=300))
def test_env_file_with_any_bytes_raises_only_config_errors(data: bytes) -> None:
    record("fuzz", "env_inputs", 1)
    with tempfile.TemporaryDirectory(prefix="fuzz-env-") as scratch:
        path = Path(scratch) / "build.env"
        path.write_bytes(data)
        with contextlib.suppress(ConfigError):
            read_env_file(path, {})


_FILE_NAMES = st.text(
    alphabet=st.sampled_from(list("ABPATH_.delimprependoverideaultx")), min_size=1, max_size=24
).filter(lambda n: n not in (".", ".."))


@FUZZ
@given(
    st.dictionaries(_FILE_NAMES, st.binary(max_size=40), max_size=8),
    st.dictionaries(st.sampled_from(["PATH", "A", "B", "X"]), st.text(max_size=10), max_size=4),
)
def test_env_dirs_apply_without_errors(files: dict[str, bytes], current: dict[str, str]) -> None:
    """Any env dir a buildpack writes reads into operations, and any operations apply (BLD-7)."""
    record("fuzz", "env_inputs", 1)
    with tempfile.TemporaryDirectory(prefix="fuzz-envdir-") as scratch:
        for name, body in files.items():
            (Path(scratch) / name).write_bytes(body)
        operations = read_env_dir(Path(scratch))
    result = Env(current).apply(operations)
    assert set(current) <= set(result)
    for op in operations:
        assert op.name and op.op in EnvOp
    assert EnvOperation("X", EnvOp.PREPEND, "v", ":").apply_to(None) == "v"


_REF_CHARS = st.sampled_from(list("abcXYZ019.-_:/@+ \0docker://sha256localhost[]"))


@FUZZ
@given(st.one_of(st.text(alphabet=_REF_CHARS, max_size=80), st.text(max_size=60)))
def test_reference_parsing_raises_only_config_errors_and_round_trips(text: str) -> None:
    record("fuzz", "reference_inputs", 1)
    normalize_tag(text)
    repository_of(text)
    is_host(text.partition("/")[0])
    is_loopback_host(text, ["a", text])
    try:
        ref = parse_reference(text)
    except ConfigError:
        pass
    else:
        assert parse_reference(str(ref)) == ref
    with contextlib.suppress(ConfigError):
        split_repository(text)


_FAKE = FakeRegistry()
_HOME = tempfile.TemporaryDirectory(prefix="pybuild-fuzz-home-")


@FUZZ
@given(st.one_of(st.text(alphabet=_REF_CHARS, max_size=60), st.text(max_size=40)))
def test_store_and_target_references_raise_only_typed_errors(text: str) -> None:
    record("fuzz", "reference_inputs", 1)
    with fake_store(_FAKE) as store, contextlib.suppress(PybuildError):
        store.reference(text)
    if text.startswith("docker-daemon:"):
        return  # would dial the daemon
    with contextlib.suppress(PybuildError):
        open_target(text, home=Path(_HOME.name))
