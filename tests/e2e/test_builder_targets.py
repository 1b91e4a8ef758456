"""Builders are OCI images in any target: ``pybuild builder create`` to ``oci:``, a registry
(``--publish``) and the Docker daemon (``--daemon``), read back by skopeo/docker for pack's labels,
and builds that name a builder image by reference instead of a store name (tiny stack)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.cli import ROOT, pybuild
from support.dockerd import DockerDaemon
from support.registry import Registry
from support.tools import Tool

TINY_TOML = ROOT / "builders" / "tiny.toml"
COMPOSITE_TOML = ROOT / "tests" / "fixtures" / "builders" / "composite.toml"


def _pack_labels(labels: dict[str, str], run_image: str) -> dict[str, Any]:
    """pack's three builder labels, parsed; the run image as pack reads it."""
    metadata = json.loads(labels["io.buildpacks.builder.metadata"])
    assert metadata["stack"]["runImage"]["image"] == run_image
    assert metadata["createdBy"]["name"] == "pybuild"
    return {
        "order": json.loads(labels["io.buildpacks.buildpack.order"]),
        "layers": json.loads(labels["io.buildpacks.buildpack.layers"]),
    }


def test_builder_to_an_oci_layout_is_inspected_and_used_by_reference(
    home: Path, tmp_path: Path, skopeo: Tool
) -> None:
    ref = f"oci:{tmp_path / 'builders'}:tiny"
    created = pybuild("builder", "create", ref, "--config", str(TINY_TOML))
    assert "Not installing pybuild under /cnb/lifecycle: the build image has no python3" in created.stdout
    digest = created.stdout.strip().splitlines()[-1]
    inspected = json.loads(skopeo("inspect", ref).stdout)
    assert inspected["Digest"] == digest
    labels = _pack_labels(inspected["Labels"], "pybuild/run:tiny")
    assert labels["order"] == [{"group": [{"id": "pybuild/procfile", "version": "0.1.0"}]},
                               {"group": [{"id": "pybuild/static", "version": "0.1.0"}]}]  # fmt: skip
    assert set(labels["layers"]) == {"pybuild/procfile", "pybuild/static"}
    info = json.loads(pybuild("builder", "inspect", ref, "-o", "json").stdout)
    assert [bp["id"] for bp in info["buildpacks"]] == ["pybuild/procfile", "pybuild/static"]
    assert info["runImages"] == [{"image": "pybuild/run:tiny", "mirrors": []}]
    assert not (home / "builders" / "oci__").exists()  # the image is the builder: no store copy
    pybuild("build", "app", "--path", "samples/procfile-shell", "--builder", ref)
    assert "hello from procfile-shell" in pybuild("run", "app", "--process", "hello").stdout


def test_builder_published_to_a_registry_keeps_env_and_system_and_builds_by_reference(
    home: Path, registry: Registry, skopeo: Tool
) -> None:
    """BLD-8 operator env and DET-13 system buildpacks travel in the image, not in a store copy."""
    ref = f"{registry.host}/e2e-builders/composite:1"
    created = pybuild("builder", "create", ref, "--config", str(COMPOSITE_TOML), "--publish")
    assert created.stdout.strip().splitlines()[-1].startswith("sha256:")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    labels = _pack_labels(inspected["Labels"], "pybuild/run:tiny")
    assert labels["order"] == [{"group": [{"id": "test/composite", "version": "0.0.1"}]}]
    assert {"test/composite", "test/env-printer", "test/sys-info", "pybuild/procfile"} == set(
        labels["layers"]
    )
    info = json.loads(pybuild("builder", "inspect", f"docker://{ref}", "-o", "json").stdout)
    assert info["runImages"] == [{"image": "pybuild/run:tiny", "mirrors": ["mirror.example/run:tiny"]}]
    out = pybuild("build", "app", "--path", "samples/procfile-shell", "--builder", ref).stdout
    detected = out.split("===> BUILDING")[0]
    assert "test/env-printer 0.0.1" in detected and "test/sys-info 0.0.1" in detected
    assert "pybuild/procfile 0.1.0" in detected  # the system post buildpack came from the label
    assert "OPERATOR_SETTING=from-builder" in out
    assert "hello from procfile-shell" in pybuild("run", "app", "--process", "hello").stdout


def test_builder_written_into_the_daemon(home: Path, dockerd: DockerDaemon) -> None:
    pybuild("builder", "create", "pybuild-e2e/builder:tiny", "--config", str(TINY_TOML), "--daemon")
    raw = dockerd.cli("image", "inspect", "pybuild-e2e/builder:tiny").stdout
    labels = json.loads(raw)[0]["Config"]["Labels"]
    assert set(_pack_labels(labels, "pybuild/run:tiny")["layers"]) == {
        "pybuild/procfile",
        "pybuild/static",
    }
    listed = pybuild("builder", "inspect", "docker-daemon:pybuild-e2e/builder:tiny").stdout
    assert "Group #1: pybuild/procfile@0.1.0" in listed


def test_publish_and_daemon_together_and_a_non_builder_image_are_refused(home: Path) -> None:
    both = pybuild("builder", "create", "x", "--config", str(TINY_TOML), "--publish", "--daemon", check=False)
    assert both.returncode == 3 and "exclude each other" in both.stderr  # usage: CNB exit 3
    proc = pybuild("builder", "inspect", "pybuild/run:tiny", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "pybuild/run:tiny is not a builder image" in proc.stderr
    missing = pybuild("builder", "inspect", "no/such-builder", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
