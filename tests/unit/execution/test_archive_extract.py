"""extract_archive: a buildpack archive (.tgz) is extracted with nothing in it followed."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
from pathlib import Path

import pytest

from lifecycle.errors import ImageError
from lifecycle.execution.rootfs import extract_archive


def _tgz(*members: tuple[str, bytes, str, int]) -> io.BytesIO:
    """(name, type, data or link target, mode) entries as a gzipped tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, body, mode in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = body
                tar.addfile(info)
            else:
                data = body.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return io.BytesIO(gzip.compress(raw.getvalue()))


REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def test_a_buildpack_archive_extracts_with_relative_links_and_safe_modes(tmp_path: Path) -> None:
    archive = _tgz(
        ("./buildpack.toml", REG, 'api = "0.10"\n', 0o644),
        ("bin", DIR, "", 0o755),
        ("lib/build.sh", REG, "#!/bin/sh\n", 0o4777),
        ("bin/build", SYM, "../lib/build.sh", 0o777),
        ("bin/detect", LNK, "lib/build.sh", 0o755),
    )
    dest = tmp_path / "bp"
    extract_archive(archive, dest)
    assert (dest / "buildpack.toml").read_text() == 'api = "0.10"\n'
    assert (dest / "bin" / "build").resolve() == (dest / "lib" / "build.sh").resolve()
    assert (dest / "bin" / "detect").stat().st_ino == (dest / "lib" / "build.sh").stat().st_ino
    assert stat.S_IMODE((dest / "lib" / "build.sh").stat().st_mode) == 0o755  # no setuid, no o+w


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("evil", SYM, "/etc", 0o777)], "points to an absolute path"),
        (
            [("d", DIR, "", 0o755), ("d/evil", SYM, "d", 0o777), ("d/evil/x", REG, "x", 0o644)],
            "symbolic link",
        ),
        ([("evil", SYM, "../../outside", 0o777)], "outside"),
        # Each link is inside on its own; only together (written in this order) do they climb out.
        ([("m", SYM, "l/l/../escaped", 0o777), ("l", SYM, ".", 0o777)], "m points outside the archive"),
        ([("fifo", tarfile.FIFOTYPE, "", 0o644)], "not a file, dir or link"),
        ([("h", LNK, "missing", 0o644)], "does not|No such file"),
    ],
    ids=[
        "absolute-link",
        "through-a-link",
        "relative-escape",
        "chain-escapes-once-complete",
        "fifo",
        "dangling-hard-link",
    ],
)
def test_what_could_reach_outside_is_refused_and_nothing_is_written_there(
    tmp_path: Path, members: list[tuple[str, bytes, str, int]], message: str
) -> None:
    dest = tmp_path / "deep" / "bp"
    with pytest.raises(ImageError, match=message) as info:
        extract_archive(_tgz(*members), dest)
    assert str(info.value).startswith("failed to read archive: ") and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["bp"]


def test_garbage_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        extract_archive(io.BytesIO(b"\x1f\x8b\x08\x00 not really gzip"), tmp_path / "bp")
