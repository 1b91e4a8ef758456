"""Image extensions end to end on the bookworm stack (DET-16, EXP-2, EXP-12, REB-3, §5 exit codes).

The samples in samples/extensions: `apt` installs the app's Aptfile packages into the run image
(apt-get inside the sandbox, from the image's own Debian sources); `run-image` moves the app to
the run image BP_RUN_IMAGE names. Real bubblewrap, the shared bookworm stack cache.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest
from support.cli import ROOT, last_line, pybuild
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

from lifecycle.backends.store import LocalStore
from lifecycle.oci import mutate
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.tarball import LayerTar

BUILDER = "samples/extensions-builder"
SAMPLES = ROOT / "samples" / "extensions"
JQ_APP = str(SAMPLES / "jq-app")
GREETING = '{"greeting":"hello from jq-app"'


@pytest.fixture(scope="module")
def builder_home(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path, bwrap: Tool) -> Path:
    """A PYBUILD_HOME with the bookworm stack and the sample extensions builder, made once."""
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path_factory.mktemp("ext") / "home"
    use_stack_cache(home, stack_cache)
    env = {"PYBUILD_HOME": str(home)}
    pybuild("stack", "build", "stacks/bookworm", timeout=1800, env=env)
    pybuild("builder", "create", BUILDER, "--config", str(SAMPLES / "builder.toml"), env=env)
    return home


@pytest.fixture
def bookworm_home(builder_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYBUILD_HOME", str(builder_home))
    return builder_home


def _hello(image: str) -> str:
    return str(pybuild("run", image, "--process", "hello", check=False).stdout)


def _labels(home: Path, image: str) -> dict[str, str]:
    return LocalStore(home).image(image).labels


def test_apt_extension_puts_the_package_in_the_run_image(bookworm_home: Path) -> None:
    """Acceptance 1: with the extension the app runs jq; the same app without it has no jq."""
    built = pybuild("build", "jqapp", "--builder", BUILDER, "--path", JQ_APP, timeout=1200)
    assert "GENERATING" in built.stdout and "pybuild-samples/apt" in built.stdout
    assert GREETING in _hello("jqapp")
    labels = _labels(bookworm_home, "jqapp")
    assert labels["io.buildpacks.rebasable"] == "false"  # EXP-12: the Dockerfile did not opt in
    assert labels["io.pybuild.samples.apt"] == "jq"
    build_label = json.loads(labels["io.buildpacks.build.metadata"])
    assert [e["id"] for e in build_label["extensions"]] == ["pybuild-samples/apt"]

    pybuild("build", "plainapp", "--path", JQ_APP)  # the default builder has no extensions
    assert GREETING not in _hello("plainapp")
    assert "io.pybuild.samples.apt" not in _labels(bookworm_home, "plainapp")

    via_flag = pybuild("build", "flagapp", "--path", JQ_APP, "--extension", str(SAMPLES / "apt"))
    assert "pybuild-samples/apt" in via_flag.stdout
    assert GREETING in _hello("flagapp")


def test_rebase_refuses_an_extended_run_image_and_says_why(bookworm_home: Path) -> None:
    """REB-3: io.buildpacks.rebasable=false blocks rebase (exit 72), naming the extension."""
    pybuild("build", "jqrebase", "--builder", BUILDER, "--path", JQ_APP, timeout=1200)
    refused = pybuild("rebase", "jqrebase", "--run-image", "pybuild/run:bookworm-2", check=False)
    assert refused.returncode == 72
    message = refused.stderr.strip().splitlines()[-1]
    assert "pybuild-samples/apt" in message and "io.buildpacks.rebasable=false" in message
    assert "rebuild" in message


def test_extension_outputs_are_reproducible(bookworm_home: Path) -> None:
    """Acceptance 3: the same app and extensions give the same image digest twice."""
    first = pybuild("build", "repro1", "--builder", BUILDER, "--path", JQ_APP, "--clear-cache")
    second = pybuild("build", "repro2", "--builder", BUILDER, "--path", JQ_APP, "--clear-cache")
    assert last_line(first).startswith("sha256:")
    assert last_line(first) == last_line(second)


def test_run_image_switch_exports_on_it_and_rebase_follows_it(bookworm_home: Path, tmp_path: Path) -> None:
    """Acceptance 2: FROM-only run.Dockerfile; runImage names the new image; rebase follows it."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("hello: cat /etc/pybuild-release\n")
    switch = ["--env", "BP_RUN_IMAGE=pybuild/run:bookworm-2"]
    pybuild("build", "switched", "--builder", BUILDER, "--path", str(app), *switch)
    assert "VERSION=2" in _hello("switched")
    labels = _labels(bookworm_home, "switched")
    run_image = json.loads(labels["io.buildpacks.lifecycle.metadata"])["runImage"]
    assert run_image["image"] == "pybuild/run:bookworm-2"
    assert labels.get("io.buildpacks.rebasable") != "false"  # a switch alone stays rebasable

    store = LocalStore(bookworm_home)
    newer = _with_release(store, "pybuild/run:bookworm-2", "STACK=bookworm\nVERSION=3\n", tmp_path)
    store.write(newer, ["pybuild/run:bookworm-2"])
    pybuild("rebase", "switched")  # no --run-image: the label's run image, now newer
    assert "VERSION=3" in _hello("switched")


