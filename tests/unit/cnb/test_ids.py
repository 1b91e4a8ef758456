"""Buildpack IDs (GEN-3), layer names (BLD-5) and process types (BLD-10)."""

from __future__ import annotations

import pytest

from lifecycle.cnb import check_buildpack_id, check_layer_name, check_process_type, escape_id


@pytest.mark.parametrize("buildpack_id", ["acme/node", "paketo-buildpacks/go.dist", "A9", "x"])
def test_gen3_valid_ids_pass_unchanged(buildpack_id: str) -> None:
    assert check_buildpack_id(buildpack_id) == buildpack_id


@pytest.mark.parametrize("buildpack_id", ["", "acme_node", "acme node", "acme:node", ".", ".."])
def test_gen3_ids_outside_the_character_set_fail(buildpack_id: str) -> None:
    with pytest.raises(ValueError, match="is not a valid buildpack ID"):
        check_buildpack_id(buildpack_id)


@pytest.mark.parametrize("buildpack_id", ["app", "config", "generated", "sbom"])
def test_gen3_reserved_ids_fail(buildpack_id: str) -> None:
    with pytest.raises(ValueError, match="is reserved"):
        check_buildpack_id(buildpack_id)


def test_gen3_escape_replaces_every_slash() -> None:
    assert escape_id("acme/node/x") == "acme_node_x"
    assert escape_id("plain") == "plain"


@pytest.mark.parametrize("name", ["build", "launch", "store"])
def test_bld5_reserved_layer_names_fail(name: str) -> None:
    with pytest.raises(ValueError, match=f'layer name "{name}" is reserved'):
        check_layer_name(name)


def test_bld5_ordinary_layer_names_pass_and_path_tricks_fail() -> None:
    assert check_layer_name("node-modules") == "node-modules"
    for name in ("", "a/b", ".."):
        with pytest.raises(ValueError, match="not a valid dir name"):
            check_layer_name(name)


@pytest.mark.parametrize(
    ("process_type", "valid"), [("web", True), ("a.b_c-1", True), ("a b", False), ("x/y", False)]
)
def test_bld10_process_type_character_set(process_type: str, valid: bool) -> None:
    if valid:
        assert check_process_type(process_type) == process_type
    else:
        with pytest.raises(ValueError, match="is not a valid process type"):
            check_process_type(process_type)
