"""Reproducible layer tars (EXP-5, EXP-6): same tree, same bytes, whoever wrote it and when."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar, walk_sorted


def tar_bytes(fill: Callable[[LayerTar], None], **options: int) -> bytes:
    buffer = io.BytesIO()
    tar = LayerTar(buffer, **options)
    fill(tar)
    tar.close()
    return buffer.getvalue()


def members(raw: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.getmembers()


def names(raw: bytes) -> list[str]:
    return [member.name for member in members(raw)]


def by_name(raw: bytes) -> dict[str, tarfile.TarInfo]:
    return {member.name: member for member in members(raw)}


def make_tree(root: Path, *, mtime: int) -> Path:
    """A small app tree with a nested dir, an executable, a symlink and a hard link."""
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("print('hi')\n")
    (root / "src" / "main.py").write_text("import pkg\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "secret").write_text("s")
    (root / "secret").chmod(0o600)
    (root / "current").symlink_to("src")
    os.link(root / "run.sh", root / "start.sh")
    for path in [root, *walk_sorted(root)]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def test_same_tree_written_twice_gives_the_same_diff_id(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "a", mtime=1_600_000_000)
    second = make_tree(tmp_path / "b", mtime=1_700_000_000)
    digests = {
        hashlib.sha256(
            tar_bytes(lambda tar, tree=tree: tar.add_tree(tree, "/workspace"), uid=1000, gid=1000)
        ).digest()
        for tree in (first, second)
    }
    assert len(digests) == 1


def test_copying_a_tree_keeps_its_diff_id(tmp_path: Path) -> None:
    original = make_tree(tmp_path / "a", mtime=1_600_000_000)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    os.unlink(copy / "start.sh")
    os.link(copy / "run.sh", copy / "start.sh")
    assert tar_bytes(lambda tar: tar.add_tree(original, "/app")) == tar_bytes(
        lambda tar: tar.add_tree(copy, "/app")
    )


def test_every_entry_gets_the_constant_mtime(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=1_650_000_000)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/workspace"))
    assert {member.mtime for member in members(raw)} == {DEFAULT_MTIME}


def test_default_mtime_is_1980_01_01_00_00_01_utc() -> None:
    assert DEFAULT_MTIME == 315532801


def test_a_given_creation_time_becomes_every_mtime(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=1_650_000_000)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/workspace"), mtime=1_700_000_000)
    assert {member.mtime for member in members(raw)} == {1_700_000_000}


def test_tree_entries_are_owned_by_the_writer_uid_gid_not_the_files_owner(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/workspace"), uid=4242, gid=4343)
    under = [m for m in members(raw) if m.name.startswith("/workspace/")]
    assert under and os.getuid() != 4242
    assert {(m.uid, m.gid) for m in under} == {(4242, 4343)}


def test_user_and_group_names_are_empty(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/workspace"), uid=1000, gid=1000)
    assert {(m.uname, m.gname) for m in members(raw)} == {("", "")}


def test_parents_of_the_destination_are_root_owned_dirs(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/layers/acme_bp/venv"), uid=1000, gid=1000)
    entries = by_name(raw)
    for parent in ("/layers", "/layers/acme_bp"):
        assert entries[parent].isdir()
        assert (entries[parent].uid, entries[parent].gid, entries[parent].mode) == (0, 0, 0o755)
    assert (entries["/layers/acme_bp/venv"].uid, entries["/layers/acme_bp/venv"].gid) == (1000, 1000)


def test_entries_are_written_in_sorted_order_depth_first(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    for name in ("zeta", "alpha", "Mid", "beta.txt"):
        (root / name).write_text(name)
    (root / "beta").mkdir()
    (root / "beta" / "z").write_text("z")
    (root / "beta" / "a").write_text("a")
    raw = tar_bytes(lambda tar: tar.add_tree(root, "/app"))
    assert names(raw) == [
        "/app",
        "/app/Mid",
        "/app/alpha",
        "/app/beta",
        "/app/beta/a",
        "/app/beta/z",
        "/app/beta.txt",
        "/app/zeta",
    ]


def test_entry_names_are_absolute_paths_exp5() -> None:
    buffer = io.BytesIO()
    tar = LayerTar(buffer)
    tar.add_file("cnb/lifecycle/launcher", b"x")
    tar.close()
    headers = [buffer.getvalue()[offset : offset + 100].rstrip(b"\0") for offset in (0,)]
    assert headers == [b"/cnb/lifecycle/launcher"]


def test_file_modes_are_kept(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    entries = by_name(tar_bytes(lambda tar: tar.add_tree(tree, "/w")))
    assert entries["/w/run.sh"].mode == 0o755
    assert entries["/w/secret"].mode == 0o600
    assert entries["/w/src/main.py"].mode == 0o644


def test_a_hard_link_is_stored_once_and_linked_to_the_first_name(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    entries = by_name(tar_bytes(lambda tar: tar.add_tree(tree, "/w")))
    assert entries["/w/run.sh"].isreg()
    assert entries["/w/run.sh"].size == len("#!/bin/sh\necho run\n")
    assert entries["/w/start.sh"].islnk()
    assert entries["/w/start.sh"].linkname == "/w/run.sh"
    assert entries["/w/start.sh"].size == 0


def test_a_symlink_is_stored_with_its_target_and_not_followed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/w"))
    entries = by_name(raw)
    assert entries["/w/current"].issym()
    assert entries["/w/current"].linkname == "src"
    assert not any(name.startswith("/w/current/") for name in entries)


def test_a_symlink_pointing_outside_the_tree_is_kept_verbatim(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "etc-passwd").symlink_to("/etc/passwd")
    (root / "dangling").symlink_to("../nowhere")
    entries = by_name(tar_bytes(lambda tar: tar.add_tree(root, "/w")))
    assert entries["/w/etc-passwd"].linkname == "/etc/passwd"
    assert entries["/w/dangling"].linkname == "../nowhere"


def test_whiteout_is_an_empty_root_owned_dot_wh_file_beside_the_deleted_path() -> None:
    raw = tar_bytes(lambda tar: tar.add_whiteout("/layers/old_bp/cache"), uid=1000, gid=1000)
    (entry,) = members(raw)
    assert entry.name == "/layers/old_bp/.wh.cache"
    assert (entry.isreg(), entry.size, entry.mode, entry.uid, entry.gid) == (True, 0, 0o644, 0, 0)


def test_add_parents_writes_each_parent_once_with_the_given_modes() -> None:
    def fill(tar: LayerTar) -> None:
        tar.add_parents("/a/b/c/file", lambda path: 0o750 if path == "/a/b" else 0o755)
        tar.add_parents("/a/b/other")
        tar.add_file("/a/b/c/file", b"1")

    entries = members(tar_bytes(fill))
    assert [(m.name, m.mode) for m in entries] == [
        ("/a", 0o755),
        ("/a/b", 0o750),
        ("/a/b/c", 0o755),
        ("/a/b/c/file", 0o644),
    ]


def test_a_path_added_twice_is_written_once_first_one_wins() -> None:
    def fill(tar: LayerTar) -> None:
        tar.add_file("/etc/motd", b"first")
        tar.add_file("etc/motd", b"second")

    raw = tar_bytes(fill)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        extracted = tar.extractfile("/etc/motd")
        assert extracted is not None
        assert extracted.read() == b"first"
        assert len(tar.getmembers()) == 1


def test_add_dir_of_root_writes_nothing() -> None:
    assert members(tar_bytes(lambda tar: tar.add_dir("/"))) == []


def test_long_and_unicode_names_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "t"
    deep = root / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "naïve-☕.txt").write_text("x")
    raw = tar_bytes(lambda tar: tar.add_tree(root, "/w"))
    assert f"/w/{'d' * 90}/{'e' * 90}/naïve-☕.txt" in names(raw)


def test_include_filter_drops_paths(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    raw = tar_bytes(lambda tar: tar.add_tree(tree, "/w", include=lambda path: path.name != "secret"))
    assert "/w/secret" not in names(raw)
    assert "/w/run.sh" in names(raw)


def test_add_tree_of_a_single_file_adds_that_file_under_the_destination(tmp_path: Path) -> None:
    (tmp_path / "busybox").write_bytes(b"ELF")
    (tmp_path / "busybox").chmod(0o755)
    entries = members(tar_bytes(lambda tar: tar.add_tree(tmp_path / "busybox", "/bin/busybox")))
    assert [(m.name, m.type, m.mode, m.size) for m in entries] == [
        ("/bin", tarfile.DIRTYPE, 0o755, 0),
        ("/bin/busybox", tarfile.REGTYPE, 0o755, 3),
    ]


def test_add_tree_of_a_symlink_to_a_directory_adds_the_link_only(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "inside").write_text("x")
    (tmp_path / "alias").symlink_to("real")
    entries = members(tar_bytes(lambda tar: tar.add_tree(tmp_path / "alias", "/w/alias")))
    assert [(m.name, m.type) for m in entries] == [("/w", tarfile.DIRTYPE), ("/w/alias", tarfile.SYMTYPE)]


def test_special_files_such_as_fifos_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (root / "file").write_text("f")
    assert names(tar_bytes(lambda tar: tar.add_tree(root, "/w"))) == ["/w", "/w/file"]


def test_file_contents_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (root / "big.bin").write_bytes(payload)
    raw = tar_bytes(lambda tar: tar.add_tree(root, "/w"))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        extracted = tar.extractfile("/w/big.bin")
        assert extracted is not None
        assert extracted.read() == payload


def test_gnu_tar_extracts_our_tar_with_links_intact(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", mtime=0)
    (tmp_path / "layer.tar").write_bytes(tar_bytes(lambda tar: tar.add_tree(tree, "/w")))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-C", out, "-xf", tmp_path / "layer.tar"], check=True, capture_output=True)
    assert (out / "w" / "start.sh").stat().st_ino == (out / "w" / "run.sh").stat().st_ino
    assert os.readlink(out / "w" / "current") == "src"
    assert (out / "w" / "src" / "pkg" / "mod.py").read_text() == "print('hi')\n"
