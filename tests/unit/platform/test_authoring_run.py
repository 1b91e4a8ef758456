"""`pybuild buildpack test` over a FakeRunner: the phases' results become the trial report."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.env import EnvOp, EnvOperation
from lifecycle.errors import DetectFailed
from lifecycle.execution.executor import BuildpackExecutor
from lifecycle.execution.runner import FakeRunner, ProcessRequest, SandboxPaths, Workspace
from lifecycle.phases.build import BuildFailed
from lifecycle.platform.authoring_run import TrialPhases, host_target, layer_reports, run_trial

DESCRIPTOR = BuildpackDescriptor.model_validate(
    {"api": "0.12", "buildpack": {"id": "acme/tools", "version": "1.0"}}
)
PLAN = '[[provides]]\nname = "tools"\n\n[[requires]]\nname = "tools"\n'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _build(layers: Path) -> None:
    """A launch layer with bin/ and launch env, a build layer with build env, an unused layer."""
    _write(layers / "run.toml", '[types]\nlaunch = true\n[metadata]\nsha = "abc"\n')
    _write(layers / "run" / "bin" / "serve", "#!/bin/sh\n")
    _write(layers / "run" / "env.launch" / "MODE.default", "production")
    _write(layers / "sdk.toml", "[types]\nbuild = true\ncache = true\n")
    _write(layers / "sdk" / "env.build" / "SDK_HOME.override", "/opt/sdk")
    _write(layers / "scratch.toml", "[types]\n")
    _write(layers / "scratch" / "junk", "x" * 10)
    _write(layers / "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["serve"]\ndefault = true\n')


def _executor(tmp_path: Path, detect_code: int = 0, build_code: int = 0) -> BuildpackExecutor:
    def handle(request: ProcessRequest, paths: SandboxPaths) -> tuple[int, str]:
        if request.argv[0].endswith("/detect"):
            Path(request.argv[2]).write_text(PLAN)
            return detect_code, "detect says hi"
        if build_code == 0:
            _build(Path(request.argv[1]))
        return build_code, "build says hi"

    app, layers, platform, bp = (tmp_path / name for name in ("app", "layers", "platform", "bp"))
    for path in (app, layers, platform):
        path.mkdir()
    for name in ("detect", "build"):
        _write(bp / "bin" / name, "#!/bin/sh\n")
        (bp / "bin" / name).chmod(0o755)
    workspace = Workspace(app, layers, platform, {DESCRIPTOR.ref: bp})
    return BuildpackExecutor(FakeRunner(handle), workspace, host_target())


def _phases(seen: list[str]) -> TrialPhases:
    return TrialPhases(phase=lambda name: seen.append(f"=== {name}"), output=seen.append, info=seen.append)


def test_report_lists_layers_processes_and_the_env_they_give(tmp_path: Path) -> None:
    seen: list[str] = []
    executor = _executor(tmp_path)
    executor.output = seen.append
    report = run_trial(DESCRIPTOR, executor, _phases(seen))

    assert seen[:3] == ["=== DETECTING", "detect says hi", "acme/tools@1.0 passed"]
    assert "=== BUILDING" in seen and "build says hi" in seen
    assert report.plan == ("tools",)
    assert [(layer.name, layer.types.launch, layer.types.build) for layer in report.layers] == [
        ("run", True, False),
        ("scratch", False, False),
        ("sdk", False, True),
    ]
    run, scratch, _ = report.layers
    assert run.metadata == {"sha": "abc"} and run.size == len("#!/bin/sh\n") + len("production")
    assert scratch.size is None  # BLD-4: a layer with no type is hidden (<name>.ignore)
    assert [(p.type, p.command) for p in report.processes] == [("web", ("serve",))]
    assert report.default_process == "web"
    assert report.launch_env == (
        EnvOperation("PATH", EnvOp.PREPEND, "/layers/acme_tools/run/bin", ":"),
        EnvOperation("MODE", EnvOp.DEFAULT, "production"),
    )
    assert report.build_env == (EnvOperation("SDK_HOME", EnvOp.OVERRIDE, "/opt/sdk"),)


def test_report_as_json_is_plain_data(tmp_path: Path) -> None:
    report = run_trial(DESCRIPTOR, _executor(tmp_path), _phases([]))
    data = report.as_json()

    assert data["buildpack"] == {"id": "acme/tools", "version": "1.0", "api": "0.12"}
    assert data["processes"] == [{"type": "web", "command": ["serve"], "args": [], "default": True}]
    assert data["launch_env"][0] == {
        "name": "PATH",
        "op": "prepend",
        "value": "/layers/acme_tools/run/bin",
        "delim": ":",
    }
    assert data["layers"][0]["types"] == {"launch": True, "build": False, "cache": False}


@pytest.mark.parametrize(
    ("detect_code", "exit_code", "text"), [(100, 20, "stepped aside"), (7, 21, "exited with 7")]
)
def test_detect_that_fails_or_errors_keeps_the_cnb_exit_code(
    tmp_path: Path, detect_code: int, exit_code: int, text: str
) -> None:
    with pytest.raises(DetectFailed) as caught:
        run_trial(DESCRIPTOR, _executor(tmp_path, detect_code=detect_code), _phases([]))

    assert caught.value.exit_code == exit_code
    assert text in str(caught.value)


def test_build_that_fails_exits_51(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed) as caught:
        run_trial(DESCRIPTOR, _executor(tmp_path, build_code=1), _phases([]))

    assert caught.value.exit_code == 51


def test_layer_reports_skip_launch_build_and_store_toml(tmp_path: Path) -> None:
    for name in ("launch", "build", "store"):
        _write(tmp_path / f"{name}.toml", "")
    _write(tmp_path / "kept.toml", "[types]\nlaunch = true\n")

    (report,) = layer_reports(tmp_path)
    assert report.name == "kept" and report.size is None  # no dir: reused from the previous image (EXP-3)


def test_host_target_is_this_machine() -> None:
    target = host_target()

    assert target.os == "linux"
    assert target.arch in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
