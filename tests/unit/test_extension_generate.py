"""The generate phase with a fake runner: env, outputs, run image selection, plan, exit codes 91/92."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.cnb.extension import ExtensionDir, load_extension_dir
from lifecycle.cnb.plan import PlanEntry, PlanProvider, PlanToml, Require
from lifecycle.env import Env
from lifecycle.execution.executor import BuildpackExecutor, TargetInfo
from lifecycle.execution.runner import FakeRunner, ProcessRequest, SandboxPaths, Workspace
from lifecycle.phases.generate import GenerateFailed, Generator

Script = Callable[[Path, ProcessRequest], int]  # writes into the output dir, returns the exit code
SWITCH = "FROM pybuild/run:other\n"
EXTEND = "ARG base_image\nFROM ${base_image}\nRUN echo hi\n"


def setup(tmp_path: Path, scripts: dict[str, Script | None]) -> tuple[list[ExtensionDir], BuildpackExecutor]:
    dirs = {name: tmp_path / name for name in ("app", "layers", "platform")}
    for path in dirs.values():
        path.mkdir()
    extensions, paths = [], {}
    for ext_id, script in scripts.items():
        root = tmp_path / "ext" / ext_id
        (root / "bin").mkdir(parents=True)
        (root / "extension.toml").write_text(f'api = "0.10"\n[extension]\nid = "{ext_id}"\nversion = "1"\n')
        if script is None:
            (root / "generate").mkdir()
            (root / "generate" / "run.Dockerfile").write_text(SWITCH)
        else:
            (root / "bin" / "generate").write_text("#!/bin/sh\n")
            (root / "bin" / "generate").chmod(0o755)
        found = load_extension_dir(root)
        extensions.append(found)
        paths[found.ref] = root

    def handle(request: ProcessRequest, sandbox: SandboxPaths) -> tuple[int, str]:
        ext_id = Path(request.argv[0]).parent.parent.name
        script = scripts[ext_id]
        assert script is not None
        return script(Path(request.argv[1]), request), ""

    workspace = Workspace(dirs["app"], dirs["layers"], dirs["platform"], paths)
    executor = BuildpackExecutor(FakeRunner(handle), workspace, TargetInfo(), output=lambda _: None)
    return extensions, executor


def writes(run: str | None = None, build: str | None = None, config: str = "", code: int = 0) -> Script:
    def script(output: Path, request: ProcessRequest) -> int:
        for name, text in (
            ("run.Dockerfile", run),
            ("build.Dockerfile", build),
            ("extend-config.toml", config),
        ):
            if text:
                (output / name).write_text(text)
        return code

    return script


def generator(
    extensions: list[ExtensionDir], executor: BuildpackExecutor, plan: PlanToml | None = None
) -> Generator:
    return Generator(extensions, plan or PlanToml(), executor, Env({"PATH": "/bin"}), {"BP_X": "1"})


def test_generate_gets_the_extension_env_and_arguments(tmp_path: Path) -> None:
    seen: list[ProcessRequest] = []

    def script(output: Path, request: ProcessRequest) -> int:
        seen.append(request)
        return 0

    extensions, executor = setup(tmp_path, {"e": script})
    generator(extensions, executor).generate()
    env, argv = seen[0].env, seen[0].argv
    assert env["CNB_OUTPUT_DIR"] == argv[1] == str(tmp_path / "layers" / "generated" / "e")
    assert env["CNB_EXTENSION_DIR"] == str(tmp_path / "ext" / "e")
    assert env["CNB_PLATFORM_DIR"] == argv[2] and env["CNB_BP_PLAN_PATH"] == argv[3]
    assert env["CNB_TARGET_OS"] == "linux" and env["BP_X"] == "1"
    assert "CNB_LAYERS_DIR" not in env and "CNB_BUILDPACK_DIR" not in env


def test_last_switching_run_dockerfile_selects_the_run_image(tmp_path: Path) -> None:
    """Platform spec: the last FROM <image> wins; run Dockerfiles before it become *.ignore."""
    extensions, executor = setup(
        tmp_path,
        {
            "a": writes(run=EXTEND),
            "b": writes(run=SWITCH),
            "c": writes(run=EXTEND, build=EXTEND.replace("RUN", "ARG x\nRUN")),
        },
    )
    result = generator(extensions, executor).generate()
    generated = tmp_path / "layers" / "generated"
    assert result.run_image == "pybuild/run:other"
    assert [d.extension_id for d in result.run] == ["b", "c"] and result.extend_run
    assert [d.extension_id for d in result.build] == ["c"] and result.extend_build
    assert (generated / "a" / "run.Dockerfile.ignore").is_file()
    assert not (generated / "a" / "run.Dockerfile").exists()


def test_a_from_only_switch_does_not_extend(tmp_path: Path) -> None:
    extensions, executor = setup(tmp_path, {"b": writes(run=SWITCH)})
    result = generator(extensions, executor).generate()
    assert result.run_image == "pybuild/run:other" and not result.extend_run and not result.extend_build


def test_without_bin_generate_the_generate_dir_is_the_output(tmp_path: Path) -> None:
    extensions, executor = setup(tmp_path, {"g": None})
    result = generator(extensions, executor).generate()
    assert result.run_image == "pybuild/run:other"
    assert (tmp_path / "layers" / "generated" / "g" / "run.Dockerfile").is_file()


def test_extend_config_args_and_context_reach_the_dockerfile(tmp_path: Path) -> None:
    def script(output: Path, request: ProcessRequest) -> int:
        writes(build=EXTEND, config='[[build.args]]\nname = "pkg"\nvalue = "jq"\n')(output, request)
        (output / "context.build").mkdir()
        return 0

    extensions, executor = setup(tmp_path, {"e": script})
    [dockerfile] = generator(extensions, executor).generate().build
    assert dict(dockerfile.args) == {"pkg": "jq"}
    assert dockerfile.context == tmp_path / "layers" / "generated" / "e" / "context.build"


def test_the_extension_gets_its_plan_entries_and_buildpacks_do_not(tmp_path: Path) -> None:
    """Image extension spec: an extension meets every entry it provides."""
    plans: list[str] = []

    def script(output: Path, request: ProcessRequest) -> int:
        plans.append(Path(request.argv[3]).read_text())
        return 0

    extensions, executor = setup(tmp_path, {"e": script})
    curl = PlanEntry(
        providers=(PlanProvider(id="e", version="1", extension=True),),
        requires=(Require(name="curl", metadata={"v": "8"}),),
    )
    python = PlanEntry(providers=(PlanProvider(id="bp", version="1"),), requires=(Require(name="python"),))
    result = generator(extensions, executor, PlanToml(entries=(curl, python))).generate()
    assert tomllib.loads(plans[0])["entries"] == [{"name": "curl", "metadata": {"v": "8"}}]
    assert [e.requires[0].name for e in result.plan.entries] == ["python"]


@pytest.mark.parametrize(
    ("script", "code", "says"),
    [
        (writes(code=4), 91, "bin/generate exited with 4"),
        (writes(run="ARG base_image\nFROM ${base_image}\nEXPOSE 80\n"), 92, "EXPOSE"),
        (writes(build="FROM other\n"), 92, "build.Dockerfile"),
        (writes(config="[[run.args]]\nvalue = 1\n"), 92, "extend-config.toml"),
    ],
)
def test_generate_errors_exit_91_or_92(tmp_path: Path, script: Script, code: int, says: str) -> None:
    extensions, executor = setup(tmp_path, {"e": script})
    with pytest.raises(GenerateFailed) as failed:
        generator(extensions, executor).generate()
    assert failed.value.exit_code == code and says in str(failed.value)


@pytest.mark.parametrize(
    ("mode", "fails", "warned"),
    [(None, True, 0), ("error", True, 0), ("warn", False, 1), ("silent", False, 0)],
)
def test_experimental_mode_gates_extensions_in_the_phase_commands(
    mode: str | None, fails: bool, warned: int
) -> None:
    """GEN-5: unset or error fails, warn warns, silent goes on."""
    from lifecycle.errors import ConfigError
    from lifecycle.platform.build_extensions import check_experimental

    warnings: list[str] = []
    if fails:
        with pytest.raises(ConfigError, match="CNB_EXPERIMENTAL_MODE=warn or silent") as refused:
            check_experimental("image extensions", mode, warnings.append)
        assert refused.value.exit_code == 22
    else:
        check_experimental("image extensions", mode, warnings.append)
    assert len(warnings) == warned
