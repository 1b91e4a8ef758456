"""Detection with image extensions (DET-16, DET-6, DET-10, DET-14), table-driven, fake runner."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.extension import ExtensionDir, load_extension_dir
from lifecycle.cnb.order import OrderEntry, OrderGroup
from lifecycle.env import Env
from lifecycle.errors import ConfigError, DetectFailed
from lifecycle.execution.executor import BuildpackExecutor, TargetInfo
from lifecycle.execution.runner import FakeRunner, ProcessRequest, SandboxPaths, Workspace
from lifecycle.phases.detect import Detector
from lifecycle.phases.detect_extensions import ExtensionOrder

PROVIDES_CURL = '[[provides]]\nname = "curl"\n'
REQUIRES_CURL = '[[requires]]\nname = "curl"\n'


@dataclass
class Script:
    """What a fake `bin/detect` does: its exit code and the plan it writes."""

    code: int = 0
    plan: str = ""


@dataclass
class World:
    tmp_path: Path
    buildpacks: dict[str, Script] = field(default_factory=dict)
    extensions: dict[str, Script] = field(default_factory=dict)
    requests: list[ProcessRequest] = field(default_factory=list)

    def detector(
        self,
        order: list[list[str]],
        order_extensions: list[list[str]],
        *,
        optional: frozenset[str] = frozenset(),
        no_detect: dict[str, str] | None = None,
        targets: dict[str, str] | None = None,
    ) -> Detector:
        dirs = {name: self.tmp_path / name for name in ("app", "layers", "platform")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        descriptors: dict[str, BuildpackDescriptor] = {}
        paths: dict[str, Path] = {}
        for bp_id in self.buildpacks:
            desc = BuildpackDescriptor.model_validate(
                {"api": "0.10", "buildpack": {"id": bp_id, "version": "1"}}
            )
            descriptors[desc.ref] = desc
            paths[desc.ref] = self._exe_dir(f"bp/{bp_id}", "detect", "build")
        extensions: dict[str, ExtensionDir] = {}
        for ext_id in self.extensions:
            ext_dir = self._exe_dir(f"ext/{ext_id}", "generate")
            if ext_id not in (no_detect or {}):
                self._exe_dir(f"ext/{ext_id}", "detect")
            elif no_detect and no_detect[ext_id]:
                (ext_dir / "detect").mkdir()
                (ext_dir / "detect" / "plan.toml").write_text(no_detect[ext_id])
            target = (targets or {}).get(ext_id)
            toml = f'api = "0.10"\n[extension]\nid = "{ext_id}"\nversion = "1"\n'
            if target:
                toml += f'[[targets]]\nos = "linux"\narch = "{target}"\n'
            (ext_dir / "extension.toml").write_text(toml)
            found = load_extension_dir(ext_dir)
            extensions[found.ref] = found
            paths[found.ref] = ext_dir
        workspace = Workspace(dirs["app"], dirs["layers"], dirs["platform"], paths)
        executor = BuildpackExecutor(FakeRunner(self._handle), workspace, TargetInfo(), output=lambda _: None)

        def groups(rows: list[list[str]]) -> list[OrderGroup]:
            return [
                OrderGroup(group=tuple(OrderEntry(id=i, version="1", optional=i in optional) for i in row))
                for row in rows
            ]

        order_ext = ExtensionOrder(extensions, groups(order_extensions))
        env = Env({"PATH": "/bin"})
        return Detector(groups(order), descriptors, executor, env, extensions=order_ext)

    def _exe_dir(self, relative: str, *names: str) -> Path:
        root = self.tmp_path / relative
        (root / "bin").mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / "bin" / name).write_text("#!/bin/sh\n")
            (root / "bin" / name).chmod(0o755)
        return root

    def _handle(self, request: ProcessRequest, paths: SandboxPaths) -> tuple[int, str]:
        self.requests.append(request)
        kind, name = Path(request.argv[0]).parent.parent.relative_to(self.tmp_path).parts
        script = (self.buildpacks if kind == "bp" else self.extensions)[name]
        Path(request.argv[2]).write_text(script.plan)
        return script.code, ""


@dataclass(frozen=True)
class Case:
    name: str
    buildpacks: dict[str, Script]
    extensions: dict[str, Script]
    group: list[str]
    group_extensions: list[str]
    optional: frozenset[str] = frozenset()


CASES = [
    Case(  # DET-16: an extension provides what a later buildpack requires: it stays
        "provides-required",
        {"b": Script(0, REQUIRES_CURL)},
        {"e": Script(0, PROVIDES_CURL)},
        ["b"],
        ["e"],
    ),
    Case(  # DET-16: one that provides what nobody requires is dropped
        "provides-unrequired",
        {"b": Script(0, "")},
        {"e": Script(0, PROVIDES_CURL)},
        ["b"],
        [],
    ),
    Case(  # DET-16: always optional, so a failing extension does not fail the group
        "extension-fails",
        {"b": Script(0, "")},
        {"e": Script(100, "")},
        ["b"],
        [],
    ),
    Case(  # DET-16: an extension that requires is an error, and it is dropped
        "extension-requires",
        {"b": Script(0, "")},
        {"e": Script(0, REQUIRES_CURL)},
        ["b"],
        [],
    ),
    Case(  # an extension with an empty plan stays: it provides nothing nobody requires
        "empty-plan",
        {"b": Script(0, "")},
        {"e": Script(0, "")},
        ["b"],
        ["e"],
    ),
    Case(  # DET-9: the buildpack's require is met by the extension, in front of it
        "two-extensions-one-needed",
        {"b": Script(0, REQUIRES_CURL)},
        {"e1": Script(0, '[[provides]]\nname = "jq"\n'), "e2": Script(0, PROVIDES_CURL)},
        ["b"],
        ["e2"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_detect_with_extensions(tmp_path: Path, case: Case) -> None:
    world = World(tmp_path, dict(case.buildpacks), dict(case.extensions))
    detector = world.detector([list(case.buildpacks)], [list(case.extensions)], optional=case.optional)
    group, _ = detector.detect(tmp_path / "layers")
    assert [bp.buildpack.id for bp in group] == case.group
    assert [e.id for e in detector.group_extensions] == case.group_extensions


def test_group_toml_has_group_extensions_and_plan_marks_extension_providers(tmp_path: Path) -> None:
    """DET-14: [[group-extensions]]; DET-10: a provider that is an extension has extension = true."""
    world = World(tmp_path, {"b": Script(0, REQUIRES_CURL)}, {"e": Script(0, PROVIDES_CURL)})
    world.detector([["b"]], [["e"]]).detect(tmp_path / "layers")
    group = tomllib.loads((tmp_path / "layers" / "group.toml").read_text())
    plan = tomllib.loads((tmp_path / "layers" / "plan.toml").read_text())
    assert [e["id"] for e in group["group"]] == ["b"]
    assert [(e["id"], e["api"]) for e in group["group-extensions"]] == [("e", "0.10")]
    assert plan["entries"][0]["providers"] == [{"id": "e", "version": "1", "extension": True}]


def test_a_group_where_only_an_extension_passed_fails(tmp_path: Path) -> None:
    """DET-6: extensions do not count towards a passing group."""
    world = World(tmp_path, {"b": Script(100, "")}, {"e": Script(0, "")})
    detector = world.detector([["b"]], [["e"]], optional=frozenset({"b"}))
    with pytest.raises(DetectFailed) as failed:
        detector.detect()
    assert failed.value.exit_code == 20


def test_extension_detect_gets_extension_dir_not_buildpack_dir(tmp_path: Path) -> None:
    world = World(tmp_path, {"b": Script(0, "")}, {"e": Script(0, "")})
    world.detector([["b"]], [["e"]]).detect()
    ext_run = next(r for r in world.requests if "/ext/" in r.argv[0])
    assert ext_run.env["CNB_EXTENSION_DIR"] == str(tmp_path / "ext" / "e")
    assert "CNB_BUILDPACK_DIR" not in ext_run.env
    assert ext_run.env["CNB_TARGET_OS"] == "linux" and ext_run.env["CNB_BUILD_PLAN_PATH"] == ext_run.argv[2]


def test_extension_without_bin_detect_passes_with_its_detect_dir_plan(tmp_path: Path) -> None:
    """Image extension spec: no bin/detect passes; <ext>/detect/plan.toml is its output."""
    world = World(tmp_path, {"b": Script(0, REQUIRES_CURL)}, {"e": Script(1, "")})
    detector = world.detector([["b"]], [["e"]], no_detect={"e": PROVIDES_CURL})
    detector.detect()
    assert [e.id for e in detector.group_extensions] == ["e"]
    assert not any("/ext/" in r.argv[0] for r in world.requests)


def test_extension_for_another_target_does_not_run(tmp_path: Path) -> None:
    world = World(tmp_path, {"b": Script(0, "")}, {"e": Script(0, "")})
    detector = world.detector([["b"]], [["e"]], targets={"e": "arm64"})
    detector.detect()
    assert detector.group_extensions == []
    assert not any("/ext/" in r.argv[0] for r in world.requests)


def test_every_order_group_gets_order_extensions_in_front(tmp_path: Path) -> None:
    """DET-16: the second buildpack group is tried with the extensions too."""
    world = World(
        tmp_path, {"a": Script(100, ""), "b": Script(0, REQUIRES_CURL)}, {"e": Script(0, PROVIDES_CURL)}
    )
    detector = world.detector([["a"], ["b"]], [["e"]])
    group, _ = detector.detect()
    assert [bp.buildpack.id for bp in group] == ["b"]
    assert [e.id for e in detector.group_extensions] == ["e"]


def test_an_extension_in_the_buildpack_order_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path, {"b": Script(0, "")}, {"e": Script(0, "")})
    detector = world.detector([["e", "b"]], [["e"]])
    with pytest.raises(ConfigError, match=r"move it to \[\[order-extensions\]\]") as refused:
        detector.detect()
    assert refused.value.exit_code == 22


def test_no_order_extensions_leaves_detection_as_it_was(tmp_path: Path) -> None:
    world = World(tmp_path, {"b": Script(0, "")}, {"e": Script(0, PROVIDES_CURL)})
    detector = world.detector([["b"]], [])
    group, plan = detector.detect(tmp_path / "layers")
    assert [bp.buildpack.id for bp in group] == ["b"] and plan.entries == ()
    assert "group-extensions" not in (tmp_path / "layers" / "group.toml").read_text()
