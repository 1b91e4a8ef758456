"""The build phase with buildpacks simulated by a FakeRunner (BLD-1..14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb.layers import load_config_metadata
from lifecycle.cnb.plan import PlanEntry, PlanProvider, PlanToml, Require
from lifecycle.execution.runner import ProcessRequest
from lifecycle.phases.build import Builder, BuildFailed, BuildInputs

from .fakes import FakeBuildpacks, base_env, write


def _build(
    fakes: FakeBuildpacks, *ids: str, plan: PlanToml | None = None, user_env: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    inputs = BuildInputs(
        fakes.group(*ids), plan or PlanToml(), fakes.workspace.layers, base_env(), user_env or {}
    )
    return Builder(inputs, fakes.executor).build()


def test_later_buildpack_wins_process_type_and_plain_redefinition_drops_default(tmp_path: Path) -> None:
    """BLD-11."""

    def first(layers: Path, _: ProcessRequest) -> int:
        write(
            layers / "launch.toml",
            '[[processes]]\ntype = "web"\ncommand = ["a"]\ndefault = true\n'
            '[[processes]]\ntype = "worker"\ncommand = ["w"]\n',
        )
        return 0

    def second(layers: Path, _: ProcessRequest) -> int:
        write(layers / "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["b"]\n')
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/first": first, "a/second": second})
    metadata = _build(fakes, "a/first", "a/second")
    assert [(p.type, p.command, p.buildpack_id) for p in metadata.processes] == [
        ("web", ("b",), "a/second"),
        ("worker", ("w",), "a/first"),
    ]
    assert metadata.buildpack_default_process_type is None
    written = load_config_metadata(fakes.workspace.layers / "config" / "metadata.toml")
    assert written == metadata  # BLD-14


def test_build_layer_env_reaches_later_buildpacks_only(tmp_path: Path) -> None:
    """BLD-6: bin on PATH, env.build files, for the buildpacks after the one that made the layer."""
    seen: dict[str, dict[str, str]] = {}

    def tools(layers: Path, request: ProcessRequest) -> int:
        seen["tools"] = dict(request.env)
        write(layers / "tools.toml", "[types]\nbuild = true\n")
        (layers / "tools" / "bin").mkdir(parents=True)
        write(layers / "tools" / "env.build" / "TOOLS_HOME.override", "/opt/tools")
        return 0

    def user(layers: Path, request: ProcessRequest) -> int:
        seen["user"] = dict(request.env)
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/tools": tools, "a/user": user})
    _build(fakes, "a/tools", "a/user")
    tools_bin = str(fakes.workspace.layers / "a_tools" / "tools" / "bin")
    assert seen["user"]["PATH"].startswith(tools_bin + ":")
    assert seen["user"]["TOOLS_HOME"] == "/opt/tools"
    assert "TOOLS_HOME" not in seen["tools"]


def test_layer_with_no_flags_is_renamed_ignore(tmp_path: Path) -> None:
    """BLD-4."""

    def bp(layers: Path, _: ProcessRequest) -> int:
        write(layers / "scratch.toml", "[metadata]\nx = 1\n")
        write(layers / "scratch" / "file", "x")
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/bp": bp})
    _build(fakes, "a/bp")
    layers = fakes.workspace.layers / "a_bp"
    assert (layers / "scratch.ignore" / "file").is_file()
    assert not (layers / "scratch").exists()


def test_failing_bin_build_exits_51(tmp_path: Path) -> None:
    """BLD-1."""
    fakes = FakeBuildpacks(tmp_path, {"a/bp": lambda layers, req: 3})
    with pytest.raises(BuildFailed) as caught:
        _build(fakes, "a/bp")
    assert caught.value.exit_code == 51


def test_reserved_layer_name_exits_52(tmp_path: Path) -> None:
    """BLD-5."""

    def bp(layers: Path, _: ProcessRequest) -> int:
        (layers / "store").mkdir(parents=True)
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/bp": bp})
    with pytest.raises(BuildFailed, match="reserved") as caught:
        _build(fakes, "a/bp")
    assert caught.value.exit_code == 52


def test_unmet_entries_pass_to_the_next_provider(tmp_path: Path) -> None:
    """BLD-2: the plan a buildpack gets; unmet entries go on to later providers."""
    plans: dict[str, str] = {}

    def reader(name: str, unmet: bool):  # type: ignore[no-untyped-def]
        def run(layers: Path, request: ProcessRequest) -> int:
            plans[name] = Path(request.env["CNB_BP_PLAN_PATH"]).read_text()
            if unmet:
                write(layers / "build.toml", '[[unmet]]\nname = "python"\n')
            return 0

        return run

    fakes = FakeBuildpacks(tmp_path, {"a/one": reader("one", True), "a/two": reader("two", False)})
    providers = tuple(PlanProvider(id=i, version="1.0") for i in ("a/one", "a/two"))
    plan = PlanToml(entries=(PlanEntry(providers=providers, requires=(Require(name="python"),)),))
    _build(fakes, "a/one", "a/two", plan=plan)
    assert 'name = "python"' in plans["one"]
    assert 'name = "python"' in plans["two"]


def test_user_env_applies_unless_clear_env(tmp_path: Path) -> None:
    """BLD-8."""
    seen: dict[str, dict[str, str]] = {}

    def record(name: str):  # type: ignore[no-untyped-def]
        def run(layers: Path, request: ProcessRequest) -> int:
            seen[name] = dict(request.env)
            return 0

        return run

    fakes = FakeBuildpacks(tmp_path, {"a/plain": record("plain"), "a/clear": record("clear")})
    clear = fakes.descriptors["a/clear"]
    fakes.descriptors["a/clear"] = clear.model_copy(
        update={"buildpack": clear.buildpack.model_copy(update={"clear_env": True})}
    )
    _build(fakes, "a/plain", "a/clear", user_env={"BP_GREETING": "hi", "PATH": "/user/bin"})
    assert seen["plain"]["BP_GREETING"] == "hi"
    assert seen["plain"]["PATH"].startswith("/user/bin:")
    assert "BP_GREETING" not in seen["clear"]


def test_sbom_files_are_gathered_by_kind(tmp_path: Path) -> None:
    """BLD-13: launch/build/layer SBOMs land under <layers>/sbom; cache layers also under cache."""

    def bp(layers: Path, _: ProcessRequest) -> int:
        write(layers / "launch.sbom.cdx.json", "{}")
        write(layers / "build.sbom.spdx.json", "{}")
        write(layers / "deps.toml", "[types]\nlaunch = true\ncache = true\n")
        (layers / "deps").mkdir()
        write(layers / "deps.sbom.cdx.json", '{"deps": 1}')
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/bp": bp})
    allowed = ["application/vnd.cyclonedx+json", "application/spdx+json"]
    desc = fakes.descriptors["a/bp"]
    fakes.descriptors["a/bp"] = desc.model_copy(
        update={"buildpack": desc.buildpack.model_copy(update={"sbom_formats": tuple(allowed)})}
    )
    _build(fakes, "a/bp")
    sbom = fakes.workspace.layers / "sbom"
    assert (sbom / "launch" / "a_bp" / "sbom.cdx.json").is_file()
    assert (sbom / "build" / "a_bp" / "sbom.spdx.json").is_file()
    assert (sbom / "launch" / "a_bp" / "deps" / "sbom.cdx.json").read_text() == '{"deps": 1}'
    assert (sbom / "cache" / "a_bp" / "deps" / "sbom.cdx.json").is_file()


def test_sbom_of_undeclared_type_fails_the_build(tmp_path: Path) -> None:
    """BLD-13 [L]: a media type missing from sbom-formats is an error."""

    def bp(layers: Path, _: ProcessRequest) -> int:
        write(layers / "launch.sbom.syft.json", "{}")
        return 0

    fakes = FakeBuildpacks(tmp_path, {"a/bp": bp})
    with pytest.raises(BuildFailed, match="sbom-formats") as caught:
        _build(fakes, "a/bp")
    assert caught.value.exit_code == 52
