"""builder.toml in pack's format, including the legacy `[stack]` table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb import BuilderEnv, RunImageRef, load_builder_toml
from lifecycle.errors import ConfigError

MODERN = """
description = "test builder"

[[buildpacks]]
id = "acme/node"
version = "1.4.0"
uri = "buildpacks/node"

[[order]]
[[order.group]]
id = "acme/node"
[[order.group]]
id = "acme/procfile"
version = "2.0"
optional = true

[build]
image = "pybuild/build:bookworm"
[[build.env]]
name = "BP_LOG"
value = "debug"
suffix = "default"

[[run.images]]
image = "pybuild/run:bookworm"
mirrors = ["mirror.test/run:bookworm"]

[lifecycle]
version = "0.20.0"

[system]
[system.pre]
[[system.pre.buildpacks]]
id = "sys/pre"
version = "1"
"""

LEGACY = """
[[buildpacks]]
uri = "buildpacks/node"

[stack]
id = "io.buildpacks.stacks.bookworm"
build-image = "pybuild/build:bookworm"
run-image = "pybuild/run:bookworm"
run-image-mirrors = ["mirror.test/run:bookworm"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "builder.toml"
    path.write_text(text)
    return path


def test_modern_builder_reads_buildpacks_order_build_run_and_system(tmp_path: Path) -> None:
    builder = load_builder_toml(write(tmp_path, MODERN))
    assert (builder.buildpacks[0].id, builder.buildpacks[0].uri) == ("acme/node", "buildpacks/node")
    assert [(e.id, e.version, e.optional) for e in builder.order[0].group] == [
        ("acme/node", None, False),
        ("acme/procfile", "2.0", True),
    ]
    assert builder.build.image == "pybuild/build:bookworm"
    assert builder.build.env == (BuilderEnv(name="BP_LOG", value="debug", suffix="default"),)
    assert builder.run.images == (
        RunImageRef(image="pybuild/run:bookworm", mirrors=("mirror.test/run:bookworm",)),
    )
    assert builder.system.pre.buildpacks[0].ref == "sys/pre@1"


def test_legacy_stack_table_supplies_build_and_run_images(tmp_path: Path) -> None:
    builder = load_builder_toml(write(tmp_path, LEGACY))
    assert builder.build.image == "pybuild/build:bookworm"
    assert builder.run.images == (
        RunImageRef(image="pybuild/run:bookworm", mirrors=("mirror.test/run:bookworm",)),
    )
    assert builder.stack is not None and builder.stack.id == "io.buildpacks.stacks.bookworm"


def test_build_and_run_tables_win_over_the_stack_table(tmp_path: Path) -> None:
    text = LEGACY + '[build]\nimage = "new/build"\n[[run.images]]\nimage = "new/run"\n'
    builder = load_builder_toml(write(tmp_path, text))
    assert (builder.build.image, builder.run.images[0].image) == ("new/build", "new/run")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[run.images]]\nimage = "r"\n',
            r"build.image is missing \(set \[build\] image, or the legacy \[stack\] build-image\)",
        ),
        ('[build]\nimage = "b"\n', r"run.images is missing \(add \[\[run.images\]\] image"),
        ('[build]\nimage = "b"\n[run]\nimages = []\n', r"run.images is invalid"),
        (
            '[build]\nimage = "b"\n[[run.images]]\nimage = "r"\n[[buildpacks]]\nversion = "1"\n',
            "neither id nor uri",
        ),
    ],
)
def test_incomplete_builders_fail_with_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_builder_toml(write(tmp_path, text))
