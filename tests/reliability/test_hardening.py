"""One test per hardening fix made with this suite, at the unit level (the suite's other tests
show each one end to end): buildpack-written TOML and env files on the host, IDs as paths,
digests as paths, size caps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.api import ApiVersion
from lifecycle.cnb import GroupToml, check_buildpack_id, load_layer_toml, write_toml
from lifecycle.cnb._files import MAX_BUILDPACK_TOML
from lifecycle.cnb.layers import load_launch_toml
from lifecycle.env import (
    MAX_ENV_FILE,
    build_layer_operations,
    parse_env_assignment,
    read_env_dir,
    read_env_file,
)
from lifecycle.errors import ConfigError, ImageError
from lifecycle.oci.image import Image
from lifecycle.oci.layer import MemoryBlobs
from lifecycle.oci.models import MAX_CONFIG_BYTES, Descriptor


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    secret = tmp_path / "host" / "secret.toml"
    secret.parent.mkdir()
    secret.write_text('[metadata]\ntoken = "host secret"\n[types]\nlaunch = true\n')
    return secret


def test_buildpack_toml_outputs_that_are_symlinks_fifos_or_huge_are_refused(
    tmp_path: Path, host_file: Path
) -> None:
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "linked.toml").symlink_to(host_file)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_layer_toml(layers / "linked.toml")
    os.mkfifo(layers / "fifo.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_launch_toml(layers / "fifo.toml", ApiVersion(0, 10))  # would block forever if opened plainly
    (layers / "huge.toml").write_bytes(b"# " + b"x" * MAX_BUILDPACK_TOML)
    with pytest.raises(ConfigError, match="larger than"):
        load_layer_toml(layers / "huge.toml")


def test_write_toml_replaces_a_planted_symlink_and_refuses_a_symlinked_dir(
    tmp_path: Path, host_file: Path
) -> None:
    before = host_file.read_text()
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "group.toml").symlink_to(host_file)
    write_toml(layers / "group.toml", GroupToml())
    assert host_file.read_text() == before and not (layers / "group.toml").is_symlink()
    (layers / "config").symlink_to(host_file.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        write_toml(layers / "config" / "metadata.toml", GroupToml())
    assert sorted(p.name for p in host_file.parent.iterdir()) == ["secret.toml"]


def test_env_dirs_a_buildpack_left_refuse_symlinks_anywhere(tmp_path: Path, host_file: Path) -> None:
    layer = tmp_path / "layers" / "bp" / "layer"
    (layer / "env.build").mkdir(parents=True)
    (layer / "env.build" / "STOLEN.override").symlink_to(host_file)
    with pytest.raises(ConfigError, match="symbolic link"):
        build_layer_operations(layer)
    (layer / "env.build" / "STOLEN.override").unlink()
    (layer / "env").symlink_to(host_file.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        build_layer_operations(layer)
    (tmp_path / "elsewhere" / "env").mkdir(parents=True)
    (tmp_path / "layers" / "bp" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_env_dir(tmp_path / "layers" / "bp" / "linked" / "env")


def test_env_values_that_no_process_can_hold_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NUL"):
        parse_env_assignment("A=x\0y", {})
    (tmp_path / "bad.env").write_bytes(b"A=\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_env_file(tmp_path / "bad.env", {})
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "BIG.override").write_bytes(b"x" * (MAX_ENV_FILE + 1))
    with pytest.raises(ConfigError, match="larger than"):
        read_env_dir(env_dir)


@pytest.mark.parametrize("bad", ["..", "a/../b", "../etc", "a//b", "/abs", "a/", "a/./b"])
def test_buildpack_ids_that_would_name_another_dir_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid buildpack ID"):
        check_buildpack_id(bad)
    assert check_buildpack_id("acme/node.js-v2") == "acme/node.js-v2"


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:a/b", "sha256:x?n=1", "", "sha256"])
def test_descriptor_digests_that_could_name_a_path_are_refused(digest: str) -> None:
    with pytest.raises(ValueError):
        Descriptor(media_type="x", digest=digest, size=1)


def test_oversized_configs_are_refused_before_parsing() -> None:
    image = random_image(layers=1)
    with pytest.raises(ImageError, match="bytes allowed"):
        Image.from_raw(image.raw_manifest, b" " * (MAX_CONFIG_BYTES + 1), MemoryBlobs(), "big")
