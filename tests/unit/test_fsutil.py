"""lifecycle.fsutil: reading, writing, copying and removing without following a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifecycle.fsutil import (
    UnsafePath,
    copy_plain,
    is_plain_dir,
    make_dirs,
    read_plain,
    remove_tree,
    write_replacing,
)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A dir outside the layers dir, standing for the host's files."""
    victim = tmp_path / "host"
    (victim / "dir").mkdir(parents=True)
    (victim / "secret").write_text("the host's file")
    (victim / "dir" / "f").write_text("x")
    (victim / "dir").chmod(0o755)
    return victim


def _host_state(host: Path) -> list[tuple[str, int, bytes]]:
    found = []
    for path in sorted(host.rglob("*")):
        st = path.lstat()
        found.append((str(path), st.st_mode, path.read_bytes() if path.is_file() else b""))
    return found


def test_read_plain_refuses_a_link_a_fifo_and_a_file_too_large(tmp_path: Path, host: Path) -> None:
    (tmp_path / "link").symlink_to(host / "secret")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 11)
    (tmp_path / "plain").write_bytes(b"value")
    with pytest.raises(UnsafePath, match=r"link is a symbolic link \(write a plain file\)$"):
        read_plain(tmp_path / "link")
    with pytest.raises(UnsafePath, match="fifo is not a regular file"):
        read_plain(tmp_path / "fifo")  # opened non-blocking: no hang
    with pytest.raises(UnsafePath, match="big is larger than 10 bytes"):
        read_plain(tmp_path / "big", 10)
    assert read_plain(tmp_path / "plain", 10) == b"value"


def test_write_replacing_replaces_a_planted_link_and_never_writes_through_it(
    tmp_path: Path, host: Path
) -> None:
    before = _host_state(host)
    (tmp_path / "out.toml").symlink_to(host / "secret")
    write_replacing(tmp_path / "out.toml", b"mine")
    assert not (tmp_path / "out.toml").is_symlink() and (tmp_path / "out.toml").read_bytes() == b"mine"
    (tmp_path / "linked").symlink_to(host)
    with pytest.raises(UnsafePath, match="linked is a symbolic link"):
        write_replacing(tmp_path / "linked" / "out.toml", b"mine")
    assert _host_state(host) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_copy_plain_refuses_a_linked_source(tmp_path: Path, host: Path) -> None:
    (tmp_path / "sbom.json").symlink_to(host / "secret")
    with pytest.raises(UnsafePath, match="symbolic link"):
        copy_plain(tmp_path / "sbom.json", tmp_path / "copy.json")
    assert not (tmp_path / "copy.json").exists()
    (tmp_path / "real.json").write_text("{}")
    copy_plain(tmp_path / "real.json", tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_text() == "{}"


def test_make_dirs_refuses_a_link_anywhere_below_the_root(tmp_path: Path, host: Path) -> None:
    (tmp_path / "sbom").mkdir()
    (tmp_path / "sbom" / "launch").symlink_to(host)
    with pytest.raises(UnsafePath, match="launch is a symbolic link"):
        make_dirs(tmp_path, "sbom", "launch", "a_bp")
    (tmp_path / "file").write_text("")
    with pytest.raises(UnsafePath, match="file is not a directory"):
        make_dirs(tmp_path, "file", "x")
    with pytest.raises(UnsafePath, match="not a plain name"):
        make_dirs(tmp_path, "..")
    assert make_dirs(tmp_path, "sbom", "build", "a_bp") == tmp_path / "sbom" / "build" / "a_bp"
    assert not (host / "a_bp").exists()


def test_is_plain_dir(tmp_path: Path, host: Path) -> None:
    (tmp_path / "link").symlink_to(host)
    (tmp_path / "file").write_text("")
    assert is_plain_dir(host) and not is_plain_dir(tmp_path / "file") and not is_plain_dir(tmp_path / "none")
    with pytest.raises(UnsafePath):
        is_plain_dir(tmp_path / "link")


def test_remove_tree_unlinks_a_planted_link_and_never_chmods_what_it_points_to(
    tmp_path: Path, host: Path
) -> None:
    before = _host_state(host)
    (tmp_path / "layer").symlink_to(host)
    remove_tree(tmp_path / "layer")
    assert not os.path.lexists(tmp_path / "layer")
    tree = tmp_path / "tree"
    (tree / "ro").mkdir(parents=True)
    (tree / "ro" / "f").write_text("x")
    (tree / "ro" / "into-host").symlink_to(host)
    (tree / "ro").chmod(0o500)
    remove_tree(tree)
    assert not tree.exists()
    assert _host_state(host) == before
