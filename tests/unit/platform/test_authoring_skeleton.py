"""`pybuild buildpack new`: flags checked one by one, templates rendered into a valid buildpack."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb.buildpack import BuildpackDescriptor, Distro, Target
from lifecycle.errors import ConfigError
from lifecycle.platform.authoring import (
    LANGUAGES,
    check_buildpack,
    new_buildpack,
    parse_target,
    render,
    skeleton_files,
    skeleton_options,
)

EXPECTED_FILES = {
    "buildpack.toml": False,
    "README.md": False,
    "bin/detect": True,
    "bin/build": True,
    "layer/bin/hello": True,
    "layer/bin/hello-web": True,
    "layer/www/index.html": False,
}


def _files(tmp_path: Path, language: str, **flags: object) -> dict[str, str]:
    options = skeleton_options("acme/hello", path=tmp_path / "bp", language=language, **flags)  # type: ignore[arg-type]
    return {f.path: f.text for f in skeleton_files(options)}


def test_defaults_are_the_newest_api_any_linux_and_a_dir_named_after_the_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = skeleton_options("acme/hello")

    assert options.path == Path("hello")
    assert options.api == ApiVersion(0, 12)
    assert options.language == "bash" and options.version == "0.0.1"
    assert options.targets == (Target(os="linux"),)


@pytest.mark.parametrize(
    ("buildpack_id", "flags", "message"),
    [
        ("acme hello", {}, 'ID "acme hello" is not a valid buildpack ID'),
        ("generated", {}, 'ID "generated" is reserved'),
        ("acme/x", {"api": "0.7"}, '--api "0.7" is not supported for a new buildpack (use 0.10 - 0.12'),
        ("acme/x", {"api": "0.13"}, '--api "0.13" is not supported'),
        ("acme/x", {"api": "v1"}, '--api "v1" is not an API version'),
        ("acme/x", {"language": "go"}, '--language "go" is not one of bash, python'),
        ("acme/x", {"version": "1/2"}, '--version "1/2" is not a version'),
        ("acme/x", {"targets": ["linux", "linux/"]}, '--target "linux/" is not OS[/ARCH[/VARIANT]]'),
    ],
)
def test_each_bad_flag_is_one_line_naming_it(
    tmp_path: Path, buildpack_id: str, flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        skeleton_options(buildpack_id, path=tmp_path / "bp", **flags)  # type: ignore[arg-type]

    assert str(caught.value).startswith(f"failed to create buildpack: {message}")
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 3


def test_a_directory_with_files_or_a_file_is_refused_and_an_empty_one_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    (tmp_path / "file").write_text("")

    assert skeleton_options("acme/x", path=tmp_path / "empty").path == tmp_path / "empty"
    with pytest.raises(ConfigError, match=r"--path .*full is not empty"):
        skeleton_options("acme/x", path=tmp_path / "full")
    with pytest.raises(ConfigError, match=r"--path .*file is a file"):
        skeleton_options("acme/x", path=tmp_path / "file")


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("linux", Target(os="linux")),
        ("linux/arm64", Target(os="linux", arch="arm64")),
        ("linux/arm/v7", Target(os="linux", arch="arm", variant="v7")),
        (
            "linux/amd64:ubuntu@22.04",
            Target(os="linux", arch="amd64", distros=(Distro(name="ubuntu", version="22.04"),)),
        ),
        ("linux:debian", Target(os="linux", distros=(Distro(name="debian"),))),
    ],
)
def test_targets_are_parsed_as_pack_writes_them(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    "text", ["", "/amd64", "linux/amd64/v8/x", "linux:", "Linux/AMD64", "linux/amd64:@1"]
)
def test_malformed_targets_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--target"):
        parse_target(text)


def test_render_fills_placeholders_and_a_missing_value_is_a_template_bug() -> None:
    assert render("id={{id}} ${HOME} {x}", {"id": "acme/a"}) == "id=acme/a ${HOME} {x}"
    with pytest.raises(KeyError):
        render("{{nope}}", {})


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_file_is_rendered_with_no_placeholder_left(tmp_path: Path, language: str) -> None:
    options = skeleton_options("acme/hello", path=tmp_path / "bp", language=language)
    files = skeleton_files(options)

    assert {f.path: f.executable for f in files} == EXPECTED_FILES
    for file in files:
        assert "{{" not in file.text, file.path
    assert all("acme/hello" in f.text for f in files if f.path != "layer/bin/hello-web")


@pytest.mark.parametrize("language", LANGUAGES)
def test_buildpack_toml_declares_id_version_api_and_targets(tmp_path: Path, language: str) -> None:
    files = _files(
        tmp_path, language, api="0.10", version="1.2.3", targets=["linux/amd64", "linux/arm/v7:debian@12"]
    )
    descriptor = BuildpackDescriptor.model_validate(tomllib.loads(files["buildpack.toml"]))

    assert descriptor.ref == "acme/hello@1.2.3" and str(descriptor.api) == "0.10"
    assert descriptor.targets == (
        Target(os="linux", arch="amd64"),
        Target(os="linux", arch="arm", variant="v7", distros=(Distro(name="debian", version="12"),)),
    )


def test_bash_scripts_parse_and_pass_shellcheck(tmp_path: Path) -> None:
    files = _files(tmp_path, "bash")
    for path in ("bin/detect", "bin/build", "layer/bin/hello", "layer/bin/hello-web"):
        shell = "bash" if path.startswith("bin/") else "sh"
        assert files[path].startswith("#!/usr/bin/env bash\n" if shell == "bash" else "#!/bin/sh\n")
        checked = subprocess.run([shell, "-n"], input=files[path], text=True, capture_output=True)
        assert checked.returncode == 0, f"{path}: {checked.stderr}"
        if shutil.which("shellcheck"):
            lint = subprocess.run(
                ["shellcheck", "-s", shell, "-"], input=files[path], text=True, capture_output=True
            )
            assert lint.returncode == 0, f"{path}: {lint.stdout}"


def test_python_scripts_are_python3_and_compile(tmp_path: Path) -> None:
    files = _files(tmp_path, "python")
    for path in ("bin/detect", "bin/build", "layer/bin/hello", "layer/bin/hello-web"):
        assert files[path].startswith("#!/usr/bin/env python3\n"), path
        compile(files[path], path, "exec")


@pytest.mark.parametrize(
    ("language", "builder", "note"),
    [
        ("bash", "pybuild/builder:tiny", "runs on every pybuild stack"),
        ("python", "pybuild/builder:bookworm", "the tiny builder (`pybuild/builder:tiny`)\nhas no Python"),
    ],
)
def test_readme_explains_the_files_and_how_to_test_for_the_language(
    tmp_path: Path, language: str, builder: str, note: str
) -> None:
    readme = _files(tmp_path, language)["README.md"]

    assert f"--builder {builder}" in readme and note in readme
    assert f"pybuild buildpack test {(tmp_path / 'bp').as_posix()} --path APP_DIR" in readme
    for path in EXPECTED_FILES:
        if path != "README.md":
            assert f"`{path}`" in readme, path


@pytest.mark.parametrize("language", LANGUAGES)
def test_new_buildpack_writes_a_buildpack_that_checks_clean(tmp_path: Path, language: str) -> None:
    options = skeleton_options("acme/hello", path=tmp_path / "bp", language=language)
    descriptor = new_buildpack(options)

    assert descriptor.ref == "acme/hello@0.0.1"
    assert check_buildpack(tmp_path / "bp") == descriptor
    for path, executable in EXPECTED_FILES.items():
        mode = (tmp_path / "bp" / path).stat().st_mode & 0o777
        assert mode == (0o755 if executable else 0o644), path


def test_check_names_a_missing_or_unrunnable_bin_script(tmp_path: Path) -> None:
    bp = tmp_path / "bp"
    new_buildpack(skeleton_options("acme/hello", path=bp))
    (bp / "bin" / "build").chmod(0o644)
    with pytest.raises(ConfigError, match=r"bin/build is not executable \(chmod \+x bin/build\)"):
        check_buildpack(bp)
    os.unlink(bp / "bin" / "detect")
    with pytest.raises(ConfigError, match=r"bin/detect does not exist \(add bin/detect\)"):
        check_buildpack(bp)
    with pytest.raises(ConfigError, match="is not a directory"):
        check_buildpack(tmp_path / "missing")


def test_check_accepts_a_composite_without_bin(tmp_path: Path) -> None:
    (tmp_path / "buildpack.toml").write_text(
        'api = "0.10"\n[buildpack]\nid = "acme/meta"\nversion = "1"\n'
        '[[order]]\n[[order.group]]\nid = "acme/a"\nversion = "1"\n'
    )

    assert check_buildpack(tmp_path).is_composite
