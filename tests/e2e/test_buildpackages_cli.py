"""`pybuild buildpack package` end to end: a composite buildpackage through a real registry, as a
.cnb file and in an OCI layout, read back by skopeo and umoci and resolved by buildpack reference."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from support.cli import ROOT, last_line, pybuild
from support.registry import Registry
from support.tools import Tool

from lifecycle.platform.bpref import resolve_buildpack
from lifecycle.platform.builders import BuildpackSource

BUILDPACKS = ROOT / "tests" / "fixtures" / "buildpacks"
COMPOSITE_PACKAGE = ROOT / "tests" / "fixtures" / "packages" / "composite" / "package.toml"
REFS = ["test/composite@0.0.1", "test/env-printer@0.0.1", "test/sys-info@0.0.1"]
LABELS = ("io.buildpacks.buildpackage.metadata", "io.buildpacks.buildpack.layers")


def _tree(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file below ``root``: its bytes and whether it is executable."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), os.access(path, os.X_OK))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _assert_fixture_buildpacks(sources: list[BuildpackSource]) -> None:
    assert [s.descriptor.ref for s in sources] == REFS
    for source in sources:
        fixture = BUILDPACKS / source.descriptor.buildpack.id.removeprefix("test/")
        assert _tree(source.path) == _tree(fixture), source.descriptor.ref


def _assert_package_labels(labels: dict[str, str]) -> None:
    metadata = json.loads(labels[LABELS[0]])
    assert (metadata["id"], metadata["version"]) == ("test/composite", "0.0.1")
    layers = json.loads(labels[LABELS[1]])
    assert sorted(f"{bp_id}@{v}" for bp_id, versions in layers.items() for v in versions) == REFS


def _layer_gets(registry: Registry, mark: int, layers: list[str]) -> list[str]:
    """Digests of the layer blobs fetched since ``mark``."""
    fetched = (e.path.rsplit("/", 1)[-1] for e in registry.access_log(since=mark) if e.method == "GET")
    return [digest for digest in fetched if digest in layers]


def test_composite_package_round_trips_through_a_real_registry(
    registry: Registry, skopeo: Tool, tmp_path: Path
) -> None:
    ref = f"{registry.host}/e2e-buildpackage-{secrets.token_hex(4)}/composite:0.0.1"
    out = pybuild("buildpack", "package", ref, "--config", str(COMPOSITE_PACKAGE), "--publish")
    digest = last_line(out)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    assert info["Digest"] == digest and len(info["Layers"]) == 3
    _assert_package_labels(info["Labels"])

    home = tmp_path / "fresh-home"  # nothing cached: the layers come from the registry
    mark = registry.log_mark()
    sources = resolve_buildpack(f"docker://{ref}", base=tmp_path, scratch=tmp_path / "scratch", home=home)
    _assert_fixture_buildpacks(sources)
    assert sorted(_layer_gets(registry, mark, info["Layers"])) == sorted(info["Layers"])

    mark = registry.log_mark()
    again = resolve_buildpack(f"docker://{ref}", base=tmp_path, scratch=tmp_path / "scratch", home=home)
    assert [s.path for s in again] == [s.path for s in sources]
    assert _layer_gets(registry, mark, info["Layers"]) == [], "extracted layers are reused, not fetched again"

    listed = json.loads(pybuild("buildpack", "inspect", f"docker://{ref}", "-o", "json").stdout)
    assert [f"{bp['id']}@{bp['version']}" for bp in listed] == REFS
    assert listed[0]["order"] == [REFS[1:]]


def test_cnb_file_is_reproducible_read_by_skopeo_and_resolves(skopeo: Tool, tmp_path: Path) -> None:
    first, second = tmp_path / "first.cnb", tmp_path / "second.cnb"
    digest = last_line(
        pybuild("buildpack", "package", str(first), "--config", str(COMPOSITE_PACKAGE), "--format", "file")
    )
    assert (
        last_line(pybuild("buildpack", "package", str(second), "--config", str(COMPOSITE_PACKAGE))) == digest
    )
    assert first.read_bytes() == second.read_bytes()

    info = json.loads(skopeo("inspect", f"oci-archive:{first}").stdout)
    assert info["Digest"] == digest and (info["Os"], info["Architecture"]) == ("linux", "amd64")
    _assert_package_labels(info["Labels"])

    sources = resolve_buildpack(str(first), base=tmp_path, scratch=tmp_path / "scratch")
    _assert_fixture_buildpacks(sources)
    text = pybuild("buildpack", "inspect", str(first)).stdout
    assert "test/composite@0.0.1  (composite, buildpack API 0.10)" in text
    assert "group 1: test/env-printer@0.0.1, test/sys-info@0.0.1" in text


def test_package_in_an_oci_layout_unpacks_with_umoci_to_the_spec_paths(umoci: Tool, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    pybuild("buildpack", "package", f"oci:{layout}:composite", "--config", str(COMPOSITE_PACKAGE))
    bundle = tmp_path / "bundle"
    umoci("unpack", *(["--rootless"] if os.geteuid() != 0 else []), "--image", f"{layout}:composite", bundle)
    buildpacks = bundle / "rootfs" / "cnb" / "buildpacks"
    assert sorted(p.name for p in buildpacks.iterdir()) == [
        "test_composite",
        "test_env-printer",
        "test_sys-info",
    ]
    for name in ("composite", "env-printer", "sys-info"):
        assert _tree(buildpacks / f"test_{name}" / "0.0.1") == _tree(BUILDPACKS / name)
    build = buildpacks / "test_sys-info" / "0.0.1" / "bin" / "build"
    if os.geteuid() == 0:
        assert (build.stat().st_uid, build.stat().st_gid) == (0, 0)


def test_package_toml_naming_a_missing_buildpack_fails_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "package.toml"
    config.write_text(f'[buildpack]\nuri = "{BUILDPACKS / "composite"}"\n[[dependencies]]\nuri = "../nope"\n')
    proc = pybuild("buildpack", "package", str(tmp_path / "x.cnb"), "--config", str(config), check=False)
    assert proc.returncode == 3
    assert proc.stderr.strip() == (
        f'ERROR: failed to read package.toml: {config}: dependencies[0].uri "../nope" does not exist '
        "(check the path)"
    )
    assert not (tmp_path / "x.cnb").exists()
