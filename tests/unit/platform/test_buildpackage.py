"""`buildpack package`: one layer per buildpack, the two labels in pack's shapes, reproducible bytes,
and one-line errors naming package.toml and the field."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from support.cli import ROOT

from lifecycle.cnb.buildpack import BuildpackDescriptor, load_buildpack_toml
from lifecycle.errors import ConfigError, ExitCode
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.models import ContainerConfig, ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar
from lifecycle.oci.validate import validate
from lifecycle.platform.bpref import resolve_buildpack
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage import (
    build_package_image,
    buildpack_layer_path,
    package_buildpack,
    write_buildpackage,
)
from lifecycle.platform.buildpackage_file import open_cnb
from lifecycle.platform.buildpackage_labels import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    layer_info,
    layers_json,
    package_metadata,
)

FIXTURES = ROOT / "tests" / "fixtures"
BUILDPACKS = FIXTURES / "buildpacks"
COMPOSITE_PACKAGE = FIXTURES / "packages" / "composite" / "package.toml"


def _package_toml(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "package.toml"
    path.write_text(body)
    return path


def _uri(name: str) -> str:
    return str(BUILDPACKS / name)


def _members(image: Image, index: int) -> dict[str, tarfile.TarInfo]:
    with image.layers[index].uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return {member.name: member for member in tar}


@pytest.fixture
def composite(tmp_path: Path) -> Image:
    return package_buildpack(COMPOSITE_PACKAGE, scratch=tmp_path / "scratch")


def test_metadata_label_names_the_entrypoint_in_pack_key_order(composite: Image) -> None:
    assert composite.labels[BUILDPACKAGE_METADATA_LABEL] == (
        '{"id":"test/composite","name":"Composite (test fixture)","version":"0.0.1"}'
    )


def test_layers_label_lists_every_buildpack_by_id_then_version_with_its_layer(composite: Image) -> None:
    raw = composite.labels[BUILDPACK_LAYERS_LABEL]
    layers = json.loads(raw)
    assert list(layers) == ["test/composite", "test/env-printer", "test/sys-info"]
    entry = layers["test/composite"]["0.0.1"]
    assert list(entry) == ["api", "order", "layerDiffID", "name"]
    assert entry["order"] == [
        {
            "group": [
                {"id": "test/env-printer", "version": "0.0.1"},
                {"id": "test/sys-info", "version": "0.0.1"},
            ]
        }
    ]
    assert layers["test/env-printer"]["0.0.1"]["targets"] == [{"os": "linux", "arch": ""}]
    assert [t["arch"] for t in layers["test/sys-info"]["0.0.1"]["targets"]] == ["amd64", "arm64"]
    diff_ids = {v["layerDiffID"] for versions in layers.values() for v in versions.values()}
    assert diff_ids == set(composite.diff_ids)
    assert raw == json.dumps(layers, separators=(",", ":"))  # compact, as Go writes it


def test_layer_info_leaves_out_empty_keys_and_writes_stacks_homepage_and_optional() -> None:
    descriptor = BuildpackDescriptor.model_validate(
        {
            "api": "0.8",
            "buildpack": {"id": "acme/meta", "version": "1", "homepage": "https://acme.example"},
            "stacks": [{"id": "io.acme.stack", "mixins": ["git"]}],
            "order": [{"group": [{"id": "acme/a", "version": "2", "optional": True}]}],
        }
    )
    assert layer_info(descriptor, "sha256:" + "a" * 64).to_json() == (
        '{"api":"0.8","stacks":[{"id":"io.acme.stack","mixins":["git"]}],'
        '"order":[{"group":[{"id":"acme/a","version":"2","optional":true}]}],'
        f'"layerDiffID":"sha256:{"a" * 64}","homepage":"https://acme.example"}}'
    )


def test_one_layer_per_buildpack_dependencies_first_entrypoint_last(composite: Image) -> None:
    tops = [sorted(n for n in _members(composite, i) if n.count("/") == 3)[0] for i in range(3)]
    assert tops == [
        "/cnb/buildpacks/test_env-printer",
        "/cnb/buildpacks/test_sys-info",
        "/cnb/buildpacks/test_composite",
    ]
    history = [h.created_by for h in composite.config.history or []]
    assert history == [
        "buildpack test/env-printer@0.0.1",
        "buildpack test/sys-info@0.0.1",
        "buildpack test/composite@0.0.1",
    ]


def test_layer_files_are_owned_by_root_with_modes_kept_and_a_constant_mtime(composite: Image) -> None:
    members = _members(composite, 0)
    base = "/cnb/buildpacks/test_env-printer/0.0.1"
    assert set(members) >= {"/cnb", "/cnb/buildpacks", base, f"{base}/bin/build", f"{base}/buildpack.toml"}
    assert all(
        (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", DEFAULT_MTIME) for m in members.values()
    )
    source = BUILDPACKS / "env-printer"
    assert members[f"{base}/bin/build"].mode == (source / "bin" / "build").stat().st_mode & 0o7777
    assert members[f"{base}/buildpack.toml"].mode == (source / "buildpack.toml").stat().st_mode & 0o7777


def test_config_has_platform_constant_created_and_validates(composite: Image) -> None:
    config = composite.config
    assert (config.os, config.architecture, config.created) == ("linux", "amd64", "1980-01-01T00:00:01Z")
    validate(composite)


def test_packaging_twice_gives_the_same_digest_and_the_same_cnb_bytes(
    tmp_path: Path, composite: Image
) -> None:
    again = package_buildpack(COMPOSITE_PACKAGE, scratch=tmp_path / "again")
    assert again.digest == composite.digest
    write_buildpackage(composite, str(tmp_path / "one.cnb"), as_file=True)
    write_buildpackage(again, str(tmp_path / "two.cnb"), as_file=True)
    assert (tmp_path / "one.cnb").read_bytes() == (tmp_path / "two.cnb").read_bytes()


def test_cnb_file_is_an_oci_layout_tar_that_reads_back_as_the_same_image(
    tmp_path: Path, composite: Image
) -> None:
    path = tmp_path / "composite.cnb"
    write_buildpackage(composite, str(path), as_file=True)
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[:2] == ["blobs", "blobs/sha256"] and names[-2:] == ["index.json", "oci-layout"]
    assert len(names) == 2 + 2 + len(composite.layers) + 2  # dirs, manifest + config, layers, index + layout
    read = open_cnb(path)
    assert read.digest == composite.digest
    validate(read)


def test_architecture_comes_from_platform(tmp_path: Path) -> None:
    config = _package_toml(
        tmp_path,
        f'[buildpack]\nuri = "{_uri("env-printer")}"\n[platform]\nos = "linux"\narchitecture = "arm64"\n',
    )
    assert package_buildpack(config, scratch=tmp_path / "s").config.architecture == "arm64"


def test_legacy_stacks_become_the_package_stacks(tmp_path: Path) -> None:
    config = _package_toml(tmp_path, f'[buildpack]\nuri = "{_uri("legacy-api")}"\n')
    image = package_buildpack(config, scratch=tmp_path / "s")
    metadata = json.loads(image.labels[BUILDPACKAGE_METADATA_LABEL])
    assert metadata["stacks"] == [{"id": "*"}]
    assert "targets" not in metadata


def test_non_composite_entrypoint_carries_its_targets(tmp_path: Path) -> None:
    config = _package_toml(tmp_path, f'[buildpack]\nuri = "{_uri("sys-info")}"\n')
    metadata = json.loads(
        package_buildpack(config, scratch=tmp_path / "s").labels[BUILDPACKAGE_METADATA_LABEL]
    )
    assert [t["arch"] for t in metadata["targets"]] == ["amd64", "arm64"] and "stacks" not in metadata


def test_dependencies_may_be_tgz_and_cnb_files_and_nest(tmp_path: Path, composite: Image) -> None:
    """A .cnb dependency brings its own buildpacks; a .tgz is extracted; each buildpack appears once."""
    write_buildpackage(composite, str(tmp_path / "composite.cnb"), as_file=True)
    archive = tmp_path / "sys-info.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(BUILDPACKS / "sys-info", arcname="sys-info")
    config = _package_toml(
        tmp_path / "outer",
        '[buildpack]\nuri = "../composite.cnb"\n[[dependencies]]\nuri = "../sys-info.tgz"\n',
    )
    image = package_buildpack(config, scratch=tmp_path / "s")
    assert image.digest == composite.digest  # same buildpacks, same bytes, whatever their source


def test_buildpacks_from_a_package_keep_their_layer_handles(tmp_path: Path, composite: Image) -> None:
    """Nothing is re-tarred or recompressed: the outer package points at the inner package's blobs."""
    write_buildpackage(composite, str(tmp_path / "composite.cnb"), as_file=True)
    config = _package_toml(
        tmp_path / "outer",
        f'[buildpack]\nuri = "../composite.cnb"\n[[dependencies]]\nuri = "{_uri("env-printer")}"\n',
    )
    scratch = tmp_path / "s"
    image = package_buildpack(config, scratch=scratch)
    assert image.digest == composite.digest
    assert not (scratch / "layers").exists()


