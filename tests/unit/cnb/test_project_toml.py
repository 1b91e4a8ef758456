"""project.toml in pack's schemas 0.2 and 0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb import ProjectBuildpackRef, ProjectEnvVar, load_project_toml
from lifecycle.errors import ConfigError

V02 = """
[_]
schema-version = "0.2"
id = "acme.app"
name = "App"
[[_.licenses]]
type = "MIT"
[_.metadata]
owner = "team"

[io.buildpacks]
builder = "acme/builder"
include = ["src/*", "package.json"]
[[io.buildpacks.group]]
id = "acme/node"
version = "1.4.0"
[[io.buildpacks.group]]
uri = "./local-bp"
[[io.buildpacks.pre.group]]
id = "acme/pre"
[[io.buildpacks.post.group]]
id = "acme/post"
[[io.buildpacks.build.env]]
name = "NODE_ENV"
value = "production"
"""

V01 = """
[project]
id = "acme.app"
version = "1.0"
[build]
exclude = ["tests"]
[[build.buildpacks]]
id = "acme/node"
[[build.env]]
name = "A"
value = "1"
[metadata]
x = 1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project.toml"
    path.write_text(text)
    return path


def test_schema_0_2_reads_underscore_and_io_buildpacks_tables(tmp_path: Path) -> None:
    project = load_project_toml(write(tmp_path, V02))
    assert (project.schema_version, project.id, project.name, project.builder) == (
        "0.2",
        "acme.app",
        "App",
        "acme/builder",
    )
    assert (project.include, project.exclude) == (("src/*", "package.json"), None)
    assert project.buildpacks == (
        ProjectBuildpackRef(id="acme/node", version="1.4.0"),
        ProjectBuildpackRef(uri="./local-bp"),
    )
    assert (project.pre[0].id, project.post[0].id) == ("acme/pre", "acme/post")
    assert project.env == (ProjectEnvVar(name="NODE_ENV", value="production"),)
    assert project.metadata == {"owner": "team"}
    assert project.licenses[0].type == "MIT"


def test_schema_0_2_still_reads_the_old_env_build_spelling(tmp_path: Path) -> None:
    text = V02.replace("[[io.buildpacks.build.env]]", "[[io.buildpacks.env.build]]")
    assert load_project_toml(write(tmp_path, text)).env == (
        ProjectEnvVar(name="NODE_ENV", value="production"),
    )


def test_schema_0_1_is_the_default_and_reads_project_and_build(tmp_path: Path) -> None:
    project = load_project_toml(write(tmp_path, V01))
    assert (project.schema_version, project.id, project.version) == ("0.1", "acme.app", "1.0")
    assert (project.include, project.exclude) == (None, ("tests",))
    assert project.buildpacks == (ProjectBuildpackRef(id="acme/node"),)
    assert project.env == (ProjectEnvVar(name="A", value="1"),)
    assert project.metadata == {"x": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            V01.replace('exclude = ["tests"]', 'exclude = ["tests"]\ninclude = ["src"]'),
            "include and exclude are both set",
        ),
        (V02.replace('uri = "./local-bp"', 'uri = "./local-bp"\nversion = "1"'), "has both uri and version"),
        (
            V02.replace('id = "acme/post"', 'version = "1"'),
            r"io.buildpacks.post.group\[0\]: a buildpack has neither id nor uri",
        ),
        (V02.replace('name = "NODE_ENV"', 'name = ""'), r"io.buildpacks.build.env\[0\].name is invalid"),
        (V02.replace('"0.2"', '"0.9"'), r'_.schema-version "0.9" is not supported \(use 0.1 or 0.2\)'),
        (
            V01.replace('id = "acme.app"', "id = 3"),
            r"project.id is invalid: input should be a valid string \(got 3\)",
        ),
    ],
)
def test_invalid_descriptors_name_the_field_as_written_in_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_project_toml(write(tmp_path, text))