def _with_release(store: LocalStore, name: str, release: str, scratch: Path) -> Image:
    def fill(tar: LayerTar) -> None:
        tar.add_parents("/etc/pybuild-release")
        tar.add_file("/etc/pybuild-release", release.encode(), 0o644)

    layer = write_layer(scratch, fill)
    return mutate.append_layers(store.image(name), [layer], created_by=("test: patched release",))


def _extension(tmp_path: Path, generate: str, dockerfile: str | None = None) -> str:
    """A one-off extension whose bin/generate runs `generate` (and may write a run.Dockerfile)."""
    root = tmp_path / "ext"
    (root / "bin").mkdir(parents=True)
    (root / "extension.toml").write_text('api = "0.10"\n[extension]\nid = "test/bad"\nversion = "1"\n')
    script = "#!/bin/sh\nset -e\n" + generate + "\n"
    if dockerfile is not None:
        (root / "run.Dockerfile.in").write_text(dockerfile)
        script += 'cp "$CNB_EXTENSION_DIR/run.Dockerfile.in" "$CNB_OUTPUT_DIR/run.Dockerfile"\n'
    (root / "bin" / "generate").write_text(script)
    (root / "bin" / "generate").chmod(0o755)
    return str(root)


BAD = [
    ("generate-fails", "echo 'no luck' >&2; exit 3", None, 91, "bin/generate exited with 3"),
    (
        "unsupported-instruction",
        "",
        "ARG base_image\nFROM ${base_image}\nEXPOSE 8080\n",
        92,
        "EXPOSE",
    ),
    (
        "run-fails",
        "",
        "ARG base_image\nFROM ${base_image}\nRUN exit 7\n",
        102,
        "RUN",
    ),
    ("from-not-found", "", "FROM pybuild/run:no-such-image\n", 102, "pybuild/run:no-such-image"),
]


@pytest.mark.parametrize(("case", "generate", "dockerfile", "code", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_extension_output_fails_with_the_spec_exit_code(
    bookworm_home: Path,
    tmp_path: Path,
    case: str,
    generate: str,
    dockerfile: str | None,
    code: int,
    says: str,
) -> None:
    """Acceptance 4 (§5): 91 bin/generate failed, 92 other generate errors, 102 extend errors."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("hello: echo hi\n")
    extension = _extension(tmp_path, generate, dockerfile)
    failed = pybuild("build", f"bad-{case}", "--path", str(app), "--extension", extension, check=False)
    assert failed.returncode == code, failed.stdout + failed.stderr
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("ERROR: failed to") and says in message
    assert "Traceback" not in failed.stderr
    shutil.rmtree(tmp_path / "ext")


def test_builder_image_carries_extensions_and_order_extensions(home: Path, tmp_path: Path) -> None:
    """[[extensions]] in a builder: pack's labels, /cnb/extensions/..., /cnb/order.toml's order-extensions."""
    config = tmp_path / "builder.toml"
    config.write_text(
        f'[[buildpacks]]\nuri = "{ROOT}/buildpacks/procfile"\n'
        f'[[extensions]]\nuri = "{SAMPLES}/run-image"\n'
        '[[order-extensions]]\n[[order-extensions.group]]\nid = "pybuild-samples/run-image"\n'
        '[[order]]\n[[order.group]]\nid = "pybuild/procfile"\n'
        '[build]\nimage = "pybuild/build:tiny"\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
    )
    pybuild("builder", "create", "test/ext-builder", "--config", str(config))
    image = LocalStore(home).image("test/ext-builder")
    layers = json.loads(image.labels["io.buildpacks.extension.layers"])
    assert list(layers) == ["pybuild-samples/run-image"] and "0.1.0" in layers["pybuild-samples/run-image"]
    order = json.loads(image.labels["io.buildpacks.buildpack.order-extensions"])
    assert order == [{"group": [{"id": "pybuild-samples/run-image", "version": "0.1.0", "optional": True}]}]
    files = _files(image)
    assert "cnb/extensions/pybuild-samples_run-image/0.1.0/bin/generate" in files
    order_toml = tomllib.loads(files["cnb/order.toml"].decode())
    assert order_toml["order-extensions"][0]["group"][0]["id"] == "pybuild-samples/run-image"
    assert order_toml["order"][0]["group"][0]["id"] == "pybuild/procfile"

    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("hello: cat /etc/pybuild-release\n")
    pybuild(
        "build",
        "moved",
        "--builder",
        "test/ext-builder",
        "--path",
        str(app),
        "--env",
        "BP_RUN_IMAGE=pybuild/run:tiny-2",
    )
    assert "VERSION=2" in _hello("moved")


def _files(image: Image) -> dict[str, bytes]:
    """The last version of each regular file in the image's layers."""
    files: dict[str, bytes] = {}
    for layer in image.layers:
        with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name.lstrip("/")] = extracted.read()
    return files
