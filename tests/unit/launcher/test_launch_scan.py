"""scan_layers: launch layers of a host layers dir, env files by the BLD-7 rules, exec.d/profile.d lists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.launcher import EnvOp, LaunchLayer, LaunchPlan, LaunchPlanError, LayerScript, scan_layers

LayerWriter = Callable[..., Path]


def _ops(layer: LaunchLayer) -> list[tuple[str, str, str, str, str | None]]:
    return [(op.name, op.action, op.value, op.delim, op.process_type) for op in layer.env]


def test_env_file_suffixes_follow_bld_7(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer(
        "acme/node",
        "rt",
        {
            "env/PLAIN": "p",
            "env/OVER.override": "o",
            "env/DEF.default": "d",
            "env/PRE.prepend": "/a",
            "env/PRE.delim": ":",
            "env/APP.append": "z",
            "env/ODD.suffix": "ignored",
            "env/TWO.dots.prepend": "ignored",
            "env/subdir/NESTED": "ignored",
        },
    )
    [layer] = scan_layers(tmp_path / "layers", ["acme/node"])
    assert _ops(layer) == [
        ("APP", "append", "z", "", None),
        ("DEF", "default", "d", "", None),
        ("OVER", "override", "o", "", None),
        ("PLAIN", "override", "p", "", None),
        ("PRE", "prepend", "/a", ":", None),
    ]


def test_contents_are_verbatim_with_no_trimming(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer("b", "l", {"env/MSG": " it's $HOME\n\n", "env/RAW": b"\xff\n"})
    [layer] = scan_layers(tmp_path / "layers", ["b"])
    assert [op.value.encode("utf-8", "surrogateescape") for op in layer.env] == [
        b" it's $HOME\n\n",
        b"\xff\n",
    ]


def test_delim_applies_only_within_its_own_dir(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer(
        "b",
        "l",
        {
            "env/PATH.delim": ":",
            "env/PATH.prepend": "/env",
            "env.launch/PATH.prepend": "/launch",
            "env.launch/web/PATH.append": "/web",
            "env.launch/web/PATH.delim": ";",
        },
    )
    [layer] = scan_layers(tmp_path / "layers", ["b"])
    assert _ops(layer) == [
        ("PATH", "prepend", "/env", ":", None),
        ("PATH", "prepend", "/launch", "", None),
        ("PATH", "append", "/web", ";", "web"),
    ]


def test_env_files_apply_in_byte_order_of_their_names(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer("b", "l", {"env/b": "2", "env/B": "1", "env/a.append": "3", "env/_": "0"})
    [layer] = scan_layers(tmp_path / "layers", ["b"])
    assert [op.name for op in layer.env] == ["B", "_", "a", "b"]


def test_only_launch_layers_in_buildpack_then_name_order(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer("z/last", "a", {"bin/": ""})
    write_layer("a/first", "zeta", {"lib/": ""})
    write_layer("a/first", "alpha")
    write_layer("a/first", "cache-only", launch=False)
    (tmp_path / "layers" / "a_first" / "launch.toml").write_text("[[processes]]\n")
    (tmp_path / "layers" / "a_first" / "store.toml").write_text("[metadata]\n")
    layers = scan_layers(tmp_path / "layers", ["z/last", "a/first", "not/present"], "/img/layers")
    assert [(layer.buildpack_id, layer.name, layer.path) for layer in layers] == [
        ("z/last", "a", "/img/layers/z_last/a"),
        ("a/first", "alpha", "/img/layers/a_first/alpha"),
        ("a/first", "zeta", "/img/layers/a_first/zeta"),
    ]
    assert [(layer.has_bin, layer.has_lib) for layer in layers] == [
        (True, False),
        (False, False),
        (False, True),
    ]


def test_exec_d_and_profile_d_list_untyped_then_typed_files(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer(
        "b",
        "l",
        {
            "exec.d/2": "",
            "exec.d/1": "",
            "exec.d/web/x": "",
            "exec.d/web/deeper/ignored": "",
            "exec.d/api/y": "",
            "profile.d/p.sh": "",
            "profile.d/web/q.sh": "",
        },
    )
    [layer] = scan_layers(tmp_path / "layers", ["b"])
    assert layer.exec_d == (
        LayerScript(path="/layers/b/l/exec.d/1"),
        LayerScript(path="/layers/b/l/exec.d/2"),
        LayerScript(path="/layers/b/l/exec.d/api/y", process_type="api"),
        LayerScript(path="/layers/b/l/exec.d/web/x", process_type="web"),
    )
    assert layer.profile_d == (
        LayerScript(path="/layers/b/l/profile.d/p.sh"),
        LayerScript(path="/layers/b/l/profile.d/web/q.sh", process_type="web"),
    )


def test_unparsable_layer_toml_is_an_error(tmp_path: Path, write_layer: LayerWriter) -> None:
    write_layer("b", "l")
    (tmp_path / "layers" / "b" / "l.toml").write_text("[types\n")
    with pytest.raises(LaunchPlanError, match="read layer metadata"):
        scan_layers(tmp_path / "layers", ["b"])


def test_reused_layer_without_contents_comes_from_the_previous_plan(tmp_path: Path) -> None:
    # EXP-3: only <layer>.toml is here, its files are in the previous image
    buildpack_dir = tmp_path / "layers" / "b"
    buildpack_dir.mkdir(parents=True)
    (buildpack_dir / "l.toml").write_text("[types]\nlaunch = true\n")
    old = LaunchLayer(
        buildpack_id="b", name="l", path="/layers/b/l", env=(EnvOp(name="A", action="override", value="1"),)
    )
    assert scan_layers(tmp_path / "layers", ["b"], previous=LaunchPlan(layers=(old,))) == [old]
    with pytest.raises(LaunchPlanError, match="no contents here"):
        scan_layers(tmp_path / "layers", ["b"])
