"""LocalStore specifics: where it lives, plain names, the listing."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.images import CREATED, random_image

from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore, StoredImage, pybuild_home


def test_home_is_pybuild_home_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYBUILD_HOME", str(tmp_path / "home"))
    assert pybuild_home() == tmp_path / "home"


def test_home_falls_back_to_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYBUILD_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert pybuild_home() == tmp_path / "data" / "pybuild"


def test_home_defaults_to_local_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYBUILD_HOME")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert pybuild_home() == tmp_path / ".local" / "share" / "pybuild"


def test_the_store_is_an_oci_layout_under_home(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    image = random_image()
    store.write(image, ["myapp"])
    assert Layout(tmp_path / "store").resolve("myapp:latest") == image.digest


def test_plain_names_mean_latest_for_every_operation(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    image = random_image()
    store.write(image, ["myapp"])
    assert store.tags() == ["myapp:latest"]
    assert store.resolve("myapp") == image.digest
    assert store.image("myapp").digest == image.digest
    store.delete("myapp")
    assert store.tags() == []


def test_list_gives_tag_digest_created_and_compressed_size(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    image = random_image(layers=2)
    store.write(image, ["myapp:1"])
    size = sum(layer.size for layer in image.layers) + len(image.raw_config)
    assert store.list() == [StoredImage("myapp:1", image.digest, CREATED, size)]


def test_gc_through_the_store_frees_deleted_images(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write(random_image(seed=1), ["a"])
    store.write(random_image(seed=2), ["b"])
    store.delete("b")
    assert store.gc() > 0
    assert store.tags() == ["a:latest"]