def test_flattened_package_layer_is_shared_not_duplicated(tmp_path: Path) -> None:
    """pack --flatten puts several buildpacks in one layer: both resolve, and a repackage keeps one layer."""
    sources = [_source(name) for name in ("env-printer", "sys-info")]

    def fill(tar: LayerTar) -> None:
        for source in sources:
            tar.add_tree(source.path, buildpack_layer_path(source.descriptor))

    layer = write_layer(tmp_path / "blobs", fill)
    layers = {s.descriptor.buildpack.id: {"0.0.1": layer_info(s.descriptor, layer.diff_id)} for s in sources}
    config = ImageConfig(
        config=ContainerConfig(
            labels={
                BUILDPACKAGE_METADATA_LABEL: package_metadata(sources[0].descriptor, ()).to_json(),
                BUILDPACK_LAYERS_LABEL: layers_json(layers),
            }
        )
    )
    path = tmp_path / "flat.cnb"
    write_buildpackage(new_image(config, [layer]), str(path), as_file=True)
    resolved = resolve_buildpack(str(path), base=tmp_path, scratch=tmp_path / "r")
    assert [s.descriptor.ref for s in resolved] == ["test/env-printer@0.0.1", "test/sys-info@0.0.1"]
    repackaged = build_package_image(resolved[0], resolved[1:], tmp_path / "layers")
    assert repackaged.diff_ids == [layer.diff_id]
    assert [h.created_by for h in repackaged.config.history or []] == [
        "buildpack test/sys-info@0.0.1, test/env-printer@0.0.1"
    ]


