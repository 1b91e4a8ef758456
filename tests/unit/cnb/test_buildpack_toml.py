"""buildpack.toml and extension.toml (GEN-1, GEN-3, DET-1, DET-11, DET-12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import Distro, Target, load_buildpack_toml, load_extension_toml
from lifecycle.errors import ConfigError, ExitCode

SIMPLE = """
api = "0.12"
[buildpack]
id = "acme/node"
version = "1.4.0"
name = "Node"
homepage = "https://bp.test/node"
clear-env = true
sbom-formats = ["application/vnd.cyclonedx+json"]
exec-env = ["production", "test"]

[[targets]]
os = "linux"
arch = "arm64"
arch-variant = "v8"
[[targets.distros]]
name = "ubuntu"
version = "24.04"

[[targets]]
os = "linux"
variant = "v7"

[metadata]
default-version = "20"
"""


def write(tmp_path: Path, text: str, name: str = "buildpack.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_kebab_case_keys_and_both_variant_spellings(tmp_path: Path) -> None:
    descriptor = load_buildpack_toml(write(tmp_path, SIMPLE))
    info = descriptor.buildpack
    assert descriptor.api == ApiVersion(0, 12)
    assert (info.id, info.version, info.clear_env, info.homepage) == (
        "acme/node",
        "1.4.0",
        True,
        "https://bp.test/node",
    )
    assert info.sbom_formats == ("application/vnd.cyclonedx+json",)
    assert descriptor.targets == (
        Target(os="linux", arch="arm64", variant="v8", distros=(Distro(name="ubuntu", version="24.04"),)),
        Target(os="linux", variant="v7"),
    )
    assert descriptor.metadata == {"default-version": "20"}
    assert descriptor.ref == "acme/node@1.4.0" and not descriptor.is_composite
    assert descriptor.features.exec_env


def test_det12_exec_env_table_form_reads_like_the_list_form(tmp_path: Path) -> None:
    tables = '[[buildpack.exec-env]]\nname = "production"\n[[buildpack.exec-env]]\nname = "test"\n\n'
    text = SIMPLE.replace('exec-env = ["production", "test"]', "").replace(
        "[[targets]]\nos", tables + "[[targets]]\nos", 1
    )
    assert load_buildpack_toml(write(tmp_path, text)).buildpack.exec_env == ("production", "test")


def test_det1_composite_reads_its_order(tmp_path: Path) -> None:
    text = """
api = "0.10"
[buildpack]
id = "acme/meta"
version = "2.0"
[[order]]
[[order.group]]
id = "acme/a"
version = "1"
[[order.group]]
id = "acme/b"
version = "1"
optional = true
[[order]]
[[order.group]]
id = "acme/c"
version = "1"
"""
    descriptor = load_buildpack_toml(write(tmp_path, text))
    assert descriptor.is_composite
    assert [[(e.id, e.optional) for e in group.group] for group in descriptor.order] == [
        [("acme/a", False), ("acme/b", True)],
        [("acme/c", False)],
    ]


@pytest.mark.parametrize("api", ["0.6", "0.13", "0.99"])
def test_gen1_unsupported_api_is_a_one_line_error_with_exit_12(tmp_path: Path, api: str) -> None:
    path = write(tmp_path, SIMPLE.replace('api = "0.12"', f'api = "{api}"'))
    with pytest.raises(ConfigError) as caught:
        load_buildpack_toml(path)
    assert caught.value.exit_code == ExitCode.BUILDPACK_API
    assert str(caught.value.cause) == f'{path}: api "{api}" is not supported (use 0.7 - 0.12)'
    assert "\n" not in str(caught.value)


def test_malformed_api_is_a_bad_file_not_an_api_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_buildpack_toml(write(tmp_path, SIMPLE.replace('api = "0.12"', 'api = "latest"')))
    assert caught.value.exit_code == ExitCode.BAD_ARGS
    assert 'api is not an API version (write it as "0.12")' in str(caught.value)


@pytest.mark.parametrize(
    ("buildpack_id", "message"),
    [
        ("app", 'buildpack.id: "app" is reserved'),
        ("acme node", 'buildpack.id: "acme node" is not a valid buildpack ID'),
        ("..", 'buildpack.id: ".." is not a valid buildpack ID'),
    ],
)
def test_gen3_invalid_or_reserved_id_is_rejected(tmp_path: Path, buildpack_id: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_buildpack_toml(write(tmp_path, SIMPLE.replace('id = "acme/node"', f'id = "{buildpack_id}"')))


def test_missing_field_names_the_field_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, SIMPLE.replace('version = "1.4.0"\n', ""))
    with pytest.raises(ConfigError) as caught:
        load_buildpack_toml(path)
    assert (
        str(caught.value) == f"failed to read buildpack.toml: {path}: buildpack.version is missing (add it)"
    )


def test_det11_effective_targets_fall_back_to_stacks_then_bin_build(tmp_path: Path) -> None:
    base = 'api = "0.9"\n[buildpack]\nid = "acme/x"\nversion = "1"\n'
    bionic = load_buildpack_toml(write(tmp_path, base + '[[stacks]]\nid = "io.buildpacks.stacks.bionic"\n'))
    assert bionic.effective_targets(has_bin_build=True) == (
        Target(os="linux", arch="amd64", distros=(Distro(name="ubuntu", version="18.04"),)),
    )
    anything = load_buildpack_toml(write(tmp_path, base + '[[stacks]]\nid = "*"\n'))
    assert anything.effective_targets(has_bin_build=True) == (Target(),)
    bare = load_buildpack_toml(write(tmp_path, base))
    assert bare.effective_targets(has_bin_build=True) == (Target(os="linux"),)
    assert bare.effective_targets(has_bin_build=False) == ()
    declared = load_buildpack_toml(write(tmp_path, SIMPLE))
    assert declared.effective_targets(has_bin_build=False) == declared.targets


def test_extension_toml_minimal(tmp_path: Path) -> None:
    text = 'api = "0.10"\n[extension]\nid = "acme/curl"\nversion = "0.1"\n[[targets]]\nos = "linux"\n'
    extension = load_extension_toml(write(tmp_path, text, "extension.toml"))
    assert (extension.ref, extension.targets) == ("acme/curl@0.1", (Target(os="linux"),))
