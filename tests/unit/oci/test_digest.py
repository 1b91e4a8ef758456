"""Digests name every blob: sha256 over exact bytes, and nothing else passes as one."""

from __future__ import annotations

import hashlib

import pytest

from lifecycle.errors import DigestMismatch
from lifecycle.oci.digest import EMPTY_TAR_DIFF_ID, check_digest, hex_part, is_digest, sha256_digest


def test_sha256_digest_is_prefixed_hex_of_the_bytes() -> None:
    assert sha256_digest(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_sha256_digest_of_empty_bytes_is_the_well_known_value() -> None:
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "0" * 64,
        "sha256:" + "a" * 64,
    ],
)
def test_is_digest_accepts_lowercase_sha256(value: str) -> None:
    assert is_digest(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256:",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 64,
        "a" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha256:../../" + "a" * 58,
    ],
)
def test_is_digest_rejects_anything_else(value: str) -> None:
    assert not is_digest(value)


def test_hex_part_strips_the_algorithm() -> None:
    assert hex_part("sha256:" + "b" * 64) == "b" * 64


def test_hex_part_refuses_a_path_escape() -> None:
    with pytest.raises(DigestMismatch, match="not a sha256 digest"):
        hex_part("sha256:../../etc/passwd")


def test_check_digest_passes_matching_bytes() -> None:
    check_digest(b"abc", sha256_digest(b"abc"), "blob")


def test_check_digest_names_what_and_both_digests_on_mismatch() -> None:
    expected = sha256_digest(b"abc")
    with pytest.raises(DigestMismatch) as caught:
        check_digest(b"abd", expected, "config of app")
    message = str(caught.value)
    assert "verify config of app" in message
    assert expected in message
    assert sha256_digest(b"abd") in message


def test_empty_tar_diff_id_is_the_digest_of_two_zero_blocks() -> None:
    assert EMPTY_TAR_DIFF_ID == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
