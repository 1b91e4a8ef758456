"""Content digests: the names of every blob, config and manifest.

Digests are always computed over the exact bytes that were read or written
(DESIGN.md "bytes are truth").
"""

from __future__ import annotations

import hashlib
import re

from lifecycle.errors import DigestMismatch

__all__ = ["EMPTY_TAR_DIFF_ID", "check_digest", "hex_part", "is_digest", "sha256_digest"]

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    return _DIGEST_RE.fullmatch(value) is not None


def hex_part(digest: str) -> str:
    """The hex part of a digest, refusing anything that could escape a blob dir."""
    if not is_digest(digest):
        raise DigestMismatch("read digest", f"{digest!r} is not a sha256 digest")
    return digest.split(":", 1)[1]


def check_digest(data: bytes, expected: str, what: str) -> None:
    actual = sha256_digest(data)
    if actual != expected:
        raise DigestMismatch(f"verify {what}", f"content hashes to {actual}, expected {expected}")


# diffID of an empty layer (a tar of two zero blocks), used by tools for empty layers.
EMPTY_TAR_DIFF_ID = sha256_digest(b"\0" * 1024)
