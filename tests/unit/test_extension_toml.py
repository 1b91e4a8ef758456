"""extension.toml, an extension dir, extend-config.toml and builder.toml extensions (DET-16, GEN-1, GEN-3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cnb.builder import load_builder_toml
from lifecycle.cnb.extension import load_extend_config, load_extension_dir, load_extension_toml
from lifecycle.errors import ConfigError

FULL = """api = "0.10"
[extension]
id = "acme/curl"
version = "1.2.0"
name = "curl"
homepage = "https://acme.test/curl"
keywords = ["apt"]
[[extension.licenses]]
type = "MIT"
[[targets]]
os = "linux"
arch = "amd64"
[[targets.distros]]
name = "debian"
version = "12"
[metadata]
source = "x"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extension_toml_reads_every_key(tmp_path: Path) -> None:
    ext = load_extension_toml(write(tmp_path / "extension.toml", FULL))
    assert ext.ref == "acme/curl@1.2.0"
    assert (ext.extension.homepage, ext.extension.licenses[0].type) == ("https://acme.test/curl", "MIT")
    assert ext.targets[0].distros[0].version == "12" and ext.metadata == {"source": "x"}


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ('api = "0.99"\n[extension]\nid = "a/b"\nversion = "1"\n', 12, "is not supported"),  # GEN-1
        ('api = "0.8"\n[extension]\nid = "a/b"\nversion = "1"\n', 12, "has no image extensions"),
        ('api = "0.10"\n[extension]\nid = "generated"\nversion = "1"\n', 3, "reserved"),  # GEN-3
        ('api = "0.10"\n[extension]\nid = "a/b"\n', 3, "extension.version is missing"),
        (
            'api = "0.10"\n[extension]\nid = "a/b"\nversion = "1"\n[[order]]\n[[order.group]]\nid = "x"\n',
            3,
            "cannot have an [[order]]",
        ),
    ],
)
def test_bad_extension_toml_is_one_line_error(tmp_path: Path, text: str, code: int, says: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_extension_toml(write(tmp_path / "extension.toml", text))
    assert bad.value.exit_code == code and says in str(bad.value)
    assert "extension.toml" in str(bad.value) and "\n" not in str(bad.value)


def test_extension_dir_needs_bin_generate_or_a_generate_dir(tmp_path: Path) -> None:
    write(tmp_path / "extension.toml", FULL)
    with pytest.raises(ConfigError, match="neither bin/generate nor a generate/ dir"):
        load_extension_dir(tmp_path)
    (tmp_path / "generate").mkdir()
    found = load_extension_dir(tmp_path)
    assert not found.has_detect and not found.has_generate  # no bin/detect: passes (image extension spec)
    write(tmp_path / "bin" / "generate", "#!/bin/sh\n")
    assert load_extension_dir(tmp_path).has_generate


def test_extend_config_reads_build_and_run_args(tmp_path: Path) -> None:
    text = '[[build.args]]\nname = "a"\nvalue = "1"\n[[run.args]]\nname = "b"\nvalue = "2"\n'
    config = load_extend_config(write(tmp_path / "extend-config.toml", text))
    assert [(a.name, a.value) for a in config.args("build")] == [("a", "1")]
    assert [(a.name, a.value) for a in config.args("run")] == [("b", "2")]


def test_builder_toml_reads_extensions_and_order_extensions(tmp_path: Path) -> None:
    text = (
        '[[extensions]]\nuri = "ext/curl"\n'
        '[[order-extensions]]\n[[order-extensions.group]]\nid = "acme/curl"\n'
        '[build]\nimage = "b"\n[[run.images]]\nimage = "r"\n'
    )
    config = load_builder_toml(write(tmp_path / "builder.toml", text))
    assert config.extensions[0].uri == "ext/curl"
    assert config.order_extensions[0].group[0].id == "acme/curl"
