"""Buildpack references: how each kind is recognised, resolved (named one first), cached, refused."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from support.cli import ROOT
from support.images import random_image

from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore
from lifecycle.cnb.buildpack import load_buildpack_toml
from lifecycle.errors import ConfigError, ImageError, ImageNotFound
from lifecycle.oci.mutate import set_labels
from lifecycle.platform.bpref import RefKind, parse_buildpack_ref, resolve_buildpack
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage import package_buildpack, write_buildpackage
from lifecycle.platform.buildpackage_labels import BUILDPACK_LAYERS_LABEL, BUILDPACKAGE_METADATA_LABEL

BUILDPACKS = ROOT / "tests" / "fixtures" / "buildpacks"
COMPOSITE_PACKAGE = ROOT / "tests" / "fixtures" / "packages" / "composite" / "package.toml"
DIGEST = "sha256:" + "0" * 64


def _source(name: str, path: Path | None = None) -> BuildpackSource:
    root = path or BUILDPACKS / name
    return BuildpackSource(load_buildpack_toml(root / "buildpack.toml"), root)


BUILDER = {s.descriptor.ref: s for s in (_source("composite"), _source("env-printer"), _source("sys-info"))}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A project dir: a buildpack dir, an archive, a .cnb name, a plain file, a dir named like an ID."""
    shutil.copytree(BUILDPACKS / "env-printer", tmp_path / "bp")
    shutil.copytree(BUILDPACKS / "sys-info", tmp_path / "test" / "sys-info")
    with tarfile.open(tmp_path / "bp.tgz", "w:gz") as tar:
        tar.add(BUILDPACKS / "env-printer", arcname=".")
    (tmp_path / "pkg.cnb").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a buildpack")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "kind", "location"),
    [
        ("bp", RefKind.DIRECTORY, "{base}/bp"),
        ("./bp/", RefKind.DIRECTORY, "{base}/bp"),
        ("file://bp", RefKind.DIRECTORY, "{base}/bp"),
        ("test/sys-info", RefKind.DIRECTORY, "{base}/test/sys-info"),  # a path that exists wins over an ID
        ("bp.tgz", RefKind.ARCHIVE, "{base}/bp.tgz"),
        ("pkg.cnb", RefKind.CNB_FILE, "{base}/pkg.cnb"),
        ("urn:cnb:builder:test/env-printer@0.0.1", RefKind.BUILDER, "test/env-printer@0.0.1"),
        ("urn:cnb:builder:test/env-printer", RefKind.BUILDER, "test/env-printer"),
        ("test/env-printer@0.0.1", RefKind.BUILDER, "test/env-printer@0.0.1"),
        ("test/env-printer", RefKind.BUILDER, "test/env-printer"),
        ("docker://localhost:5000/acme/bp:1", RefKind.IMAGE, "docker://localhost:5000/acme/bp:1"),
        ("oci:/srv/layout:bp", RefKind.IMAGE, "oci:/srv/layout:bp"),
        ("docker-daemon:acme/bp:1", RefKind.IMAGE, "docker-daemon:acme/bp:1"),
        ("acme/bp:1", RefKind.IMAGE, "acme/bp:1"),
        (f"localhost:5000/acme/bp@{DIGEST}", RefKind.IMAGE, f"localhost:5000/acme/bp@{DIGEST}"),
    ],
)
def test_reference_kinds(base: Path, text: str, kind: RefKind, location: str) -> None:
    parsed = parse_buildpack_ref(text, base=base, builder_buildpacks=BUILDER)
    assert (parsed.kind, parsed.location) == (kind, location.format(base=base))


