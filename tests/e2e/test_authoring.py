"""`pybuild buildpack new|test|validate` through the CLI: skeletons that build and run, the host
inner loop with CNB exit codes (DET-5, DET-15, BLD-1), and one-line errors for bad input (GEN-1, GEN-3).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, pybuild
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

APP = str(ROOT / "samples" / "procfile-shell")


def _new(tmp_path: Path, *args: str, name: str = "hello") -> Path:
    path = tmp_path / name
    pybuild("buildpack", "new", f"acme/{name}", "--path", str(path), *args)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _served(image: str) -> Iterator[str]:
    """Run the image's default process with PORT set; yield the first page it serves."""
    port = _free_port()
    argv = [sys.executable, "-m", "lifecycle", "run", image, "-e", f"PORT={port}"]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            yield _first_page(port, proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _first_page(port: int, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"the web process did not answer on port {port}") from None
            time.sleep(0.3)


def _errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]


@pytest.fixture
def bookworm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_cache: Path, bwrap: Tool) -> Path:
    require_tool("mmdebstrap", "mmdebstrap")
    home = tmp_path / "bookworm-home"
    use_stack_cache(home, stack_cache)
    monkeypatch.setenv("PYBUILD_HOME", str(home))
    return home


@pytest.fixture
def python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`#!/usr/bin/env python3` finds a Python 3 on the host, as `buildpack test` runs there."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def test_bash_skeleton_builds_a_sample_app_on_tiny_and_runs_its_processes(home: Path, tmp_path: Path) -> None:
    bp = _new(tmp_path)
    build = pybuild("build", "hello-app", "--path", APP, "--buildpack", str(bp), "--builder", TINY_BUILDER)
    assert "Making layer hello" in build.stdout

    hello = pybuild("run", "hello-app", "--process", "hello").stdout
    assert "Hello from acme/hello 0.0.1 on" in hello and "running as uid 1000" in hello
    with _served("hello-app") as page:
        assert "<h1>Hello from acme/hello 0.0.1</h1>" in page
    inspect = json.loads(pybuild("inspect", "hello-app", "--output", "json").stdout)
    assert "acme/hello" in json.dumps(inspect)


def test_bash_skeleton_greeting_comes_from_build_env_through_launch_env(home: Path, tmp_path: Path) -> None:
    bp = _new(tmp_path)
    pybuild(
        "build", "howdy", "--path", APP, "--buildpack", str(bp), "--builder", TINY_BUILDER,
        "--env", "BP_GREETING=Howdy",
    )  # fmt: skip

    assert "Howdy from acme/hello" in pybuild("run", "howdy", "--process", "hello").stdout
    overridden = pybuild("run", "howdy", "--process", "hello", "-e", "HELLO_GREETING=Hi").stdout
    assert "Hi from acme/hello" in overridden  # env.launch .default yields to the app's env


def test_python_skeleton_builds_a_sample_app_on_bookworm_and_runs_it(
    bookworm_home: Path, tmp_path: Path
) -> None:
    """bin/detect, bin/build and both processes are Python: bookworm's build and run images have python3."""
    bp = _new(tmp_path, "--language", "python", name="pyhello")
    assert (bp / "bin" / "build").read_text().startswith("#!/usr/bin/env python3\n")
    app = str(ROOT / "samples" / "python-http")
    build = pybuild("build", "pyhello-app", "--path", app, "--buildpack", str(bp), timeout=1200)
    assert "Making layer hello" in build.stdout

    assert "Hello from acme/pyhello 0.0.1 on" in pybuild("run", "pyhello-app", "--process", "hello").stdout
    with _served("pyhello-app") as page:
        assert "<h1>Hello from acme/pyhello 0.0.1</h1>" in page


@pytest.mark.parametrize("language", ["bash", "python"])
def test_buildpack_test_shows_layers_processes_and_env(
    tmp_path: Path, language: str, python_on_path: None
) -> None:
    bp = _new(tmp_path, "--language", language)
    proc = pybuild("buildpack", "test", str(bp), "--path", APP, "--env", "BP_GREETING=Howdy", "-o", "json")
    report = json.loads(proc.stdout)

    assert "Making layer hello" in proc.stderr  # live output goes to stderr with --output json
    (layer,) = report["layers"]
    assert layer["name"] == "hello" and layer["types"] == {"launch": True, "build": False, "cache": False}
    assert len(layer["metadata"]["content-hash"]) == 64 and layer["size"] > 0
    assert {(p["type"], p["default"]) for p in report["processes"]} == {("web", True), ("hello", False)}
    assert {"name": "HELLO_GREETING", "op": "default", "value": "Howdy"} in report["launch_env"]
    assert {"name": "PATH", "op": "prepend", "value": "/layers/acme_hello/hello/bin", "delim": ":"} in report[
        "launch_env"
    ]
    assert report["plan"] == ["hello"] and report["build_env"] == []


def test_buildpack_test_text_output_and_layer_reuse(tmp_path: Path) -> None:
    bp = _new(tmp_path)
    layers = tmp_path / "layers"
    first = pybuild("buildpack", "test", str(bp), "--path", APP, "--layers", str(layers)).stdout
    second = pybuild("buildpack", "test", str(bp), "--path", APP, "--layers", str(layers)).stdout

    assert "===> DETECTING" in first and "===> BUILDING" in first and "Making layer hello" in first
    assert "  hello  [launch]" in first and "web (default): hello-web" in first
    assert "HELLO_GREETING default 'Hello'" in first
    assert "Reusing layer hello (content hash" in second
    assert (layers / "acme_hello" / "hello.toml").is_file()


