"""Builders from pack's builder.toml: composite order, operator env, system buildpacks, mirrors."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import ROOT, TINY_BUILDER, pybuild
from support.registry import Registry
from support.tools import Tool

BUILDER_TOML = ROOT / "tests" / "fixtures" / "builders" / "composite.toml"


def test_build_detects_through_composite_order_with_operator_env_and_system_post(home: Path) -> None:
    """DET-1, DET-13, BLD-8."""
    created = pybuild("builder", "create", "test/composite-builder", "--config", str(BUILDER_TOML))
    assert "test/composite@0.0.1" in created.stdout
    out = pybuild(
        "build", "app", "--path", "samples/procfile-shell", "--builder", "test/composite-builder"
    ).stdout
    detected = out.split("===> BUILDING")[0]
    assert "test/env-printer 0.0.1" in detected and "test/sys-info 0.0.1" in detected
    assert "pybuild/procfile 0.1.0" in detected  # the optional system post buildpack passed
    assert "OPERATOR_SETTING=from-builder" in out
    info = json.loads(pybuild("inspect", "app", "-o", "json").stdout)
    assert [bp["id"] for bp in info["buildpacks"]] == [
        "test/env-printer",
        "test/sys-info",
        "pybuild/procfile",
    ]
    assert info["runImage"]["mirrors"] == ["mirror.example/run:tiny"]
    assert "hello from procfile-shell" in pybuild("run", "app", "--process", "hello").stdout


def test_order_naming_a_missing_buildpack_is_refused(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "builder.toml"
    config.write_text(
        '[[buildpacks]]\nuri = "%s"\n[[order]]\n[[order.group]]\nid = "test/nope"\n'
        '[build]\nimage = "pybuild/build:tiny"\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
        % (ROOT / "tests" / "fixtures" / "buildpacks" / "env-printer")
    )
    proc = pybuild("builder", "create", "bad", "--config", str(config), check=False)
    assert proc.returncode != 0 and "test/nope" in proc.stderr and "Traceback" not in proc.stderr


PACKAGE = ROOT / "tests" / "fixtures" / "packages" / "composite" / "package.toml"


def _builder_toml(tmp_path: Path, uri: str) -> Path:
    config = tmp_path / "builder.toml"
    config.write_text(
        f'[[buildpacks]]\nuri = "{uri}"\n[[order]]\n[[order.group]]\nid = "test/composite"\n'
        '[build]\nimage = "pybuild/build:tiny"\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
    )
    return config


def _detects_through_composite(builder: str) -> None:
    out = pybuild("build", "app", "--path", "samples/procfile-shell", "--builder", builder).stdout
    detected = out.split("===> BUILDING")[0]
    assert "test/env-printer 0.0.1" in detected and "test/sys-info 0.0.1" in detected


def test_composite_buildpackage_file_makes_a_builder_that_detects_through_its_order(
    home: Path, tmp_path: Path
) -> None:
    cnb = tmp_path / "composite.cnb"
    pybuild("buildpack", "package", str(cnb), "--config", str(PACKAGE))
    pybuild("builder", "create", "test/from-cnb", "--config", str(_builder_toml(tmp_path, str(cnb))))
    _detects_through_composite("test/from-cnb")


def test_package_pushed_to_a_registry_is_referenced_from_builder_toml(
    home: Path, tmp_path: Path, registry: Registry
) -> None:
    ref = f"{registry.host}/e2e-packages/composite:0.0.1"
    pybuild("buildpack", "package", ref, "--config", str(PACKAGE), "--publish")
    config = _builder_toml(tmp_path, f"docker://{ref}")
    pybuild("builder", "create", "test/from-registry", "--config", str(config))
    _detects_through_composite("test/from-registry")
    args = ["--path", "samples/procfile-shell", "--builder", TINY_BUILDER, "--buildpack", f"docker://{ref}"]
    out = pybuild("build", "app2", *args).stdout
    assert "test/env-printer 0.0.1" in out.split("===> BUILDING")[0]


def test_builder_is_an_oci_image_with_pack_labels_and_inspectable(home: Path, skopeo: Tool) -> None:
    info = json.loads(pybuild("builder", "inspect", TINY_BUILDER, "-o", "json").stdout)
    assert info["buildImage"] == "pybuild/build:tiny"
    assert [bp["id"] for bp in info["buildpacks"]] == ["pybuild/procfile", "pybuild/static"]
    assert [[e["id"] for e in group] for group in info["order"]] == [["pybuild/procfile"], ["pybuild/static"]]
    labels = json.loads(skopeo("inspect", f"oci:{home / 'store'}:{TINY_BUILDER}").stdout)["Labels"]
    order = json.loads(labels["io.buildpacks.buildpack.order"])
    assert order == [{"group": [{"id": "pybuild/procfile", "version": "0.1.0"}]},
                     {"group": [{"id": "pybuild/static", "version": "0.1.0"}]}]  # fmt: skip
    layers = json.loads(labels["io.buildpacks.buildpack.layers"])
    assert set(layers) == {"pybuild/procfile", "pybuild/static"}
    assert (
        json.loads(labels["io.buildpacks.builder.metadata"])["stack"]["runImage"]["image"]
        == "pybuild/run:tiny"
    )


def test_embedded_builder_made_from_other_buildpacks_is_made_again(home: Path) -> None:
    """An upgrade (or a changed checkout) never leaves the embedded builder on stale buildpacks."""
    record = home / "builders" / "pybuild_builder_tiny" / "source.json"
    current = record.read_text()
    record.write_text("made by an older pybuild\n")
    app = str(ROOT / "samples" / "procfile-shell")

    stale = pybuild("build", "app", "--path", app, "--builder", TINY_BUILDER)

    assert f"Creating builder {TINY_BUILDER} (its buildpacks or builder.toml changed)" in stale.stdout
    assert record.read_text() == current
    again = pybuild("build", "app2", "--path", app, "--builder", TINY_BUILDER)
    assert "Creating builder" not in again.stdout + again.stderr


def test_users_own_builder_under_an_embedded_name_is_left_alone(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "builder.toml"
    config.write_text(
        f'[[buildpacks]]\nuri = "{ROOT / "buildpacks" / "procfile"}"\n\n'
        '[[order]]\n  [[order.group]]\n  id = "pybuild/procfile"\n\n'
        '[build]\nimage = "pybuild/build:tiny"\n\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
    )
    pybuild("builder", "create", TINY_BUILDER, "--config", str(config))
    app = str(ROOT / "samples" / "procfile-shell")

    built = pybuild("build", "app", "--path", app, "--builder", TINY_BUILDER)

    assert "Creating builder" not in built.stdout + built.stderr
    record = json.loads((home / "builders" / "pybuild_builder_tiny" / "source.json").read_text())
    assert record["config"] == str(config.resolve())