def _source(name: str) -> BuildpackSource:
    return BuildpackSource(load_buildpack_toml(BUILDPACKS / name / "buildpack.toml"), BUILDPACKS / name)


def test_image_dependency_is_read_from_the_local_store(tmp_path: Path, composite: Image) -> None:
    home = tmp_path / "home"
    write_buildpackage(composite, "acme/composite:1", home=home)
    config = _package_toml(tmp_path, '[buildpack]\nuri = "acme/composite:1"\n')
    assert package_buildpack(config, scratch=tmp_path / "s", home=home).digest == composite.digest


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            f'[buildpack]\nuri = "{_uri("composite")}"\n[[dependencies]]\nuri = "../nope"\n',
            'dependencies[0].uri "../nope" does not exist (check the path)',
        ),
        ('[buildpack]\nuri = "./missing"\n', 'buildpack.uri "./missing" does not exist (check the path)'),
        (
            f'[buildpack]\nuri = "{_uri("composite")}"\n[[dependencies]]\nuri = "{_uri("env-printer")}"\n',
            "test/composite@0.0.1 has test/sys-info@0.0.1 in its order, "
            "but no [[dependencies]] entry provides it (add it)",
        ),
        ('[[dependencies]]\nuri = "x"\n', 'buildpack is missing (add [buildpack] uri = "PATH")'),
        ("[buildpack]\n", "buildpack.uri is missing (add it)"),
        (
            f'[buildpack]\nuri = "{_uri("env-printer")}"\n[[dependencies]]\n',
            "dependencies[0] has neither uri nor image (set one)",
        ),
        (
            f'[buildpack]\nuri = "{_uri("env-printer")}"\n[[dependencies]]\nuri = "a"\nimage = "b"\n',
            "dependencies[0] has both uri and image (keep one)",
        ),
        (
            f'[buildpack]\nuri = "{_uri("env-printer")}"\n[platform]\nos = "windows"\n',
            "platform.os is invalid: input should be 'linux' (got 'windows')",
        ),
        (
            f'[buildpack]\nuri = "{_uri("env-printer")}"\n[[dependencies]]\nimage = "acme/none:1"\n',
            'dependencies[0].image "acme/none:1" is not a directory, .tgz, .cnb file',
        ),
        (
            f'[buildpack]\nuri = "{_uri("env-printer")}"\n[[dependencies]]\nuri = "https://x.example/bp.tgz"\n',
            'dependencies[0].uri "https://x.example/bp.tgz": URLs are not fetched',
        ),
        ("[buildpack\n", "is not valid TOML"),
    ],
)
def test_bad_package_toml_is_one_line_naming_the_file_and_field(
    tmp_path: Path, body: str, detail: str
) -> None:
    config = _package_toml(tmp_path / "pkg", body)
    with pytest.raises(ConfigError) as caught:
        package_buildpack(config, scratch=tmp_path / "s")
    message = str(caught.value)
    assert message.startswith(f"failed to read package.toml: {config}: ")
    assert detail in message and "\n" not in message


def test_dependency_with_unsupported_api_keeps_exit_code_12(tmp_path: Path) -> None:
    config = _package_toml(tmp_path, f'[buildpack]\nuri = "{_uri("bad-api")}"\n')
    with pytest.raises(ConfigError) as caught:
        package_buildpack(config, scratch=tmp_path / "s")
    assert caught.value.exit_code == ExitCode.BUILDPACK_API
    assert 'buildpack.uri "' in str(caught.value) and 'api "0.99" is not supported' in str(caught.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: does not exist \(check --config\)"):
        package_buildpack(tmp_path / "nope.toml", scratch=tmp_path / "s")


def test_publish_with_file_format_is_refused(tmp_path: Path, composite: Image) -> None:
    with pytest.raises(ConfigError, match="--publish is for images"):
        write_buildpackage(composite, str(tmp_path / "x.cnb"), as_file=True, publish=True)


def test_relative_uris_are_relative_to_package_toml(tmp_path: Path, composite: Image) -> None:
    for name in ("composite", "env-printer", "sys-info"):
        shutil.copytree(BUILDPACKS / name, tmp_path / "bps" / name)
    config = _package_toml(
        tmp_path / "pkg",
        '[buildpack]\nuri = "../bps/composite"\n'
        '[[dependencies]]\nuri = "file://../bps/env-printer"\n[[dependencies]]\nuri = "../bps/sys-info"\n',
    )
    assert package_buildpack(config, scratch=tmp_path / "s").digest == composite.digest