@pytest.mark.parametrize(
    ("text", "builder", "message"),
    [
        ("", True, "the buildpack reference is empty"),
        ("urn:cnb:builder:", True, "names no buildpack (use urn:cnb:builder:ID[@VERSION])"),
        ("urn:cnb:registry:acme/x@1", True, "the buildpack registry is not supported"),
        ("https://example.com/bp.tgz", True, "URLs are not fetched (download it and give the file)"),
        ("./nope", True, '"./nope" does not exist (check the path)'),
        ("nope.tgz", True, '"nope.tgz" does not exist (check the path)'),
        ("file://nope", True, '"file://nope" does not exist (check the path)'),
        ("notes.txt", True, "is a file but not a .tgz, .tar or .cnb"),
        ("acme/x@1.0", False, "is not a buildpack of the builder (there is no builder to take it from"),
        (
            "acme/x@1.0",
            True,
            "is not a buildpack of the builder (it has test/composite@0.0.1, test/env-printer@0.0.1, "
            "test/sys-info@0.0.1)",
        ),
        ("test/env-printer@9.9", True, '"test/env-printer@9.9" is not a buildpack of the builder'),
    ],
)
def test_unusable_references_are_one_line_errors(base: Path, text: str, builder: bool, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_buildpack_ref(text, base=base, builder_buildpacks=BUILDER if builder else None)
    assert str(caught.value).startswith("failed to resolve buildpack: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _refs(sources: list[BuildpackSource]) -> list[str]:
    return [s.descriptor.ref for s in sources]


def test_builder_composite_comes_first_then_the_builder_buildpacks_of_its_order(tmp_path: Path) -> None:
    sources = resolve_buildpack(
        "urn:cnb:builder:test/composite", base=tmp_path, scratch=tmp_path, builder_buildpacks=BUILDER
    )
    assert _refs(sources) == ["test/composite@0.0.1", "test/env-printer@0.0.1", "test/sys-info@0.0.1"]
    assert sources[1] is BUILDER["test/env-printer@0.0.1"]


def test_id_without_version_must_be_unambiguous(tmp_path: Path) -> None:
    other = tmp_path / "v2"
    shutil.copytree(BUILDPACKS / "sys-info", other)
    toml = other / "buildpack.toml"
    toml.write_text(toml.read_text().replace('version = "0.0.1"', 'version = "0.0.2"'))
    builder = {**BUILDER, "test/sys-info@0.0.2": _source("sys-info", other)}
    with pytest.raises(
        ConfigError, match=r"the builder has versions 0\.0\.1, 0\.0\.2 \(name one as ID@VERSION\)"
    ):
        resolve_buildpack("test/sys-info", base=tmp_path, scratch=tmp_path, builder_buildpacks=builder)
    found = resolve_buildpack(
        "test/sys-info@0.0.2", base=tmp_path, scratch=tmp_path, builder_buildpacks=builder
    )
    assert [s.path for s in found] == [other]


def test_directory_is_used_in_place(base: Path) -> None:
    [source] = resolve_buildpack("bp", base=base, scratch=base / "scratch")
    assert (source.descriptor.ref, source.path) == ("test/env-printer@0.0.1", base / "bp")


def test_directory_without_buildpack_toml_is_refused(base: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no buildpack\.toml \(point at the buildpack's directory\)"):
        resolve_buildpack("test", base=base, scratch=base / "scratch")


@pytest.mark.parametrize("arcname", [".", "env-printer"])
def test_archive_is_extracted_into_scratch_at_its_root_or_its_one_directory(
    tmp_path: Path, arcname: str
) -> None:
    archive = tmp_path / "bp.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(BUILDPACKS / "env-printer", arcname=arcname)
    [source] = resolve_buildpack(str(archive), base=tmp_path, scratch=tmp_path / "scratch")
    assert source.descriptor.ref == "test/env-printer@0.0.1"
    assert source.path.is_relative_to(tmp_path / "scratch")
    assert (source.path / "bin" / "build").read_bytes() == (
        BUILDPACKS / "env-printer" / "bin" / "build"
    ).read_bytes()
    assert (source.path / "bin" / "build").stat().st_mode & 0o111


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cnb_file(tmp_path: Path) -> Path:
    image = package_buildpack(COMPOSITE_PACKAGE, scratch=tmp_path / "package")
    path = tmp_path / "composite.cnb"
    write_buildpackage(image, str(path), as_file=True)
    return path


def test_cnb_file_gives_entrypoint_first_then_its_dependencies(cnb_file: Path, home: Path) -> None:
    sources = resolve_buildpack(str(cnb_file), base=Path("/"), scratch=home / "scratch", home=home)
    assert _refs(sources) == ["test/composite@0.0.1", "test/env-printer@0.0.1", "test/sys-info@0.0.1"]
    for source in sources[1:]:
        fixture = BUILDPACKS / source.descriptor.buildpack.id.removeprefix("test/")
        assert (source.path / "bin" / "build").read_bytes() == (fixture / "bin" / "build").read_bytes()
        assert source.path.parts[-3:-1] == ("buildpacks", source.descriptor.buildpack.id.replace("/", "_"))


def test_package_layers_are_extracted_once_per_diff_id_and_reused(cnb_file: Path, home: Path) -> None:
    first = resolve_buildpack(str(cnb_file), base=Path("/"), scratch=home / "scratch", home=home)
    cache = home / "cache" / "buildpacks"
    entries = sorted(p.name for p in cache.iterdir())
    stamp = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = resolve_buildpack(str(cnb_file), base=Path("/"), scratch=home / "scratch", home=home)
    assert [s.path for s in again] == [s.path for s in first]
    assert len(entries) == 3 and not any(name.startswith(".") for name in entries)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamp


def test_package_image_in_the_local_store_and_in_a_layout(cnb_file: Path, home: Path, tmp_path: Path) -> None:
    from lifecycle.platform.buildpackage_file import open_cnb

    image = open_cnb(cnb_file)
    LocalStore(home).write(image, ["acme/composite:1"])
    Layout(tmp_path / "layout", create=True).write(image, ["v1"])
    for ref in ("acme/composite:1", f"oci:{tmp_path / 'layout'}:v1"):
        sources = resolve_buildpack(ref, base=tmp_path, scratch=tmp_path / "s", home=home)
        assert _refs(sources)[0] == "test/composite@0.0.1" and len(sources) == 3


def test_image_without_package_labels_is_not_a_buildpackage(home: Path, tmp_path: Path) -> None:
    store = LocalStore(home)
    plain = random_image(layers=1)
    store.write(plain, ["acme/plain:1"])
    with pytest.raises(
        ImageError, match=r"no io\.buildpacks\.buildpack\.layers label \(not a buildpackage\)"
    ):
        resolve_buildpack("acme/plain:1", base=tmp_path, scratch=tmp_path, home=home)
    builder_like = set_labels(plain, {BUILDPACK_LAYERS_LABEL: "{}"})
    store.write(builder_like, ["acme/builder:1"])
    with pytest.raises(ImageError, match=r"a builder\? name its buildpacks by ID@VERSION"):
        resolve_buildpack("acme/builder:1", base=tmp_path, scratch=tmp_path, home=home)


def test_malformed_package_labels_name_the_label(home: Path, tmp_path: Path) -> None:
    bad = set_labels(
        random_image(layers=1), {BUILDPACK_LAYERS_LABEL: "{}", BUILDPACKAGE_METADATA_LABEL: "[1]"}
    )
    LocalStore(home).write(bad, ["acme/bad:1"])
    with pytest.raises(ImageError, match=r"label io\.buildpacks\.buildpackage\.metadata: "):
        resolve_buildpack("acme/bad:1", base=tmp_path, scratch=tmp_path, home=home)
    missing = set_labels(
        random_image(layers=1),
        {BUILDPACK_LAYERS_LABEL: "{}", BUILDPACKAGE_METADATA_LABEL: '{"id":"a","version":"1"}'},
    )
    LocalStore(home).write(missing, ["acme/bad:2"])
    with pytest.raises(
        ImageError, match=r"its entrypoint a@1 is not in the io\.buildpacks\.buildpack\.layers label"
    ):
        resolve_buildpack("acme/bad:2", base=tmp_path, scratch=tmp_path, home=home)


def test_unknown_plain_name_says_what_was_tried(home: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r'"acme/none:1" is not a directory, \.tgz, \.cnb file, buildpack of the'
    ):
        resolve_buildpack("acme/none:1", base=tmp_path, scratch=tmp_path, home=home)


def test_explicit_image_reference_that_is_missing_keeps_its_cause(home: Path, tmp_path: Path) -> None:
    Layout(tmp_path / "layout", create=True)
    with pytest.raises(ImageNotFound, match=r"failed to resolve buildpack oci:.*: no such image"):
        resolve_buildpack(f"oci:{tmp_path / 'layout'}:nope", base=tmp_path, scratch=tmp_path, home=home)
