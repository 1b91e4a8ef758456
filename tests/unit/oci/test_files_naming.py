"""``naming``: a failed write to a temporary file says which file (a full disk names none)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from support.tools import unavailable

from lifecycle.oci.files import naming


def test_a_write_to_a_full_device_names_the_file() -> None:
    full = Path("/dev/full")
    if not full.exists():
        unavailable("/dev/full is not available on this machine")
    with (
        full.open("wb", buffering=0) as fh,
        pytest.raises(OSError) as raised,
        naming(Path("/store/.layer-1.tmp")),
    ):
        fh.write(b"layer bytes")
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == "/store/.layer-1.tmp"


def test_an_error_that_already_names_a_file_keeps_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised, naming(tmp_path / "sink.tmp"):
        (tmp_path / "missing").read_bytes()
    assert raised.value.filename == str(tmp_path / "missing")
