"""Bad input to the store and stack commands: one line naming the file, a non-zero exit, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import pybuild
from support.images import random_image

from lifecycle.backends.store import LocalStore


def _one_error(proc, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ") and needle in errors[0], proc.stderr


def test_corrupt_index_json_names_the_file(tmp_path: Path) -> None:
    store = LocalStore()
    store.write(random_image(layers=1, seed=1), ["app"])
    index = store.layout.root / "index.json"
    good = index.read_bytes()
    index.write_text('{"manifests": [')
    try:
        _one_error(pybuild("images", check=False), str(index))
        _one_error(pybuild("inspect", "app", check=False), "index.json")
    finally:
        index.write_bytes(good)


def test_missing_blob_names_its_path() -> None:
    store = LocalStore()
    image = random_image(layers=1, seed=2)
    store.write(image, ["app"])
    blob = store.layout.root / "blobs" / "sha256" / image.config_descriptor.digest.split(":")[1]
    blob.unlink()
    try:
        _one_error(pybuild("inspect", "app", check=False), str(blob))
    finally:
        store.delete("app")


def test_malformed_stack_definition_names_the_file(tmp_path: Path) -> None:
    stack = tmp_path / "broken"
    stack.mkdir()
    (stack / "stack.toml").write_text(
        'id = "io.example.broken"\nname = "broken"\n[run]\npackages = "busybox"\n'
    )
    _one_error(pybuild("stack", "build", str(stack), check=False), "stack.toml")
    (stack / "stack.toml").write_text("id = [")
    _one_error(pybuild("stack", "build", str(stack), check=False), "stack.toml")


def test_inspect_json_is_machine_readable() -> None:
    store = LocalStore()
    image = random_image(layers=2, seed=3)
    store.write(image, ["app:v1"])
    info = json.loads(pybuild("inspect", "app:v1", "--output", "json").stdout)
    assert info["digest"] == image.digest
    assert [layer["diffID"] for layer in info["layers"]] == image.diff_ids
    listed = json.loads(pybuild("images", "--output", "json").stdout)
    assert [row["name"] for row in listed] == ["app:v1"]
