"""Hypothesis strategies for the fuzz tests: documents that look like what pybuild reads.

Random text finds parser crashes; documents built from the field names the models know reach
their validators, where the interesting failures are (wrong types, odd values, deep nesting).
"""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .figures import scaled, soak

FUZZ = settings(
    max_examples=scaled(120, 3000),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=not soak(),
)
"""CI runs the same ~120 examples per target every time (a failure reproduces); ``make soak`` runs
3,000 fresh ones. A failing input found that way goes into tests/fuzz_corpus by hand."""

TOML_KEYS = [
    "api",
    "buildpack",
    "id",
    "version",
    "name",
    "homepage",
    "description",
    "keywords",
    "licenses",
    "type",
    "uri",
    "stacks",
    "targets",
    "os",
    "arch",
    "arch-variant",
    "variant",
    "distros",
    "distro",
    "order",
    "group",
    "optional",
    "exec-env",
    "processes",
    "process",
    "command",
    "args",
    "direct",
    "default",
    "working-dir",
    "labels",
    "key",
    "value",
    "slices",
    "paths",
    "types",
    "launch",
    "build",
    "cache",
    "metadata",
    "requires",
    "provides",
    "or",
    "entries",
    "providers",
    "unmet",
    "run",
    "images",
    "image",
    "mirrors",
    "env",
    "delim",
    "suffix",
    "_",
    "schema-version",
    "io.buildpacks.project",
    "project",
    "include",
    "exclude",
    "buildpacks",
    "script",
    "inline",
    "shell",
    "system",
    "pre",
    "post",
    "clear-env",
    "sbom-formats",
    "sha",
    "data",
    "store",
    "stack",
    "run-image",
    "build-image",
    "lifecycle",
    "platform",
    "buildpack-default",
    "top-layer",
    "reference",
    "runImage",
    "topLayer",
    "app",
    "config",
    "launcher",
    "bom",
    "source",
]

JSON_KEYS = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "digest",
    "size",
    "annotations",
    "manifests",
    "platform",
    "architecture",
    "os",
    "os.version",
    "variant",
    "urls",
    "rootfs",
    "type",
    "diff_ids",
    "history",
    "created",
    "created_by",
    "empty_layer",
    "Labels",
    "Env",
    "Entrypoint",
    "Cmd",
    "User",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "buildpacks",
    "key",
    "version",
    "layers",
    "sha",
    "data",
    "launch",
    "build",
    "cache",
    "store",
    "metadata",
    "runImage",
    "topLayer",
    "reference",
    "image",
    "mirrors",
    "stack",
    "app",
    "launcher",
    "sbom",
    "processes",
    "command",
    "args",
    "direct",
    "buildpack-default",
    "bom",
    "source",
    "git",
    "repository",
    "commit",
    "project",
]

_scalars = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["", "sha256:" + "a" * 64, "sha256:../../etc", "0.10", "0.99", "../..", "/", "a/b", "x" * 300]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _keys(names: tuple[str, ...] | list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(list(names)), st.text(min_size=1, max_size=8))


def json_documents(keys: list[str] = JSON_KEYS) -> st.SearchStrategy[Any]:
    """JSON values whose objects mostly use ``keys``, a few levels deep."""
    return st.recursive(
        st.one_of(st.none(), _scalars),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_keys(keys), inner, max_size=6),
        ),
        max_leaves=25,
    )


def json_objects(keys: list[str] = JSON_KEYS) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_keys(keys), json_documents(keys), max_size=8)


_toml_scalars = st.one_of(
    _scalars.filter(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
)


def toml_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Tables TOML can express (no null), keyed mostly by CNB field names."""
    values = st.recursive(
        _toml_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_keys(TOML_KEYS), inner, max_size=6),
        ),
        max_leaves=25,
    )
    return st.dictionaries(_keys(TOML_KEYS), values, max_size=8)


def hostile_text() -> st.SearchStrategy[str]:
    """Text with the characters parsers trip on: NUL, newlines, quotes, brackets, surrogate-free unicode."""
    return st.one_of(
        st.text(max_size=200),
        st.text(alphabet=st.sampled_from(list("[]{}=\"'\\\n\r\t\0#.,:abc123 ")), max_size=200),
        st.integers(min_value=1, max_value=5000).map(lambda n: "a = " + "[" * n + "]" * n),
    )
