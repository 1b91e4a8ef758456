"""mmdebstrap runs (against a fake mmdebstrap): the command follows stack.toml; its tarball is cached."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest

from lifecycle.errors import StackError
from lifecycle.platform import stack_mmdebstrap
from lifecycle.platform.stack_mmdebstrap import Bootstrap, bootstrap
from lifecycle.platform.stack_spec import MmdebstrapSpec, UserSpec

FAKE_MMDEBSTRAP = """#!{python}
import os, pathlib, sys, tarfile
log = pathlib.Path(os.environ["FAKE_MMDEBSTRAP_LOG"])
with log.open("a") as out:
    out.write(os.environ["SOURCE_DATE_EPOCH"] + " " + " ".join(sys.argv[1:]) + "\\n")
print("I: downloading packages with apt...", file=sys.stderr)
if os.environ.get("FAKE_MMDEBSTRAP_FAIL"):
    print("E: apt-get download failed", file=sys.stderr)
    sys.exit(1)
with tarfile.open(sys.argv[-2], "w") as tar:
    tar.add(str(log), arcname="./etc/log")
"""


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "debian.sources"
    path.write_text("Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\nComponents: main\n")
    monkeypatch.setattr(stack_mmdebstrap, "host_sources", lambda: path)
    return path


@pytest.fixture
def fake_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mmdebstrap"
    script.write_text(FAKE_MMDEBSTRAP.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_MMDEBSTRAP_LOG", str(log))
    return log


SPEC = MmdebstrapSpec(
    suite="bookworm",
    variant="minbase",
    path_exclude=["/usr/share/doc/*"],
    path_include=["/usr/share/doc/*/copyright"],
)


def plan(packages: list[str], epoch: int = 1_700_000_000) -> Bootstrap:
    return Bootstrap.plan(SPEC, packages, UserSpec(), epoch)


def test_command_follows_stack_toml_and_names_no_host_path(sources: Path) -> None:
    run = plan(["python3", "ca-certificates"])
    assert run.options == (
        "--variant=minbase",
        '--aptopt=Acquire::Languages "none"',
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--skip=output/dev",
        '--customize-hook=chroot "$1" groupadd -g 1000 cnb',
        '--customize-hook=chroot "$1" useradd -u 1000 -g 1000 -m -s /bin/bash cnb',
        "--include=python3,ca-certificates",
    )
    assert run.command.endswith("bookworm rootfs.tar debian.sources")
    assert str(sources.parent) not in run.command


def test_cache_key_changes_with_packages_epoch_and_mirror(sources: Path) -> None:
    key = plan(["python3"]).key
    assert plan(["python3"]).key == key
    assert plan(["python3", "ca-certificates"]).key != key
    assert plan(["python3"], epoch=1).key != key
    sources.write_text(sources.read_text().replace("mirror.test", "other.test"))
    assert plan(["python3"]).key != key


def test_tarball_is_made_once_then_read_from_the_cache(sources: Path, fake_log: Path, tmp_path: Path) -> None:
    notes: list[str] = []
    run = plan(["python3"])
    first = bootstrap(run, tmp_path / "cache", notes.append)
    second = bootstrap(run, tmp_path / "cache", notes.append)
    assert first == second == tmp_path / "cache" / f"{run.key}.tar"
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["./etc/log"]
    calls = fake_log.read_text().splitlines()
    assert len(calls) == 1
    assert calls[0].startswith("1700000000 --format=tar --variant=minbase ")
    *_, suite, output, mirror = calls[0].split()
    assert (suite, mirror) == ("bookworm", str(sources))
    assert output.startswith(f"{tmp_path / 'cache'}/.{run.key}.") and output.endswith(".partial")
    assert notes == ["downloading packages with apt..."]


def test_failed_run_names_the_error_and_leaves_no_tarball(
    sources: Path, fake_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MMDEBSTRAP_FAIL", "1")
    run = plan(["python3"])
    with pytest.raises(StackError, match=r"exit 1: apt-get download failed \(full log: .*\.log\)"):
        bootstrap(run, tmp_path / "cache", lambda note: None)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{run.key}.log"]
