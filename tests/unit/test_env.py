"""Env-file rules (BLD-6..9, LCH-5) and pack-style env input."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from lifecycle.env import (
    BUILD_ALLOWED_VARS,
    Env,
    EnvOp,
    EnvOperation,
    build_layer_operations,
    filter_platform_env,
    launch_operations,
    layer_path_operations,
    parse_env_assignment,
    parse_env_file,
    read_env_dir,
    read_env_file,
    read_user_env,
    user_env_operations,
)
from lifecycle.errors import ConfigError


def write_files(directory: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode())
    return directory


def test_bld7_name_is_up_to_first_dot_and_suffix_picks_the_op(tmp_path: Path) -> None:
    env_dir = write_files(
        tmp_path / "env",
        {"A": "1", "B.override": "2", "C.default": "3", "D.prepend": "4", "E.append": "5", "F.G.append": "6"},
    )
    assert [(op.name, op.op) for op in read_env_dir(env_dir)] == [
        ("A", EnvOp.OVERRIDE),
        ("B", EnvOp.OVERRIDE),
        ("C", EnvOp.DEFAULT),
        ("D", EnvOp.PREPEND),
        ("E", EnvOp.APPEND),
    ]


def test_bld7_values_are_verbatim_with_no_trimming(tmp_path: Path) -> None:
    env_dir = write_files(tmp_path / "env", {"A": "  spaced value\n", "B": "crlf\r\n"})
    assert [op.value for op in read_env_dir(env_dir)] == ["  spaced value\n", "crlf\r\n"]


def test_bld7_delim_applies_within_its_own_dir_only(tmp_path: Path) -> None:
    write_files(
        tmp_path / "layer", {"env/PATH.prepend": "/a", "env/PATH.delim": ":", "env.build/PATH.append": "/b"}
    )
    assert read_env_dir(tmp_path / "layer" / "env") == [EnvOperation("PATH", EnvOp.PREPEND, "/a", ":")]
    assert read_env_dir(tmp_path / "layer" / "env.build") == [EnvOperation("PATH", EnvOp.APPEND, "/b", None)]


def test_bld7_unknown_suffixes_nameless_files_subdirs_and_missing_dirs_give_nothing(tmp_path: Path) -> None:
    env_dir = write_files(tmp_path / "env", {"A.weird": "x", "sub/B": "y", "C.delim": ",", ".override": "z"})
    assert read_env_dir(env_dir) == []
    assert read_env_dir(tmp_path / "absent") == []


def test_bld8_operator_env_without_suffix_means_default(tmp_path: Path) -> None:
    env_dir = write_files(tmp_path / "env", {"JAVA_OPTS": "-Xmx1g"})
    assert read_env_dir(env_dir, no_suffix=EnvOp.DEFAULT) == [
        EnvOperation("JAVA_OPTS", EnvOp.DEFAULT, "-Xmx1g")
    ]


@pytest.mark.parametrize(
    ("current", "operation", "expected"),
    [
        (None, EnvOperation("V", EnvOp.OVERRIDE, "new"), "new"),
        ("old", EnvOperation("V", EnvOp.OVERRIDE, "new"), "new"),
        ("old", EnvOperation("V", EnvOp.DEFAULT, "new"), "old"),
        ("", EnvOperation("V", EnvOp.DEFAULT, "new"), "new"),
        (None, EnvOperation("V", EnvOp.DEFAULT, "new"), "new"),
        ("old", EnvOperation("V", EnvOp.PREPEND, "new", ":"), "new:old"),
        ("old", EnvOperation("V", EnvOp.APPEND, "new", ":"), "old:new"),
        ("old", EnvOperation("V", EnvOp.PREPEND, "new"), "newold"),
        ("old", EnvOperation("V", EnvOp.APPEND, "new"), "oldnew"),
        (None, EnvOperation("V", EnvOp.PREPEND, "new", ":"), "new"),
        ("", EnvOperation("V", EnvOp.APPEND, "new", ":"), "new"),
    ],
)
def test_bld7_each_op_against_the_current_value(
    current: str | None, operation: EnvOperation, expected: str
) -> None:
    env = Env({} if current is None else {"V": current})
    assert env.apply([operation])["V"] == expected


def test_env_is_immutable_and_apply_returns_a_new_one() -> None:
    env = Env({"A": "1"})
    changed = env.apply([EnvOperation("A", EnvOp.OVERRIDE, "2"), EnvOperation("B", EnvOp.APPEND, "x")])
    assert dict(env) == {"A": "1"}
    assert changed.to_dict() == {"A": "2", "B": "x"}
    assert len(changed) == 2 and "B" in changed


def test_bld6_build_layer_prepends_its_dirs_then_env_then_env_build(tmp_path: Path) -> None:
    layer = write_files(tmp_path / "runtime", {"env/PATH.prepend": "/env-first", "env/PATH.delim": ":"})
    for subdir in ("bin", "lib", "include", "pkgconfig"):
        (layer / subdir).mkdir()
    write_files(layer, {"env.build/PATH.prepend": "/build-first", "env.build/PATH.delim": ":"})
    shown = PurePosixPath("/layers/acme_node/runtime")
    env = Env({"PATH": "/usr/bin"}).apply(build_layer_operations(layer, visible_as=shown))
    assert env["PATH"] == f"/build-first:/env-first:{shown}/bin{os.pathsep}/usr/bin"
    assert env["LD_LIBRARY_PATH"] == env["LIBRARY_PATH"] == f"{shown}/lib"
    assert (env["CPATH"], env["PKG_CONFIG_PATH"]) == (f"{shown}/include", f"{shown}/pkgconfig")


def test_bld6_absent_dirs_add_nothing_and_values_default_to_the_host_path(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    assert layer_path_operations(tmp_path, "build") == [
        EnvOperation("PATH", EnvOp.PREPEND, str(tmp_path / "bin"), os.pathsep)
    ]


def test_lch5_launch_adds_only_bin_and_ld_library_path(tmp_path: Path) -> None:
    for subdir in ("bin", "lib", "include", "pkgconfig"):
        (tmp_path / subdir).mkdir()
    assert [op.name for op in layer_path_operations(tmp_path, "launch")] == ["PATH", "LD_LIBRARY_PATH"]


def test_lch5_all_layer_dirs_first_then_env_files_layer_by_layer_with_process_type(tmp_path: Path) -> None:
    buildpack_dir = tmp_path / "acme_node"
    write_files(
        buildpack_dir / "b-layer", {"env/ORDER.append": "b-env,", "env.launch/web/ORDER.append": "b-web,"}
    )
    write_files(buildpack_dir / "a-layer", {"env.launch/ORDER.append": "a-launch,", "env.build/ORDER": "no"})
    write_files(buildpack_dir / "a-layer", {"env.launch/worker/ORDER.append": "a-worker,"})
    (buildpack_dir / "b-layer" / "bin").mkdir()
    (buildpack_dir / "a-layer" / "bin").mkdir()
    shown = PurePosixPath("/layers/acme_node")
    operations = launch_operations(buildpack_dir, ["b-layer", "a-layer"], "web", visible_as=shown)
    assert [(op.name, op.value) for op in operations] == [
        ("PATH", f"{shown}/a-layer/bin"),
        ("PATH", f"{shown}/b-layer/bin"),
        ("ORDER", "a-launch,"),
        ("ORDER", "b-env,"),
        ("ORDER", "b-web,"),
    ]


def test_bld9_only_allow_listed_platform_vars_reach_buildpacks() -> None:
    environ = {
        "PATH": "/bin",
        "HOME": "/root",
        "https_proxy": "p",
        "SECRET_TOKEN": "x",
        "CNB_PLATFORM_API": "0.15",
    }
    assert filter_platform_env(environ).to_dict() == {"PATH": "/bin", "HOME": "/root", "https_proxy": "p"}
    assert {"HTTP_PROXY", "no_proxy", "CNB_STACK_ID", "PKG_CONFIG_PATH"} <= BUILD_ALLOWED_VARS


def test_bld8_user_env_files_are_read_verbatim(tmp_path: Path) -> None:
    write_files(tmp_path, {"env/BP_NODE_VERSION": "20\n", "env/sub/IGNORED": "x"})
    assert read_user_env(tmp_path) == {"BP_NODE_VERSION": "20\n"}
    assert read_user_env(tmp_path / "absent") == {}


def test_bld8_user_path_vars_are_prepended_others_override() -> None:
    env = Env({"PATH": "/usr/bin", "BP_X": "old"}).apply(
        user_env_operations({"PATH": "/opt/bin", "BP_X": "new"})
    )
    assert env.to_dict() == {"PATH": f"/opt/bin{os.pathsep}/usr/bin", "BP_X": "new"}


def test_env_file_is_parsed_like_pack() -> None:
    text = "# comment\n\nA=1\n  B = two  \nC=x=y\nHOME\nUNSET\nD=\n"
    assert parse_env_file(text, {"HOME": "/home/me"}) == {
        "A": "1",
        "B ": " two",
        "C": "x=y",
        "HOME": "/home/me",
        "UNSET": "",
        "D": "",
    }


def test_env_file_line_without_name_is_an_error_naming_the_line() -> None:
    with pytest.raises(ConfigError, match=r'build\.env line 2: "=oops" has no variable name'):
        parse_env_file("A=1\n=oops\n", {}, source="build.env")


def test_env_flag_takes_value_or_current_environment() -> None:
    assert parse_env_assignment("KEY=a=b", {}) == ("KEY", "a=b")
    assert parse_env_assignment("KEY", {"KEY": "from-env"}) == ("KEY", "from-env")


def test_read_env_file_reports_a_missing_file_as_config_error(tmp_path: Path) -> None:
    assert read_env_file(write_files(tmp_path, {"e": "A=1"}) / "e", {}) == {"A": "1"}
    with pytest.raises(ConfigError, match="check the --env-file path"):
        read_env_file(tmp_path / "missing", {})
