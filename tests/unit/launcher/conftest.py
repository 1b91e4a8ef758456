"""Builders for launch plans and layers dirs shared by the launcher unit tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from lifecycle.launcher import Process

LayerWriter = Callable[..., Path]


def process(type_: str = "web", *command: str, **fields: Any) -> Process:
    """A direct API 0.12 process unless `fields` say otherwise."""
    defaults: dict[str, Any] = {"buildpack_id": "acme/node", "buildpack_api": "0.12"}
    return Process(type=type_, command=command or ("/bin/true",), **{**defaults, **fields})


@pytest.fixture
def make_process() -> Callable[..., Process]:
    return process


@pytest.fixture
def write_layer(tmp_path: Path) -> LayerWriter:
    """Writes `<layers>/<escaped id>/<name>.toml` and the layer's files; exec.d files are executable."""

    def write(
        buildpack_id: str,
        name: str,
        files: Mapping[str, str | bytes] | None = None,
        *,
        launch: bool = True,
        layers_dir: Path | None = None,
    ) -> Path:
        buildpack_dir = (layers_dir or tmp_path / "layers") / buildpack_id.replace("/", "_")
        layer_dir = buildpack_dir / name
        layer_dir.mkdir(parents=True, exist_ok=True)
        (buildpack_dir / f"{name}.toml").write_text(f"[types]\nlaunch = {str(launch).lower()}\n")
        for relative, content in (files or {}).items():
            path = layer_dir / relative
            if relative.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            if relative.startswith("exec.d/"):
                path.chmod(0o755)
        return layer_dir

    return write
