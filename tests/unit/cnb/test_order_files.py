"""order.toml, group.toml (DET-14) and system.toml (DET-13)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import (
    GroupElement,
    GroupToml,
    OrderEntry,
    load_group_toml,
    load_order_toml,
    load_system_toml,
    write_toml,
)
from lifecycle.errors import ConfigError, ExitCode


def test_order_toml_reads_groups_and_order_extensions(tmp_path: Path) -> None:
    path = tmp_path / "order.toml"
    path.write_text(
        '[[order]]\n[[order.group]]\nid = "acme/a"\nversion = "1"\noptional = true\nexec-env = ["test"]\n'
        '[[order-extensions]]\n[[order-extensions.group]]\nid = "acme/ext"\nversion = "0.1"\n'
    )
    order = load_order_toml(path)
    assert order.order[0].group == (OrderEntry(id="acme/a", version="1", optional=True, exec_env=("test",)),)
    assert order.order_extensions[0].group[0].ref == "acme/ext@0.1"


def test_det14_group_toml_has_api_and_homepage_and_no_optional(tmp_path: Path) -> None:
    group = GroupToml(
        group=(
            GroupElement(id="acme/a", version="1", api=ApiVersion(0, 12), homepage="https://a.test"),
            GroupElement(id="acme/b", version="2", api=ApiVersion(0, 9)),
        )
    )
    path = tmp_path / "group.toml"
    write_toml(path, group)
    assert tomllib.loads(path.read_text()) == {
        "group": [
            {"id": "acme/a", "version": "1", "api": "0.12", "homepage": "https://a.test"},
            {"id": "acme/b", "version": "2", "api": "0.9"},
        ]
    }
    assert load_group_toml(path) == group


def test_gen1_group_toml_with_unsupported_api_exits_12(tmp_path: Path) -> None:
    path = tmp_path / "group.toml"
    path.write_text('[[group]]\nid = "acme/a"\nversion = "1"\napi = "0.5"\n')
    with pytest.raises(ConfigError) as caught:
        load_group_toml(path)
    assert caught.value.exit_code == ExitCode.BUILDPACK_API
    assert 'group[0].api "0.5" is not supported' in str(caught.value)


def test_det13_system_toml_pre_and_post(tmp_path: Path) -> None:
    path = tmp_path / "system.toml"
    path.write_text(
        '[system]\n[system.pre]\n[[system.pre.buildpacks]]\nid = "sys/pre"\nversion = "1"\noptional = true\n'
        '[system.post]\n[[system.post.buildpacks]]\nid = "sys/post"\nversion = "2"\n'
    )
    system = load_system_toml(path)
    assert system.pre == (OrderEntry(id="sys/pre", version="1", optional=True),)
    assert system.post == (OrderEntry(id="sys/post", version="2"),)


def test_det13_empty_system_toml_has_no_buildpacks(tmp_path: Path) -> None:
    path = tmp_path / "system.toml"
    path.write_text("")
    assert load_system_toml(path).pre == load_system_toml(path).post == ()
