"""Flags, then CNB_* env, then defaults (GEN-2); the Platform API rules (GEN-1, §1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import ConfigError, ExitCode
from lifecycle.platform.phase_inputs import parse_phase_args

API = {"CNB_PLATFORM_API": "0.15"}


def test_defaults_follow_the_spec() -> None:
    inputs = parse_phase_args("detector", [], API)
    assert inputs.app_dir == Path("/workspace")
    assert inputs.layers_dir == Path("/layers")
    assert inputs.platform_dir == Path("/platform")
    assert inputs.buildpacks_dir == Path("/cnb/buildpacks")
    assert inputs.order_path == Path("/cnb/order.toml")
    assert inputs.group_path == Path("/layers/group.toml")
    assert inputs.plan_path == Path("/layers/plan.toml")
    assert inputs.analyzed_path == Path("/layers/analyzed.toml")
    assert inputs.system_path == Path("/cnb/system.toml")
    assert inputs.run_path == Path("/cnb/run.toml")


def test_layers_order_toml_wins_when_present(tmp_path: Path) -> None:
    (tmp_path / "order.toml").write_text("")
    assert parse_phase_args("detector", ["-layers", str(tmp_path)], API).order_path == tmp_path / "order.toml"


@pytest.mark.parametrize("form", [["-layers", "/f"], ["-layers=/f"], ["--layers", "/f"], ["--layers=/f"]])
def test_flag_spellings(form: list[str]) -> None:
    inputs = parse_phase_args("detector", form, {**API, "CNB_LAYERS_DIR": "/env"})
    assert inputs.layers_dir == Path("/f")
    assert inputs.group_path == Path("/f/group.toml")


def test_env_beats_default_and_flag_beats_env() -> None:
    env = {**API, "CNB_APP_DIR": "/env-app", "CNB_GROUP_PATH": "/env/g.toml"}
    inputs = parse_phase_args("builder", ["-group", "/flag/g.toml"], env)
    assert inputs.app_dir == Path("/env-app")
    assert inputs.group_path == Path("/flag/g.toml")


def test_bool_flags_do_not_take_the_next_argument() -> None:
    inputs = parse_phase_args("exporter", ["-daemon", "my/app", "extra:tag"], API)
    assert inputs.daemon and inputs.images == ("my/app", "extra:tag")
    assert not parse_phase_args("exporter", ["-daemon=false", "x"], {**API, "CNB_USE_DAEMON": "true"}).daemon
    assert parse_phase_args("rebaser", ["x"], {**API, "CNB_FORCE_REBASE": "1"}).force


def test_uid_gid_from_env_and_flags() -> None:
    inputs = parse_phase_args("exporter", ["-uid", "2000", "x"], {**API, "CNB_GROUP_ID": "3000"})
    assert (inputs.uid, inputs.gid) == (2000, 3000)


@pytest.mark.parametrize("api", [None, "", "0.11", "0.16", "1.0", "x"])
def test_platform_api_outside_0_12_to_0_15_exits_11(api: str | None) -> None:
    env = {} if api is None else {"CNB_PLATFORM_API": api}
    with pytest.raises(ConfigError) as caught:
        parse_phase_args("detector", [], env)
    assert caught.value.exit_code == ExitCode.PLATFORM_API


def test_platform_api_features_decided_once() -> None:
    old = parse_phase_args("detector", [], {"CNB_PLATFORM_API": "0.13", "CNB_EXEC_ENV": "test"})
    assert old.system_path is None and old.exec_env == "production" and not old.launch_cache_without_image
    new = parse_phase_args("detector", [], {**API, "CNB_EXEC_ENV": "test"})
    assert new.exec_env == "test" and new.launch_cache_without_image


def test_flag_of_another_phase_is_a_bad_argument() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_phase_args("detector", ["-run-image", "x"], API)
    assert caught.value.exit_code == ExitCode.BAD_ARGS


def test_log_level_is_one_of_four_and_flag_beats_env() -> None:
    assert parse_phase_args("detector", [], API).log_level == "info"
    env = {**API, "CNB_LOG_LEVEL": "warn"}
    assert parse_phase_args("detector", [], env).log_level == "warn"
    assert parse_phase_args("detector", ["-log-level", "DEBUG"], env).log_level == "debug"
    with pytest.raises(ConfigError, match="'verbose' is not one of debug, info, warn, error") as bad:
        parse_phase_args("detector", ["-log-level=verbose"], API)
    assert bad.value.exit_code == ExitCode.BAD_ARGS


def test_insecure_registry_repeats_and_replaces_the_env_list() -> None:
    env = {**API, "CNB_INSECURE_REGISTRIES": "a.test, b.test:5000,"}
    assert parse_phase_args("analyzer", ["x"], env).insecure_registries == ("a.test", "b.test:5000")
    flags = ["-insecure-registry", "c.test", "--insecure-registry=d.test", "x"]
    assert parse_phase_args("analyzer", flags, env).insecure_registries == ("c.test", "d.test")


def test_layout_needs_a_layout_dir() -> None:
    with pytest.raises(ConfigError, match="-layout-dir") as bad:
        parse_phase_args("analyzer", ["-layout", "x"], API)
    assert bad.value.exit_code == ExitCode.BAD_ARGS
    inputs = parse_phase_args("exporter", ["x"], {**API, "CNB_USE_LAYOUT": "true", "CNB_LAYOUT_DIR": "/l"})
    assert inputs.layout and inputs.layout_dir == Path("/l")
