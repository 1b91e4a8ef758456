"""`pybuild rebase` end to end on the tiny stack: patched base, no-op, back, refusals, adoption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import TINY_BUILDER, last_line, pybuild
from support.tools import Tool

from lifecycle.backends.store import LocalStore
from lifecycle.oci import ContainerConfig, ImageConfig, LayerTar, validate, write_layer
from lifecycle.oci.mutate import new_image
from lifecycle.platform.rebase import RebaseOptions, rebase

APP = "samples/procfile-shell"


def _build(name: str) -> str:
    return last_line(pybuild("-q", "build", name, "--path", APP, "--builder", TINY_BUILDER))


def _app_layers(name: str) -> list[str]:
    info = json.loads(pybuild("inspect", name, "-o", "json").stdout)
    top = info["runImage"]["topLayer"]
    diff_ids = [layer["diffID"] for layer in info["layers"]]
    return diff_ids[diff_ids.index(top) + 1 :]


def _release(name: str) -> str:
    """/etc/pybuild-release as the app sees it, through the launcher (LCH-2 user command)."""
    return pybuild(
        "run", name, "--entrypoint", "/cnb/lifecycle/launcher", "--", "cat /etc/pybuild-release"
    ).stdout


def test_rebase_to_patched_base_keeps_app_layers_and_runs(home: Path) -> None:
    _build("app")
    before = _app_layers("app")
    assert "VERSION=1" in _release("app")
    out = pybuild("rebase", "app", "--run-image", "pybuild/run:tiny-2")
    assert "base layers replaced" in out.stdout
    assert _app_layers("app") == before
    store = LocalStore()
    rebased, v2 = store.image("app"), store.image("pybuild/run:tiny-2")
    validate(rebased)
    assert rebased.layers[: len(v2.layers)] == v2.layers
    assert rebased.annotations["org.opencontainers.image.base.digest"] == v2.digest
    assert "VERSION=2" in _release("app")
    assert "hello from procfile-shell" in pybuild("run", "app", "--process", "hello").stdout


def test_second_rebase_is_a_no_op_and_rebasing_back_restores_the_build(home: Path) -> None:
    built = _build("app")
    rebased = last_line(pybuild("-q", "rebase", "app", "--run-image", "pybuild/run:tiny-2"))
    again = pybuild("rebase", "app")
    assert "already up to date" in again.stdout
    assert last_line(again) == rebased
    back = pybuild("-q", "rebase", "app", "--run-image", "pybuild/run:tiny")
    assert last_line(back) == built  # v1 -> v2 -> v1 gives the built image back, byte for byte


def test_skopeo_shows_new_labels_and_annotations(home: Path, skopeo: Tool) -> None:
    _build("app")
    pybuild("rebase", "app", "--run-image", "pybuild/run:tiny-2")
    v2 = LocalStore().image("pybuild/run:tiny-2")
    raw = skopeo("inspect", "--raw", f"oci:{home / 'store'}:app:latest").stdout
    info = json.loads(skopeo("inspect", f"oci:{home / 'store'}:app:latest").stdout)
    assert json.loads(raw)["annotations"]["org.opencontainers.image.base.digest"] == v2.digest
    assert "version 2" in info["Labels"]["io.buildpacks.base.description"]
    meta = json.loads(info["Labels"]["io.buildpacks.lifecycle.metadata"])
    assert meta["runImage"]["topLayer"] == v2.diff_ids[-1]


@pytest.mark.parametrize("layout", [False, True])
def test_rebase_reads_no_layer_bytes(home: Path, tmp_path: Path, layout: bool) -> None:
    _build("app")
    ref = "app"
    if layout:
        ref = f"oci:{tmp_path / 'layout'}:app"
        pybuild("tag", "app", ref)
    report = rebase(RebaseOptions(ref, run_image="pybuild/run:tiny-2"))
    assert report.result is not None and not report.result.up_to_date
    assert report.layer_bytes_read == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--run-image", "pybuild/build:tiny"], "not the app's run image"),
        (["--run-image", "pybuild/run:arm"], "linux/arm64"),
        (["--run-image", "pybuild/run:unrebasable"], "rebasable=false"),
    ],
)
def test_refusals_exit_72_and_leave_the_tag(home: Path, args: list[str], needle: str) -> None:
    digest = _build("app")
    store = LocalStore()
    v2 = store.image("pybuild/run:tiny-2")
    from lifecycle.oci import mutate

    store.write(mutate.edit_image_config(v2, architecture="arm64"), ["pybuild/run:arm"])
    unrebasable = mutate.set_labels(store.image("app"), {"io.buildpacks.rebasable": "false"})
    if "unrebasable" in args[-1]:
        store.write(unrebasable, ["app"])
        digest = unrebasable.digest
        store.write(v2, ["pybuild/run:unrebasable"])
    proc = pybuild("rebase", "app", *args, check=False)
    assert proc.returncode == 72, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and needle in errors[0]
    assert store.resolve("app") == digest


def test_image_without_metadata_or_corrupt_label_is_refused(home: Path) -> None:
    store = LocalStore()
    plain = store.image("pybuild/run:tiny")
    store.write(plain, ["plain"])
    proc = pybuild("rebase", "plain", check=False)
    assert proc.returncode == 72 and "--base-image" in proc.stderr
    from lifecycle.oci import mutate

    _build("app")
    store.write(mutate.set_labels(store.image("app"), {"io.buildpacks.lifecycle.metadata": "{oops"}), ["bad"])
    proc = pybuild("rebase", "bad", check=False)
    assert proc.returncode == 72 and "not valid JSON" in proc.stderr


def test_from_scratch_image_is_adopted_then_follows_its_base(home: Path, tmp_path: Path) -> None:
    """The Cloud Run flow: adopt a FROM-scratch image, publish a patched base, plain rebase."""
    busybox = Path("/bin/busybox").read_bytes()

    def fill(tar: LayerTar) -> None:
        tar.add_file("/app/busybox", busybox, 0o755)

    layer = write_layer(tmp_path / "blobs", fill)
    config = ImageConfig(
        config=ContainerConfig(entrypoint=["/app/busybox", "cat"], cmd=["/etc/pybuild-release"])
    )
    store = LocalStore()
    store.write(new_image(config, [layer]), ["scratch-app"])
    pybuild("rebase", "scratch-app", "--base-image", "pybuild/run:tiny")
    first = pybuild("run", "scratch-app").stdout
    pybuild("tag", "pybuild/run:tiny-2", "pybuild/run:tiny")  # the patched base is published
    out = pybuild("rebase", "scratch-app")
    assert "base layers replaced" in out.stdout
    second = pybuild("run", "scratch-app").stdout
    assert "VERSION=1" in first and "VERSION=2" in second
    proc = pybuild("rebase", "scratch-app", "--base-image", "pybuild/run:tiny", check=False)
    assert proc.returncode == 72 and "already has a base" in proc.stderr


def test_previous_image_and_report(home: Path, tmp_path: Path) -> None:
    """REB-1 --previous-image reads one image and writes another; REB-8 report.toml."""
    import tomllib

    built = _build("app")
    report = tmp_path / "report.toml"
    args = ["rebase", "app:rebased", "--previous-image", "app", "--run-image", "pybuild/run:tiny-2"]
    out = pybuild("-q", *args, "--report", str(report))
    store = LocalStore()
    assert store.resolve("app") == built  # the source is untouched
    assert store.resolve("app:rebased") == last_line(out)
    written = tomllib.loads(report.read_text())["image"]
    assert written["digest"] == last_line(out) and written["tags"] == ["app:rebased"]
