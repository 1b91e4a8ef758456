"""The plan model's launch rules: LCH-2 exec env, LCH-3 args, BLD-10 process checks, shell-safe env."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lifecycle.errors import ExitCode
from lifecycle.launcher import EnvOp, LaunchLayer, LaunchPlan, LaunchPlanError, Process, env_op_problem
from lifecycle.launcher.plan import by_buildpack

MakeProcess = Callable[..., Process]


@pytest.mark.parametrize(
    ("api", "replace"),
    [("0.7", False), ("0.8", False), ("0.9", True), ("0.10", True), ("0.12", True), ("1.0", True)],
)
def test_user_args_replace_args_from_buildpack_api_0_9(
    make_process: MakeProcess, api: str, replace: bool
) -> None:
    # LCH-3; "0.10" must compare as a number, not as a string below "0.9"
    assert make_process(buildpack_api=api).user_args_replace is replace


def test_unparsable_buildpack_api_fails_with_exit_12(make_process: MakeProcess) -> None:
    with pytest.raises(LaunchPlanError) as caught:
        LaunchPlan(processes=(make_process(buildpack_api="latest"),))
    assert caught.value.exit_code == ExitCode.BUILDPACK_API


def test_shell_process_from_buildpack_api_0_9_is_rejected(make_process: MakeProcess) -> None:
    # §1: from 0.9 `direct` is an error, every process is direct
    with pytest.raises(LaunchPlanError, match="direct=false"):
        LaunchPlan(processes=(make_process(direct=False, buildpack_api="0.9"),))
    LaunchPlan(processes=(make_process(direct=False, buildpack_api="0.8"),))


@pytest.mark.parametrize("bad_type", ["", "we b", "a/b", "web$", "wéb"])
def test_process_type_outside_bld_10_charset_is_rejected(make_process: MakeProcess, bad_type: str) -> None:
    with pytest.raises(LaunchPlanError, match="process type"):
        LaunchPlan(processes=(make_process(bad_type),))


def test_duplicate_types_and_two_defaults_are_rejected(make_process: MakeProcess) -> None:
    with pytest.raises(LaunchPlanError, match="not unique"):
        LaunchPlan(processes=(make_process("web"), make_process("web")))
    with pytest.raises(LaunchPlanError, match="more than one default"):
        LaunchPlan(processes=(make_process("a", default=True), make_process("b", default=True)))


def test_empty_command_and_nul_in_args_are_rejected(make_process: MakeProcess) -> None:
    with pytest.raises(LaunchPlanError, match="command is empty"):
        LaunchPlan(processes=(make_process("web", ""),))
    with pytest.raises(LaunchPlanError, match="NUL"):
        LaunchPlan(processes=(make_process(args=("a\0b",)),))


def test_exec_env_names_are_checked(make_process: MakeProcess) -> None:
    with pytest.raises(LaunchPlanError, match="exec-env"):
        LaunchPlan(processes=(make_process(exec_env=("prod uction",)),))


@pytest.mark.parametrize(
    ("exec_env", "eligible"),
    [
        (None, True),
        (("*",), True),
        (("production",), True),
        (("test", "production"), True),
        (("test",), False),
        ((), False),
    ],
)
def test_exec_env_eligibility_lch_2(
    make_process: MakeProcess, exec_env: tuple[str, ...] | None, eligible: bool
) -> None:
    assert make_process(exec_env=exec_env).eligible("production") is eligible


def test_default_process_and_lookup(make_process: MakeProcess) -> None:
    plan = LaunchPlan(processes=(make_process("worker"), make_process("web", default=True)))
    assert plan.default_process is not None and plan.default_process.type == "web"
    assert plan.process("worker") is plan.processes[0]
    assert plan.process("nope") is None
    assert LaunchPlan(processes=(make_process("worker"),)).default_process is None


@pytest.mark.parametrize("name", ["FOO-BAR", "1X", "", "A.B", "_cnb_type", "É"])
def test_names_a_shell_cannot_hold_are_reported(name: str) -> None:
    assert env_op_problem(EnvOp(name=name, action="override", value="v")) is not None


def test_nul_bytes_are_reported_and_ordinary_ops_pass() -> None:
    assert env_op_problem(EnvOp(name="A", action="override", value="a\0b")) is not None
    assert env_op_problem(EnvOp(name="A", action="prepend", value="a", delim="\0")) is not None
    assert env_op_problem(EnvOp(name="_A1", action="override", value="'\n$x\"`")) is None


def test_layers_group_by_consecutive_buildpack_lch_5() -> None:
    layers = [
        LaunchLayer(buildpack_id=bp, name=n, path=f"/layers/{bp}/{n}")
        for bp, n in [("a", "a"), ("a", "b"), ("b", "a"), ("c", "a")]
    ]
    groups = [[layer.name for layer in group] for group in by_buildpack(layers)]
    assert groups == [["a", "b"], ["a"], ["a"]]
