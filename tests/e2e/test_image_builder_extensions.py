"""A builder that is only an image carries its image extensions (DET-16): `pybuild builder create`
to `oci:DIR`, then `pybuild build --builder oci:DIR` runs the extension from the image's
`io.buildpacks.extension.layers` and order-extensions labels. Tiny stack, real bubblewrap."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import ROOT, pybuild

SAMPLES = ROOT / "samples" / "extensions"


def _builder_toml(tmp_path: Path) -> Path:
    config = tmp_path / "builder.toml"
    config.write_text(
        f'[[buildpacks]]\nuri = "{ROOT}/buildpacks/procfile"\n'
        f'[[extensions]]\nuri = "{SAMPLES}/run-image"\n'
        '[[order-extensions]]\n[[order-extensions.group]]\nid = "pybuild-samples/run-image"\n'
        '[[order]]\n[[order.group]]\nid = "pybuild/procfile"\n'
        '[build]\nimage = "pybuild/build:tiny"\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
    )
    return config


def test_image_only_builder_runs_its_extension(home: Path, tmp_path: Path) -> None:
    """The run-image extension, read from the builder image alone, moves the app to tiny-2."""
    layout = tmp_path / "builder-oci"
    pybuild("builder", "create", f"oci:{layout}:ext", "--config", str(_builder_toml(tmp_path)))
    assert not (home / "builders" / f"oci_{str(layout).replace('/', '_')}_ext").exists()  # no builder dir
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("hello: cat /etc/pybuild-release\n")
    builder = ("--builder", f"oci:{layout}:ext", "--path", str(app))

    moved = pybuild("build", "moved", *builder, "--env", "BP_RUN_IMAGE=pybuild/run:tiny-2")
    assert "pybuild-samples/run-image" in moved.stdout
    assert "VERSION=2" in pybuild("run", "moved", "--process", "hello").stdout
    inspect = json.loads(pybuild("inspect", "moved", "--output", "json").stdout)
    assert "pybuild/run:tiny-2" in json.dumps(inspect)

    stayed = pybuild("build", "stayed", *builder)  # bin/detect fails without BP_RUN_IMAGE: no switch
    assert "VERSION=2" not in pybuild("run", "stayed", "--process", "hello").stdout
    assert "Run image: " not in stayed.stdout
