"""bake and launch_env: the launch rules evaluated in Python (LCH-2..LCH-5, LCH-8, BLD-7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lifecycle.launcher import (
    EnvOp,
    LaunchLayer,
    LaunchPlan,
    LaunchPlanError,
    LayerScript,
    Process,
    apply_env_op,
    bake,
    launch_env,
)

MakeProcess = Callable[..., Process]


def _op(name: str, action: str, value: str, delim: str = "", process_type: str | None = None) -> EnvOp:
    return EnvOp(name=name, action=action, value=value, delim=delim, process_type=process_type)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "op", "result"),
    [
        ({"A": "old"}, _op("A", "override", "new"), "new"),
        ({}, _op("A", "default", "d"), "d"),
        ({"A": ""}, _op("A", "default", "d"), "d"),
        ({"A": "set"}, _op("A", "default", "d"), "set"),
        ({"A": "old"}, _op("A", "prepend", "new", ":"), "new:old"),
        ({"A": "old"}, _op("A", "append", "new", ":"), "old:new"),
        ({"A": "old"}, _op("A", "prepend", "new"), "newold"),  # no .delim, no separator
        ({"A": "old"}, _op("A", "append", "new", " -- "), "old -- new"),
        ({}, _op("A", "prepend", "new", ":"), "new"),  # no dangling delimiter
        ({"A": ""}, _op("A", "append", "new", ":"), "new"),
    ],
)
def test_env_actions_follow_bld_7(start: dict[str, str], op: EnvOp, result: str) -> None:
    env = dict(start)
    apply_env_op(env, op)
    assert env == {"A": result}


def test_start_env_drops_launcher_inputs_and_cnb_path_entries_lch_4() -> None:
    run_env = {
        "CNB_LAYERS_DIR": "/layers",
        "CNB_APP_DIR": "/workspace",
        "CNB_PROCESS_TYPE": "web",
        "CNB_PLATFORM_API": "0.15",
        "CNB_DEPRECATION_MODE": "quiet",
        "CNB_EXEC_ENV": "production",
        "PATH": "/cnb/process:/cnb/lifecycle:/usr/bin::/bin",
        "HOME": "/home/cnb",
    }
    assert launch_env(LaunchPlan(), run_env, None) == {
        "CNB_EXEC_ENV": "production",
        "PATH": "/usr/bin::/bin",
        "HOME": "/home/cnb",
    }


def _layer(bp: str, name: str, *env: EnvOp, bin_: bool = True) -> LaunchLayer:
    return LaunchLayer(
        buildpack_id=bp, name=name, path=f"/l/{bp}/{name}", has_bin=bin_, has_lib=bin_, env=env
    )


def test_a_buildpacks_bins_come_before_its_env_files_lch_5() -> None:
    plan = LaunchPlan(
        layers=(
            _layer("a", "one", _op("PATH", "prepend", "/a-one-env", ":")),
            _layer("a", "two"),
            _layer("b", "one", _op("PATH", "append", "/b-one-env", ":")),
        )
    )
    env = launch_env(plan, {"PATH": "/bin"}, None)
    assert env["PATH"] == "/l/b/one/bin:/a-one-env:/l/a/two/bin:/l/a/one/bin:/bin:/b-one-env"
    assert env["LD_LIBRARY_PATH"] == "/l/b/one/lib:/l/a/two/lib:/l/a/one/lib"


def test_env_launch_type_dirs_apply_only_to_their_process() -> None:
    plan = LaunchPlan(
        layers=(_layer("a", "l", _op("X", "override", "all"), _op("X", "override", "web", "", "web")),)
    )
    assert launch_env(plan, {}, "web")["X"] == "web"
    assert launch_env(plan, {}, "worker")["X"] == "all"
    assert launch_env(plan, {}, None)["X"] == "all"


def test_env_names_a_shell_cannot_hold_are_skipped_here_too() -> None:
    plan = LaunchPlan(layers=(_layer("a", "l", _op("BAD-NAME", "override", "x"), bin_=False),))
    assert launch_env(plan, {}, None) == {}


@pytest.mark.parametrize(
    ("api", "entrypoint", "cmd"),
    [("0.12", ("node", "-r", "x"), ("server.js",)), ("0.8", ("node", "-r", "x", "server.js"), ())],
)
def test_args_go_to_cmd_only_where_user_args_replace_them_lch_3(
    make_process: MakeProcess, api: str, entrypoint: tuple[str, ...], cmd: tuple[str, ...]
) -> None:
    plan = LaunchPlan(
        processes=(make_process("web", "node", "-r", "x", args=("server.js",), buildpack_api=api),)
    )
    baked = bake(plan, {}, "web")
    assert (baked.entrypoint, baked.cmd, baked.argv) == (entrypoint, cmd, entrypoint + cmd)


def test_bake_uses_the_default_process_and_its_working_dir_lch_8(make_process: MakeProcess) -> None:
    plan = LaunchPlan(
        processes=(
            make_process("web", default=True, working_dir="sub"),
            make_process("abs", working_dir="/srv"),
            make_process("plain"),
        )
    )
    assert bake(plan, {}, app_dir="/app").working_dir == "/app/sub"
    assert bake(plan, {}, "abs").working_dir == "/srv"
    assert bake(plan, {}, "plain").working_dir == "/workspace"


def test_bake_env_and_skipped_exec_d(make_process: MakeProcess) -> None:
    layer = LaunchLayer(
        buildpack_id="a",
        name="l",
        path="/layers/a/l",
        has_bin=True,
        env=(_op("B", "override", "2"),),
        exec_d=(
            LayerScript(path="/x/all"),
            LayerScript(path="/x/web", process_type="web"),
            LayerScript(path="/x/o", process_type="o"),
        ),
    )
    baked = bake(
        LaunchPlan(processes=(make_process("web"),), layers=(layer,)), {"PATH": "/bin", "A": "1"}, "web"
    )
    assert baked.config_env() == ["A=1", "B=2", "PATH=/layers/a/l/bin:/bin"]
    assert baked.skipped == ("/x/all", "/x/web")


def test_bake_refuses_what_needs_a_shell_or_is_missing(make_process: MakeProcess) -> None:
    plan = LaunchPlan(
        processes=(
            make_process("sh", "echo hi", direct=False, buildpack_api="0.8"),
            make_process("t", exec_env=("test",)),
        )
    )
    with pytest.raises(LaunchPlanError, match="needs a shell"):
        bake(plan, {}, "sh")
    with pytest.raises(LaunchPlanError, match="exec env 'production'"):
        bake(plan, {}, "t")
    assert bake(plan, {}, "t", exec_env="test").entrypoint == ("/bin/true",)
    with pytest.raises(LaunchPlanError, match="has no default process"):
        bake(plan, {})
    with pytest.raises(LaunchPlanError, match="process type 'nope'"):
        bake(plan, {}, "nope")
