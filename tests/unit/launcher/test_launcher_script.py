"""launcher.sh on this host's dash, busybox ash and bash --posix, against the Python rules.

The plan points at host paths, so no sandbox is needed: these check that the shell applies
env ops exactly as `launch_env` does (LCH-4, LCH-5, BLD-7, verbatim values) and that it
parses exec.d output as TOML (LCH-6). End-to-end launches live in
tests/integration/test_launcher_bwrap.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tools import unavailable

from lifecycle.launcher import (
    PLAN_PATH,
    EnvOp,
    LaunchLayer,
    LaunchPlan,
    LayerScript,
    Process,
    launch_env,
    launcher_script,
    render_plan,
)

SHELLS = [
    pytest.param(["dash"], id="dash"),
    pytest.param(["busybox", "sh"], id="busybox"),
    pytest.param(["bash", "--posix"], id="bash"),
]
SHELL_NOISE = {"PWD", "OLDPWD", "SHLVL", "_"}
DUMP_ENV = (sys.executable, "-c", "import json, os, sys; sys.stdout.write(json.dumps(dict(os.environ)))")
BASE_ENV = {"CNB_PLATFORM_API": "0.15", "CNB_DEPRECATION_MODE": "quiet", "PYTHONCOERCECLOCALE": "0"}


def _require(shell: list[str]) -> list[str]:
    """The shell command with an absolute path, since PATH is part of what the tests vary."""
    path = shutil.which(shell[0])
    if path is None:
        unavailable(f"{shell[0]} is not installed: apt-get install {shell[0]}")
    return [path, *shell[1:]]


def _launch(
    root: Path, plan: LaunchPlan, shell: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Runs /cnb/process/web of a plan laid out under `root`, returning its captured output."""
    plan_file = root / "layers" / PLAN_PATH
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    plan_file.write_bytes(render_plan(plan))
    (root / "app").mkdir(exist_ok=True)
    launcher = root / "launcher"
    launcher.write_bytes(launcher_script())
    process_link = root / "process" / "web"
    process_link.parent.mkdir(exist_ok=True)
    process_link.unlink(missing_ok=True)
    process_link.symlink_to(launcher)
    full_env = {**BASE_ENV, "CNB_LAYERS_DIR": str(root / "layers"), "CNB_APP_DIR": str(root / "app"), **env}
    return subprocess.run(
        [*shell, str(process_link)], env=full_env, capture_output=True, text=True, check=False
    )


def _web(*layers: LaunchLayer) -> LaunchPlan:
    web = Process(type="web", command=DUMP_ENV[:1], args=DUMP_ENV[1:], buildpack_id="a", buildpack_api="0.12")
    return LaunchPlan(processes=(web,), layers=layers)


def _env_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return {k: v for k, v in json.loads(result.stdout).items() if k not in SHELL_NOISE}


values = st.one_of(
    st.sampled_from(
        ["it's", "'\\''", "a\nb\n", "$(exit 1)", "`false`", "\\n", '"', "", "*", "$PATH", "\udcff"]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=8),
)
env_ops = st.builds(
    EnvOp,
    name=st.sampled_from(["PATH", "LD_LIBRARY_PATH", "A", "B"]),
    action=st.sampled_from(["override", "default", "prepend", "append"]),
    value=values,
    delim=st.sampled_from(["", ":", "'", "\n"]),
    process_type=st.sampled_from([None, "web", "worker"]),
)
layer_lists = st.lists(
    st.builds(
        LaunchLayer,
        buildpack_id=st.sampled_from(["a", "b"]),
        name=st.sampled_from(["x", "y"]),
        path=st.sampled_from(["/l/x", "/l/it's", "/l/$HOME"]),
        has_bin=st.booleans(),
        has_lib=st.booleans(),
        env=st.lists(env_ops, max_size=4).map(tuple),
    ),
    max_size=3,
    unique_by=lambda layer: (layer.buildpack_id, layer.name),
)
run_envs = st.fixed_dictionaries(
    {"PATH": st.sampled_from(["/usr/bin:/bin", "/cnb/process:/cnb/lifecycle:/usr/bin", ":/bin", ""])},
    optional={"A": values, "B": st.just("")},
)


@pytest.mark.parametrize("shell", SHELLS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=layer_lists, run_env=run_envs)
def test_shell_env_equals_launch_env(
    shell: list[str], layers: list[LaunchLayer], run_env: dict[str, str]
) -> None:
    shell = _require(shell)
    plan = _web(*sorted(layers, key=lambda layer: (layer.buildpack_id, layer.name)))
    with tempfile.TemporaryDirectory() as root:
        result = _launch(Path(root), plan, shell, run_env)
    expected = launch_env(plan, {**BASE_ENV, **run_env, "CNB_PROCESS_TYPE": "x"}, "web")
    assert _env_of(result) == expected


def _exec_d_output(tmp_path: Path, shell: list[str], toml: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "exec.d" / "out"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\nprintf '%s' \"$TOML_OUT\" >&3\n")
    script.chmod(0o755)
    layer = LaunchLayer(buildpack_id="a", name="l", path="/l", exec_d=(LayerScript(path=str(script)),))
    return _launch(tmp_path, _web(layer), shell, {"TOML_OUT": toml})


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('A = "x"', {"A": "x"}),
        ('A="x"', {"A": "x"}),
        ('\t A  =\t"x y"  # comment', {"A": "x y"}),
        ("A = 'lit\\n\"$X'", {"A": 'lit\\n"$X'}),
        (r'A = "q\"b\\s\nn\tt"', {"A": 'q"b\\s\nn\tt'}),
        (r'A = "\u00e9\U0001F600\b\f\r"', {"A": "é😀\b\f\r"}),
        ('"A" = "quoted key"', {"A": "quoted key"}),
        ('A = ""', {"A": ""}),
        ("# only a comment\n\n  \nA = 'a' \r\nB = \"b\"\r\n", {"A": "a", "B": "b"}),
        ('A = "first"\nA = "second"', {"A": "second"}),
        ('"A-B" = "not a shell name"', {}),
    ],
)
def test_exec_d_toml_output_is_exported_lch_6(
    tmp_path: Path, shell: list[str], toml: str, expected: dict[str, str]
) -> None:
    shell = _require(shell)
    env = _env_of(_exec_d_output(tmp_path, shell, toml))
    assert {k: v for k, v in env.items() if k in ("A", "B", "A-B")} == expected


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "toml",
    [
        "A = x",
        'A = """x"""',
        'A = "open',
        r'A = "\q"',
        'A.B = "x"',
        'A = "x" y',
        r'A = "\u0000"',
        r'A = "\uD800"',
    ],
)
def test_exec_d_output_that_is_not_key_string_fails_the_launch(
    tmp_path: Path, shell: list[str], toml: str
) -> None:
    shell = _require(shell)
    result = _exec_d_output(tmp_path, shell, toml)
    assert (result.returncode, result.stdout) == (82, "")
    assert result.stderr.startswith("ERROR: failed to launch: exec.d ")


def test_launcher_script_is_package_data_with_a_sh_shebang() -> None:
    script = launcher_script()
    assert script.startswith(b"#!/bin/sh\n")
    assert os.fsencode("cnb_plan()") in script
