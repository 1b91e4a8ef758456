"""The /cnb/lifecycle layer: which build images get it, builder.toml's [lifecycle], reproducibility."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from lifecycle.errors import ConfigError
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.models import ImageConfig
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.lifecycle_layer import (
    LifecycleSetting,
    image_python,
    lifecycle_layer,
    lifecycle_setting,
)

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def _image(tmp_path: Path, *layers: dict[str, bytes], architecture: str = "amd64") -> Image:
    def layer(files: dict[str, bytes]):  # type: ignore[no-untyped-def]
        def fill(tar: LayerTar) -> None:
            for name, data in sorted(files.items()):
                tar.add_parents(name)
                tar.add_file(name, data, mode=0o755)

        return write_layer(tmp_path, fill)

    return new_image(ImageConfig(architecture=architecture), [layer(files) for files in layers])


def test_python_of_the_image_is_found_and_a_whiteout_above_hides_it(tmp_path: Path) -> None:
    base = {"/usr/bin/python3.11": b"elf", "/etc/os-release": b"x"}
    assert image_python(_image(tmp_path, base)) == "3.11"
    assert image_python(_image(tmp_path, base, {"/usr/bin/.wh.python3.11": b""})) is None
    assert image_python(_image(tmp_path, {"/bin/busybox": b"elf"})) is None
    assert image_python(_image(tmp_path, base, {"/usr/local/bin/python3.12": b"elf"})) == "3.12"


def test_incompatible_build_images_are_skipped_with_a_line(tmp_path: Path) -> None:
    lines: list[str] = []
    skipped = [
        lifecycle_layer(_image(tmp_path, {"/bin/sh": b""}), LifecycleSetting(), tmp_path, lines.append),
        lifecycle_layer(
            _image(tmp_path, {"/usr/bin/python3.99": b""}), LifecycleSetting(), tmp_path, lines.append
        ),
        lifecycle_layer(
            _image(tmp_path, {f"/usr/bin/python{RUNNING}": b""}, architecture="s390x-nope"),
            LifecycleSetting(),
            tmp_path,
            lines.append,
        ),
        lifecycle_layer(_image(tmp_path), LifecycleSetting(install=False), tmp_path, lines.append),
    ]
    assert skipped == [None, None, None, None]
    assert "no python3" in lines[0] and "Python 3.99" in lines[1] and "s390x-nope" in lines[2]
    assert "pybuild = false" in lines[3]


def test_layer_is_reproducible_and_holds_the_entry_points(tmp_path: Path) -> None:
    image = _image(tmp_path, {f"/usr/bin/python{RUNNING}": b"elf"})
    lines: list[str] = []
    first = lifecycle_layer(image, LifecycleSetting(version="9.9.9"), tmp_path / "a", lines.append)
    second = lifecycle_layer(image, LifecycleSetting(), tmp_path / "b", lines.append)
    assert first is not None and second is not None
    assert first.digest == second.digest
    assert "pybuild installs itself" in lines[0]
    with first.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        members = {m.name.lstrip("/"): m for m in tar}
    assert members["cnb/lifecycle/exporter"].linkname == "lifecycle"
    assert "cnb/lifecycle/lib/lifecycle/cli/dispatch.py" in members
    assert "cnb/lifecycle/lib/pydantic_core/__init__.py" in members
    assert {m.mtime for m in members.values()} == {315532801}


def test_lifecycle_table_of_builder_toml(tmp_path: Path) -> None:
    path = tmp_path / "builder.toml"
    path.write_text('[lifecycle]\nversion = "0.20.0"\npybuild = false\n')
    assert lifecycle_setting(path) == LifecycleSetting(install=False, version="0.20.0")
    path.write_text("[build]\nimage = 'x'\n")
    assert lifecycle_setting(path) == LifecycleSetting()
    path.write_text('[lifecycle]\npybuild = "yes"\n')
    with pytest.raises(ConfigError, match=r"lifecycle\.pybuild must be true or false"):
        lifecycle_setting(path)