@pytest.mark.parametrize(
    ("script", "edit", "code", "needle"),
    [
        ("detect", ("set -euo pipefail\n", "set -euo pipefail\nexit 100\n"), 20, "stepped aside"),
        ("detect", ("set -euo pipefail\n", "set -euo pipefail\nexit 3\n"), 21, "bin/detect exited with 3"),
        ("build", ("set -euo pipefail\n", "set -euo pipefail\nexit 1\n"), 51, "bin/build exited with 1"),
    ],
)
def test_buildpack_test_exits_with_cnb_codes(
    tmp_path: Path, script: str, edit: tuple[str, str], code: int, needle: str
) -> None:
    bp = _new(tmp_path)
    path = bp / "bin" / script
    path.write_text(path.read_text().replace(*edit, 1))
    proc = pybuild("buildpack", "test", str(bp), "--path", APP, check=False)

    errors = _errors(proc)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert needle in errors[-1], proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("bad id!",), 'ID "bad id!" is not a valid buildpack ID'),
        (("config",), 'ID "config" is reserved'),
        (("acme/x", "--api", "0.99"), '--api "0.99" is not supported'),
        (("acme/x", "--api", "0.8"), '--api "0.8" is not supported for a new buildpack (use 0.10 - 0.12'),
        (("acme/x", "--api", "twelve"), '--api "twelve" is not an API version'),
        (("acme/x", "--version", "1 0"), '--version "1 0" is not a version'),
        (("acme/x", "--target", "linux//x"), '--target "linux//x" is not OS[/ARCH[/VARIANT]]'),
    ],
)
def test_new_refuses_bad_input_naming_the_field(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    proc = pybuild("buildpack", "new", *args, "--path", str(tmp_path / "bp"), check=False)

    errors = _errors(proc)
    assert proc.returncode == 3
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: failed to create buildpack: {needle}"), errors
    assert not (tmp_path / "bp").exists()


def test_new_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "bp").mkdir()
    (tmp_path / "bp" / "keep.txt").write_text("mine")
    proc = pybuild("buildpack", "new", "acme/x", "--path", str(tmp_path / "bp"), check=False)

    assert proc.returncode == 3
    expected = (
        f"ERROR: failed to create buildpack: --path {tmp_path / 'bp'} is not empty (choose another --path)"
    )
    assert _errors(proc) == [expected]
    assert [p.name for p in (tmp_path / "bp").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("edit", "code", "needle"),
    [
        (
            ("buildpack.toml", 'api = "0.12"', 'api = "0.99"'),
            12,
            'buildpack.toml: api "0.99" is not supported',
        ),
        (("buildpack.toml", 'id = "acme/hello"\n', ""), 3, "buildpack.toml: buildpack.id is missing"),
        (("buildpack.toml", 'version = "0.0.1"\n', ""), 3, "buildpack.toml: buildpack.version is missing"),
        (
            ("buildpack.toml", 'id = "acme/hello"', 'id = "sbom"'),
            3,
            'buildpack.toml: buildpack.id: "sbom" is',
        ),
    ],
)
def test_validate_names_the_file_and_field(
    tmp_path: Path, edit: tuple[str, str, str], code: int, needle: str
) -> None:
    bp = _new(tmp_path)
    name, old, new = edit
    (bp / name).write_text((bp / name).read_text().replace(old, new, 1))

    for command in ("validate", "test"):
        args = ("buildpack", command, str(bp), *(("--path", APP) if command == "test" else ()))
        proc = pybuild(*args, check=False)
        errors = _errors(proc)
        assert proc.returncode == code, proc.stderr
        assert len(errors) == 1 and needle in errors[0] and str(bp) in errors[0], proc.stderr


def test_a_bin_script_without_the_run_bit_is_named(home: Path, tmp_path: Path) -> None:
    bp = _new(tmp_path)
    (bp / "bin" / "detect").chmod(0o644)

    validate = pybuild("buildpack", "validate", str(bp), check=False)
    assert validate.returncode == 3
    assert _errors(validate) == [
        f"ERROR: failed to read buildpack: {bp}/bin/detect is not executable (chmod +x bin/detect)"
    ]
    build = pybuild(
        "build", "x", "--path", APP, "--buildpack", str(bp), "--builder", TINY_BUILDER, check=False
    )
    assert build.returncode == 21
    assert "bin/detect is not executable (chmod +x bin/detect)" in _errors(build)[-1]


def test_validate_accepts_skeletons_and_the_repository_buildpacks(tmp_path: Path) -> None:
    for bp in (
        _new(tmp_path),
        _new(tmp_path, "--language", "python", name="py"),
        ROOT / "buildpacks" / "static",
    ):
        assert "valid buildpack" in pybuild("buildpack", "validate", str(bp)).stdout


def test_buildpack_test_refuses_a_composite(tmp_path: Path) -> None:
    composite = ROOT / "tests" / "fixtures" / "buildpacks" / "composite"
    proc = pybuild("buildpack", "test", str(composite), "--path", APP, check=False)

    assert proc.returncode == 3
    assert "order makes test/composite@0.0.1 a composite" in _errors(proc)[0]
