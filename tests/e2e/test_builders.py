"""Builders from pack's builder.toml: composite order, operator env, system buildpacks, mirrors."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import ROOT, pybuild

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
