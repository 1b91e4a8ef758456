"""The export phase over an in-memory run image (EXP-1..11)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.cnb import write_toml
from lifecycle.cnb.layers import ConfigMetadata, MetadataProcess, Slice
from lifecycle.oci import validate
from lifecycle.phases.export import Exporter, ExportFailed, ExportInputs
from lifecycle.phases.launch import launch_files

from .fakes import descriptor, write


def _inputs(tmp_path: Path, **changes: object) -> ExportInputs:
    layers, app = tmp_path / "layers", tmp_path / "app"
    write(layers / "a_bp" / "zeta.toml", "[types]\nlaunch = true\n[metadata]\nv = 1\n")
    write(layers / "a_bp" / "zeta" / "bin" / "z", "z")
    write(layers / "a_bp" / "alpha.toml", "[types]\nlaunch = true\ncache = true\n")
    write(layers / "a_bp" / "alpha" / "lib" / "a.so", "a")
    write(layers / "a_bp" / "cache-only.toml", "[types]\ncache = true\n")
    write(layers / "a_bp" / "cache-only" / "f", "c")
    write(app / "static" / "index.html", "<html>")
    write(app / "main.py", "print(1)")
    group = (descriptor("a/bp"),)
    metadata = ConfigMetadata(
        processes=(
            MetadataProcess(type="web", command=("python3", "main.py"), buildpack_id="a/bp", direct=True),
        ),
        buildpack_default_process_type="web",
        slices=(Slice(paths=("static",)),),
    )
    (layers / "config").mkdir()
    write_toml(layers / "config" / "metadata.toml", metadata)
    values: dict[str, object] = dict(
        run_image=random_image(layers=2, seed=7),
        run_image_name="pybuild/run:test",
        run_image_reference="pybuild/run@sha256:" + "0" * 64,
        group=group,
        metadata=metadata,
        layers_dir=layers,
        app_dir=app,
        scratch=tmp_path / "blobs",
        launch_files=lambda meta: launch_files(meta, layers, group),
    )
    values.update(changes)
    return ExportInputs(**values)  # type: ignore[arg-type]


def _names(image, index: int) -> list[str]:  # type: ignore[no-untyped-def]
    with image.layers[index].uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return [m.name for m in tar]


def test_layers_follow_lifecycle_order_over_the_run_image(tmp_path: Path) -> None:
    """EXP-1, EXP-2, EXP-4: run layers, launch layers by name, slices + rest, launcher, config, processes."""
    inputs = _inputs(tmp_path)
    image = Exporter(inputs).export()
    validate(image)
    assert image.layers[:2] == inputs.run_image.layers
    assert len(image.layers) == 2 + 2 + 2 + 3
    assert "/layers/a_bp/alpha/lib/a.so" in _names(image, 2)
    assert "/layers/a_bp/zeta/bin/z" in _names(image, 3)
    assert "/workspace/static/index.html" in _names(image, 4)
    assert "/workspace/main.py" in _names(image, 5) and "/workspace/static/index.html" not in _names(image, 5)
    assert _names(image, 6)[-1] == "/cnb/lifecycle/launcher"
    assert "/layers/config/metadata.toml" in _names(image, 7)
    assert _names(image, 8)[-1] == "/cnb/process/web"
    assert all("cache-only" not in n for i in range(2, 9) for n in _names(image, i))


def test_config_has_cnb_env_entrypoint_labels_and_base_annotations(tmp_path: Path) -> None:
    """EXP-8..11 and the OCI base annotations."""
    inputs = _inputs(tmp_path)
    image = Exporter(inputs).export()
    config = image.config.config
    env = config.env_dict()
    assert config.entrypoint == ["/cnb/process/web"]
    assert config.working_dir == "/workspace"
    assert env["CNB_LAYERS_DIR"] == "/layers" and env["CNB_APP_DIR"] == "/workspace"
    assert env["PATH"].startswith("/cnb/process:/cnb/lifecycle:")
    assert env["CNB_PLATFORM_API"] == "0.15"
    meta = json.loads(config.labels["io.buildpacks.lifecycle.metadata"])  # type: ignore[index]
    assert meta["runImage"]["topLayer"] == inputs.run_image.diff_ids[-1]
    assert meta["runImage"]["image"] == "pybuild/run:test"
    assert list(meta["buildpacks"][0]["layers"]) == ["alpha", "zeta"]
    assert meta["buildpacks"][0]["layers"]["zeta"]["data"] == {"v": 1}
    assert config.labels["io.buildpacks.project.metadata"] == "{}"  # type: ignore[index]
    assert config.labels["org.example.seed"] == "7"  # type: ignore[index]
    assert image.annotations["org.opencontainers.image.base.digest"] == inputs.run_image.digest
    assert image.config.created == "1980-01-01T00:00:01Z"


def test_export_is_reproducible(tmp_path: Path) -> None:
    """EXP-6."""
    first = Exporter(_inputs(tmp_path / "one")).export()
    second = Exporter(_inputs(tmp_path / "two")).export()
    assert first.digest == second.digest


def test_unknown_process_type_fails_with_exit_62(tmp_path: Path) -> None:
    """EXP-8."""
    with pytest.raises(ExportFailed) as caught:
        Exporter(_inputs(tmp_path, process_type="nope")).export()
    assert caught.value.exit_code == 62
