"""scan_layers on the host never follows a symbolic link a buildpack left in its layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.launcher import LaunchPlanError, scan_layers

LayerWriter = Callable[..., Path]
SECRET = "host-credential-1234"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    victim = tmp_path / "host"
    (victim / "etc").mkdir(parents=True)
    (victim / "config.json").write_text(SECRET)
    (victim / "etc" / "passwd").write_text(SECRET)
    return victim


@pytest.mark.parametrize(
    ("plant", "where"),
    [
        ("env.launch/STOLEN.override", "env file"),
        ("env/STOLEN", "env file"),
        ("env.launch/web", "type dir"),
        ("env.launch", "env dir"),
    ],
)
def test_a_linked_env_file_or_dir_is_an_error_naming_it(
    tmp_path: Path, host: Path, write_layer: LayerWriter, plant: str, where: str
) -> None:
    layer = write_layer("acme/evil", "evil", {"env/OK": "1"})
    link = layer / plant
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(host / "config.json" if where == "env file" else host)
    with pytest.raises(LaunchPlanError, match=r"is a symbolic link") as info:
        scan_layers(tmp_path / "layers", ["acme/evil"])
    assert str(link) in str(info.value) and SECRET not in str(info.value)


def test_a_linked_layer_dir_or_layer_toml_is_an_error(
    tmp_path: Path, host: Path, write_layer: LayerWriter
) -> None:
    layer = write_layer("acme/evil", "evil")
    layer.rmdir()
    layer.symlink_to(host)
    with pytest.raises(LaunchPlanError, match="symbolic link"):
        scan_layers(tmp_path / "layers", ["acme/evil"])
    layer.unlink()
    toml = layer.parent / "evil.toml"
    toml.unlink()
    toml.symlink_to(host / "config.json")
    with pytest.raises(LaunchPlanError, match="symbolic link") as info:
        scan_layers(tmp_path / "layers", ["acme/evil"])
    assert SECRET not in str(info.value)


def test_links_among_scripts_and_bin_are_left_for_the_image_to_resolve(
    tmp_path: Path, host: Path, write_layer: LayerWriter
) -> None:
    layer = write_layer("acme/ok", "rt", {"exec.d/0-real": "#!/bin/sh\n"})
    (layer / "exec.d" / "web").symlink_to(host / "etc")  # a dir on the host: never listed
    (layer / "bin").symlink_to("/usr/local/bin")
    [scanned] = scan_layers(tmp_path / "layers", ["acme/ok"])
    assert [script.path for script in scanned.exec_d] == [
        "/layers/acme_ok/rt/exec.d/0-real",
        "/layers/acme_ok/rt/exec.d/web",
    ]
    assert scanned.has_bin and not scanned.has_lib
