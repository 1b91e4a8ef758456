""".deb files to stack images, with no network: synthetic packages made here (tarfile plus the ar
format) are served by a fake apt-get, cached, read and written by build_stack as reproducible layers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from support.tools import unavailable

from lifecycle.backends.store import LocalStore
from lifecycle.errors import StackError
from lifecycle.platform.stack_debs import (
    busybox_applets,
    deb_members,
    fetch_debs,
    read_deb,
)
from lifecycle.platform.stacks import Role, build_stack

EPOCH = 1_700_000_000
NEWER = 2_000_000_000  # a package file built after the stack's epoch: its mtime is clamped
OLDER = 1_600_000_000  # one built before: its mtime stays, so a .pyc built against it stays valid


def tar_xz(entries: list[tarfile.TarInfo], contents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz", format=tarfile.GNU_FORMAT) as tar:
        for info in entries:
            data = contents.get(info.name)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0, **extra: object
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, NEWER
    info.uname = info.gname = "root"
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    """The common ar format dpkg uses: a magic line, then 60-byte headers, members padded to even sizes."""
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n"
        out += header.encode() + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def make_deb(
    directory: Path, package: str, version: str, files: dict[str, bytes], *, data: str = "xz"
) -> Path:
    """A .deb with ``files`` (paths like ``bin/tool``) plus their parent directories."""
    dirs = {str(parent) for path in files for parent in Path(path).parents} - {"."}
    entries = [entry("./", tarfile.DIRTYPE, 0o755)]
    for path in sorted(dirs | set(files)):  # dpkg-deb's order: a directory, then what is in it
        if path in dirs:
            entries.append(entry(f"./{path}/", tarfile.DIRTYPE, 0o755))
        else:
            mode = 0o755 if path.startswith("bin/") else 0o644
            mtime = OLDER if "old" in path else NEWER
            entries.append(entry(f"./{path}", mode=mode, size=len(files[path]), mtime=mtime))
    payload = tar_xz(entries, {f"./{p}": c for p, c in files.items()})
    control = f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nDescription: test\n multi-line\n"
    control_tar = tar_xz([entry("./control", size=len(control))], {"./control": control.encode()})
    deb = directory / f"{package}_{version.replace(':', '%3a')}_amd64.deb"
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", control_tar), (f"data.tar.{data}", payload)]
    deb.write_bytes(ar_archive(members))
    return deb


def test_synthetic_deb_is_a_real_deb(tmp_path: Path) -> None:
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        unavailable("dpkg-deb not installed: apt-get install dpkg")
    deb = make_deb(tmp_path, "tool", "2.0-1", {"bin/tool": b"odd"})
    assert (
        subprocess.run([dpkg_deb, "-f", deb, "Version"], capture_output=True, text=True).stdout == "2.0-1\n"
    )


def test_zstd_deb_is_refused_with_the_fix(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "tool", "1.0", {"bin/tool": b"x"}, data="zst")
    with pytest.raises(StackError, match=r"data.tar.zst is zstd-compressed; use Debian packages \(xz\)"):
        list(deb_members(deb))


def test_a_file_that_is_not_a_deb_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.deb"
    bogus.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(StackError, match="not a Debian package"):
        read_deb(bogus)


def test_busybox_applets_are_where_the_binary_says(tmp_path: Path) -> None:
    fake = b"#!/bin/sh\nprintf 'bin/ls\\nusr/bin/env\\n'\n"
    assert busybox_applets(fake, tmp_path) == ["/bin/ls", "/usr/bin/env"]


# -- the download cache, against a fake apt-get serving debs from a directory -----------------------
FAKE_APT = """#!{python}
import hashlib, os, pathlib, shutil, sys
repo = pathlib.Path(os.environ["FAKE_APT_REPO"])
with open(repo / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[2:]
if args[0] == "--print-uris":
    for name in args[1:]:
        found = sorted(repo.glob(name + "_*.deb"))
        if not found:
            sys.exit(print("E: Unable to locate package " + name, file=sys.stderr) or 100)
        data = found[0].read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        print(f"'file://{{found[0]}}' {{found[0].name}} {{len(data)}} SHA256:{{sha}}")
else:
    for spec in args:
        shutil.copy(next(repo.glob(spec.split("=")[0] + "_*.deb")), ".")
"""


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of .debs that ``apt-get download`` serves; returns it."""
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    repo.mkdir()
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(FAKE_APT.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_REPO", str(repo))
    return repo


def downloads(repo: Path) -> list[str]:
    calls = (repo / "calls.log").read_text().splitlines()
    return [call for call in calls if "--print-uris" not in call]


def test_fetch_debs_downloads_once_then_uses_the_cache(fake_apt: Path, tmp_path: Path) -> None:
    make_deb(fake_apt, "tool", "1:2.0-1", {"bin/tool": b"x"})
    cache = tmp_path / "cache"
    first = fetch_debs(["tool"], cache)
    second = fetch_debs(["tool"], cache)
    assert first == second
    assert (first[0].package, first[0].version, first[0].path.parent) == ("tool", "1:2.0-1", cache)
    assert downloads(fake_apt) == ["download tool=1:2.0-1"]


def test_fetch_debs_replaces_a_corrupt_cached_file(fake_apt: Path, tmp_path: Path) -> None:
    deb = make_deb(fake_apt, "tool", "1.0", {"bin/tool": b"x"})
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / deb.name).write_bytes(b"truncated")
    fetch_debs(["tool"], cache)
    assert (
        hashlib.sha256((cache / deb.name).read_bytes()).digest() == hashlib.sha256(deb.read_bytes()).digest()
    )


def test_fetch_debs_names_an_unknown_package_and_the_fix(fake_apt: Path, tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"Unable to locate package nope \(check the package names"):
        fetch_debs(["nope"], tmp_path / "cache")


# -- build_stack end to end on [debs], with no network -----------------------------------------------
MINI = """
id = "io.example.stacks.mini"
name = "mini"
description = "a test stack"
maintainer = "tests"
homepage = "https://example.test/mini"
source-date-epoch = 1700000000

[debs]
links = { "/bin/sh" = "tool" }

[files]
"/etc/os-release" = '''
ID=debian
VERSION_ID="12"
'''

[build]
packages = ["tool", "extra"]

[run]
packages = ["tool"]
files = { "/etc/release" = "1" }

[run.patch]
packages = ["extra"]
files = { "/etc/release" = "2" }
"""


class RecordingProgress:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.done: dict[str, int] = {}

    def start(self, step: str, total: int | None = None) -> None:
        self.started.append(step)

    def update(self, step: str, *, done: int | None = None, note: str | None = None) -> None:
        if done is not None:
            self.done[step] = done

    def finish(self, step: str, *, ok: bool = True) -> None:
        self.finished.append(step if ok else f"{step} (failed)")


@pytest.fixture
def mini_stack(fake_apt: Path, tmp_path: Path) -> Path:
    make_deb(fake_apt, "tool", "1.0-1", {"bin/tool": b"#!/bin/sh\n"})
    make_deb(fake_apt, "extra", "2:2.0", {"usr/share/extra.txt": b"x", "usr/share/old.txt": b"old"})
    stack_dir = tmp_path / "stacks" / "mini"
    stack_dir.mkdir(parents=True)
    (stack_dir / "stack.toml").write_text(MINI)
    return stack_dir


def layer_entries(store: LocalStore, tag: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Every entry of the image's one layer, with the content of regular files."""
    with store.image(tag).layers[0].uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return {info.name: (info, _read(tar, info)) for info in tar}


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(info) if info.isreg() else None
    return stream.read() if stream else b""


def test_deb_contents_land_in_the_layer_normalised_with_modes_kept_and_mtimes_clamped(
    mini_stack: Path, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "home")
    build_stack(mini_stack, store)
    entries = layer_entries(store, "pybuild/run:mini-2")
    tool, content = entries["/bin/tool"]
    assert content == b"#!/bin/sh\n"
    assert (tool.mode, tool.uid, tool.uname, tool.mtime) == (0o755, 0, "", EPOCH)
    assert entries["/usr/share/old.txt"][0].mtime == OLDER
    assert "/" not in entries and not any(name.startswith("./") for name in entries)


def test_build_stack_makes_three_tagged_images_and_reuses_them(mini_stack: Path, tmp_path: Path) -> None:
    progress = RecordingProgress()
    built = build_stack(mini_stack, LocalStore(tmp_path / "home"), progress=progress)
    reused = build_stack(mini_stack, LocalStore(tmp_path / "home"), progress=progress)
    assert not built.reused and reused.reused
    assert reused.digests == built.digests
    assert set(built.digests) == {
        "pybuild/build:mini",
        "pybuild/run:mini",
        "pybuild/run:mini-1",
        "pybuild/run:mini-2",
    }
    assert built.digests["pybuild/run:mini"] == built.digests["pybuild/run:mini-1"]
    assert built.image(Role.RUN).diff_id != built.image(Role.PATCHED_RUN).diff_id
    assert sorted(progress.started) == sorted(progress.finished)
    assert {"stack mini", "download packages", "layer pybuild/run:mini-2"} <= set(progress.started)


def test_forced_rebuild_in_another_home_gives_identical_digests(mini_stack: Path, tmp_path: Path) -> None:
    first = build_stack(mini_stack, LocalStore(tmp_path / "a"), force=True)
    second = build_stack(mini_stack, LocalStore(tmp_path / "b"), force=True)
    assert second.digests == first.digests


def test_images_carry_the_cnb_base_config_and_labels(mini_stack: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    build_stack(mini_stack, store)
    build, run, patched = (
        store.image(t).config for t in ("pybuild/build:mini", "pybuild/run:mini", "pybuild/run:mini-2")
    )
    assert build.config.user == run.config.user == "1000:1000"
    assert build.config.env_dict() == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "CNB_USER_ID": "1000",
        "CNB_GROUP_ID": "1000",
    }
    assert "CNB_USER_ID" not in run.config.env_dict()
    assert (build.os, build.created) == ("linux", "2023-11-14T22:13:20Z")
    assert (
        run.labels["io.buildpacks.base.id"]
        == run.labels["io.buildpacks.stack.id"]
        == "io.example.stacks.mini"
    )
    assert (
        run.labels["io.buildpacks.base.distro.name"],
        run.labels["io.buildpacks.base.distro.version"],
    ) == ("debian", "12")
    assert run.labels["io.buildpacks.rebasable"] == "true" and "io.buildpacks.rebasable" not in build.labels
    assert json.loads(run.labels["io.buildpacks.base.metadata"])["packages"] == {"tool": "1.0-1"}
    assert json.loads(patched.labels["io.buildpacks.base.metadata"])["packages"] == {
        "tool": "1.0-1",
        "extra": "2:2.0",
    }
    assert (
        patched.history is not None
        and patched.history[0].created_by == "pybuild stack: unpack tool=1.0-1 extra=2:2.0"
    )


def test_run_versions_differ_by_the_patch_and_share_the_user(mini_stack: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "home")
    build_stack(mini_stack, store)
    v1, v2 = layer_entries(store, "pybuild/run:mini-1"), layer_entries(store, "pybuild/run:mini-2")
    assert (v1["/etc/release"][1], v2["/etc/release"][1]) == (b"1", b"2")
    assert "/usr/share/extra.txt" in v2 and "/usr/share/extra.txt" not in v1
    assert b"cnb:x:1000:1000::/home/cnb:/bin/bash" in v1["/etc/passwd"][1]
    assert v1["/bin/sh"][0].issym() and v1["/bin/sh"][0].linkname == "tool"


def test_stack_without_os_release_says_how_to_add_one(mini_stack: Path, tmp_path: Path) -> None:
    toml = mini_stack / "stack.toml"
    toml.write_text(toml.read_text().replace('"/etc/os-release"', '"/etc/motd"'))
    with pytest.raises(StackError, match=r"add /etc/os-release with ID and VERSION_ID under \[files\]"):
        build_stack(mini_stack, LocalStore(tmp_path / "home"))


def test_a_failed_build_reports_its_steps_as_failed(mini_stack: Path, tmp_path: Path) -> None:
    (mini_stack / "stack.toml").write_text(MINI.replace('"tool", "extra"', '"tool", "missing"'))
    progress = RecordingProgress()
    with pytest.raises(StackError, match="Unable to locate package missing"):
        build_stack(mini_stack, LocalStore(tmp_path / "home"), progress=progress)
    assert progress.finished == ["download packages (failed)", "stack mini (failed)"]
