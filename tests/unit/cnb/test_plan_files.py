"""Detect plan output (DET-7), plan.toml (DET-10), buildpack plan and build.toml (BLD-2)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lifecycle.cnb import (
    BuildpackPlan,
    PlanEntry,
    PlanProvider,
    PlanSections,
    PlanToml,
    Provide,
    Require,
    load_build_toml,
    load_buildpack_plan,
    load_detect_plan,
    load_plan_toml,
    write_toml,
)
from lifecycle.errors import ConfigError

DETECT_OUTPUT = """
[[provides]]
name = "node"
[[requires]]
name = "node"
[requires.metadata]
version = "20"

[[or]]
[[or.provides]]
name = "yarn"
[[or.requires]]
name = "yarn"
"""


def test_det7_det8_alternatives_are_top_level_pair_then_each_or(tmp_path: Path) -> None:
    path = tmp_path / "plan"
    path.write_text(DETECT_OUTPUT)
    plan = load_detect_plan(path)
    assert plan.alternatives() == (
        PlanSections(
            requires=(Require(name="node", metadata={"version": "20"}),), provides=(Provide(name="node"),)
        ),
        PlanSections(requires=(Require(name="yarn"),), provides=(Provide(name="yarn"),)),
    )


def test_det7_empty_plan_file_has_one_empty_alternative(tmp_path: Path) -> None:
    path = tmp_path / "plan"
    path.write_text("")
    assert load_detect_plan(path).alternatives() == (PlanSections(),)


def test_det7_version_directly_on_a_require_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plan"
    path.write_text('[[requires]]\nname = "node"\nversion = "20"\n')
    with pytest.raises(
        ConfigError, match=r'requires "node" has a top-level version \(move it to \[requires.metadata\]\)'
    ):
        load_detect_plan(path)


def test_det7_version_inside_an_or_require_is_an_error_too(tmp_path: Path) -> None:
    path = tmp_path / "plan"
    path.write_text('[[or]]\n[[or.requires]]\nname = "node"\nversion = "20"\n')
    with pytest.raises(ConfigError, match="top-level version"):
        load_detect_plan(path)


def test_det10_plan_toml_round_trips_with_providers_and_requires(tmp_path: Path) -> None:
    plan = PlanToml(
        entries=(
            PlanEntry(
                providers=(PlanProvider(id="acme/node", version="1"),),
                requires=(Require(name="node", metadata={"version": "20"}), Require(name="node")),
            ),
        )
    )
    path = tmp_path / "plan.toml"
    write_toml(path, plan)
    assert tomllib.loads(path.read_text()) == {
        "entries": [
            {
                "providers": [{"id": "acme/node", "version": "1"}],
                "requires": [{"name": "node", "metadata": {"version": "20"}}, {"name": "node"}],
            }
        ]
    }
    assert load_plan_toml(path) == plan


def test_bld2_buildpack_plan_and_unmet(tmp_path: Path) -> None:
    plan_path, build_path = tmp_path / "plan.toml", tmp_path / "build.toml"
    write_toml(plan_path, BuildpackPlan(entries=(Require(name="node", metadata={"v": 1}),)))
    build_path.write_text('[[unmet]]\nname = "node"\n[[bom]]\nname = "legacy"\n')
    assert load_buildpack_plan(plan_path).entries == (Require(name="node", metadata={"v": 1}),)
    assert [unmet.name for unmet in load_build_toml(build_path).unmet] == ["node"]
