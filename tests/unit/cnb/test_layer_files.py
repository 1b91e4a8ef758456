"""`<layer>.toml` (BLD-3), launch.toml (BLD-10), store.toml and config/metadata.toml (BLD-14)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import (
    ConfigMetadata,
    GroupElement,
    Label,
    LayerToml,
    LayerTypes,
    MetadataProcess,
    Slice,
    load_config_metadata,
    load_launch_toml,
    load_layer_toml,
    load_store_toml,
    write_toml,
)
from lifecycle.errors import ConfigError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bld3_types_default_to_false_and_metadata_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "runtime.toml", '[types]\nlaunch = true\n[metadata]\nversion = "20"\n')
    layer = load_layer_toml(path)
    assert layer.types == LayerTypes(launch=True, build=False, cache=False)
    assert layer.metadata == {"version": "20"}


def test_bld3_flags_at_top_level_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "runtime.toml", "launch = true\ncache = true\n")
    with pytest.raises(ConfigError) as caught:
        load_layer_toml(path)
    assert (
        str(caught.value.cause)
        == f"{path}: launch, cache must be under [types] (move them into a [types] table)"
    )


def test_res2_layer_toml_with_metadata_only_is_written_without_types(tmp_path: Path) -> None:
    path = tmp_path / "runtime.toml"
    write_toml(path, LayerToml(metadata={"b": 1, "a": {"y": 2, "x": 1}}))
    # No [types]: restored metadata must not claim types (RES-2); keys sorted for stable bytes.
    assert path.read_text() == "[metadata]\nb = 1\n\n[metadata.a]\nx = 1\ny = 2\n"


LEGACY_LAUNCH = """
[[processes]]
type = "web"
command = "node server.js"
args = ["--port", "8080"]
direct = false
default = true
working-dir = "/workspace/app"

[[labels]]
key = "team"
value = "core"

[[slices]]
paths = ["public/*"]
"""


def test_bld10_api_below_0_9_has_string_command_and_direct(tmp_path: Path) -> None:
    launch = load_launch_toml(write(tmp_path, "launch.toml", LEGACY_LAUNCH), ApiVersion(0, 8))
    (web,) = launch.processes
    assert (web.command, web.args, web.direct, web.default) == (
        ("node server.js",),
        ("--port", "8080"),
        False,
        True,
    )
    assert web.working_dir == "/workspace/app"
    assert launch.labels == (Label(key="team", value="core"),)
    assert launch.slices == (Slice(paths=("public/*",)),)


def test_bld10_api_0_9_needs_an_array_command(tmp_path: Path) -> None:
    path = write(tmp_path, "launch.toml", '[[processes]]\ntype = "web"\ncommand = "node"\n')
    with pytest.raises(ConfigError, match=r"processes\[0\].command: must be an array for buildpack API 0.9"):
        load_launch_toml(path, ApiVersion(0, 9))


def test_bld10_api_0_8_needs_a_string_command(tmp_path: Path) -> None:
    path = write(tmp_path, "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["node"]\n')
    with pytest.raises(ConfigError, match=r"must be a string for buildpack API 0\.8"):
        load_launch_toml(path, ApiVersion(0, 8))


def test_bld10_direct_is_an_error_from_api_0_9(tmp_path: Path) -> None:
    path = write(tmp_path, "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["node"]\ndirect = true\n')
    with pytest.raises(
        ConfigError, match=r'process "web" sets direct, which buildpack API 0\.12 does not allow'
    ):
        load_launch_toml(path, ApiVersion(0, 12))


def test_bld10_api_0_12_reads_array_command_and_exec_env(tmp_path: Path) -> None:
    text = '[[processes]]\ntype = "worker"\ncommand = ["node", "w.js"]\nexec-env = ["production"]\n'
    (worker,) = load_launch_toml(write(tmp_path, "launch.toml", text), ApiVersion(0, 12)).processes
    assert (worker.command, worker.exec_env, worker.direct) == (("node", "w.js"), ("production",), False)


@pytest.mark.parametrize(
    ("processes", "message"),
    [
        ('[[processes]]\ntype = "a b"\ncommand = ["x"]\n', 'type: "a b" is not a valid process type'),
        ('[[processes]]\ntype = "web"\ncommand = []\n', r"processes\[0\].command is invalid"),
        (
            '[[processes]]\ntype = "web"\ncommand = ["x"]\n[[processes]]\ntype = "web"\ncommand = ["y"]\n',
            'process type "web" is defined twice',
        ),
        (
            '[[processes]]\ntype = "a"\ncommand = ["x"]\ndefault = true\n'
            '[[processes]]\ntype = "b"\ncommand = ["y"]\ndefault = true\n',
            "processes a, b are all default=true",
        ),
    ],
)
def test_bld10_invalid_processes_fail_to_load(tmp_path: Path, processes: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_launch_toml(write(tmp_path, "launch.toml", processes), ApiVersion(0, 12))


def test_bld15_store_toml_metadata(tmp_path: Path) -> None:
    assert load_store_toml(write(tmp_path, "store.toml", '[metadata]\nlock = "9f2c"\n')).metadata == {
        "lock": "9f2c"
    }


def test_bld14_metadata_toml_round_trips_with_kebab_keys(tmp_path: Path) -> None:
    metadata = ConfigMetadata(
        buildpacks=(GroupElement(id="acme/node", version="1", api=ApiVersion(0, 12)),),
        processes=(
            MetadataProcess(
                type="web",
                command=("node",),
                args=("s.js",),
                direct=True,
                buildpack_id="acme/node",
                working_dir="/w",
            ),
        ),
        labels=(Label(key="k", value="v"),),
        slices=(Slice(paths=("a/*",)),),
        buildpack_default_process_type="web",
    )
    path = tmp_path / "metadata.toml"
    write_toml(path, metadata)
    raw = tomllib.loads(path.read_text())
    assert raw["buildpack-default-process-type"] == "web"
    assert raw["processes"] == [
        {
            "type": "web",
            "command": ["node"],
            "args": ["s.js"],
            "direct": True,
            "buildpack-id": "acme/node",
            "working-dir": "/w",
        }
    ]
    assert load_config_metadata(path) == metadata


def test_bld14_metadata_toml_from_an_old_platform_has_a_string_command(tmp_path: Path) -> None:
    text = '[[processes]]\ntype = "web"\ncommand = "node s.js"\nbuildpack-id = "acme/node"\n'
    (web,) = load_config_metadata(write(tmp_path, "metadata.toml", text)).processes
    assert web.command == ("node s.js",)
