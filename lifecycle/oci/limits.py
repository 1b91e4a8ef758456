"""Caps on what one layer or archive may unpack to, so a layer bomb ends in a named error, not a full disk.

Nothing in a tar says how much it holds until it has been read, and a gzip stream can expand
about a thousandfold (deflate's limit): a few MiB of a hostile layer can make terabytes of
zeros. So every extractor (image root filesystems, buildpackage layers, cache restore, ``.tgz``
buildpacks) keeps a ``LayerBudget`` per tar stream:

- bytes: the uncompressed stream may be at most ``PYBUILD_MAX_LAYER_BYTES`` long, headers,
  contents, padding and anything after the end of the archive (which the diffID hashes too)
  included. An entry whose data would end past the cap is refused from its header, before a
  byte of it is written; the stream itself is counted as it is read, so nothing can be read
  past the cap either.
- entries: at most ``PYBUILD_MAX_LAYER_ENTRIES`` (files, dirs, links, whiteouts), which bounds
  the inodes and the bookkeeping one layer can cost.

The caps are absolute, not a ratio to the compressed size: real layers holding zero-filled files
(disk images, preallocated databases) compress a thousandfold too, and a ratio would refuse them
while still letting a large hostile layer through. The defaults, 64 GiB and 5,000,000 entries,
are well above the largest real image layers (CUDA and ML stacks run to tens of GiB and about a
million files); they exist to stop a stream without end, not to budget a disk. Both variables
take a count, with an optional ``K``/``M``/``G``/``T`` suffix (powers of 1024) for bytes.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, cast

from lifecycle.errors import ConfigError, PybuildError

__all__ = [
    "DEFAULT_MAX_LAYER_BYTES",
    "DEFAULT_MAX_LAYER_ENTRIES",
    "MAX_LAYER_BYTES_ENV",
    "MAX_LAYER_ENTRIES_ENV",
    "LayerBudget",
    "LayerLimits",
]

MAX_LAYER_BYTES_ENV = "PYBUILD_MAX_LAYER_BYTES"
MAX_LAYER_ENTRIES_ENV = "PYBUILD_MAX_LAYER_ENTRIES"
DEFAULT_MAX_LAYER_BYTES = 64 << 30
DEFAULT_MAX_LAYER_ENTRIES = 5_000_000
_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_PIECE = 1 << 20


@dataclass(frozen=True)
class LayerLimits:
    """The most bytes and entries one tar stream may unpack to."""

    max_bytes: int = DEFAULT_MAX_LAYER_BYTES
    max_entries: int = DEFAULT_MAX_LAYER_ENTRIES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LayerLimits:
        """The caps ``PYBUILD_MAX_LAYER_BYTES`` and ``PYBUILD_MAX_LAYER_ENTRIES`` set, else the defaults."""
        env = os.environ if environ is None else environ
        return cls(
            _setting(env, MAX_LAYER_BYTES_ENV, DEFAULT_MAX_LAYER_BYTES, units=True),
            _setting(env, MAX_LAYER_ENTRIES_ENV, DEFAULT_MAX_LAYER_ENTRIES, units=False),
        )


def _setting(env: Mapping[str, str], name: str, default: int, *, units: bool) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    found = _SIZE.match(raw) if units else re.match(r"^(\d+)()$", raw)
    if found is None or int(found[1]) == 0:
        example = "68719476736 or 64G" if units else str(default)
        raise ConfigError(
            f"read {name}",
            f"{raw!r} is not a positive {'size' if units else 'count'} "
            f"(e.g. {example}; unset it for the default)",
        )
    return int(found[1]) << _UNITS[found[2].upper()]


class LayerBudget:
    """What one tar stream has used of its caps; a refusal is ``error(action, ...)``.

    ``what`` names the stream in the message ("the layer", "the archive"). Wrap the uncompressed
    stream with ``stream`` where there is one, and pass every member to ``entry``.
    """

    def __init__(
        self,
        what: str,
        action: str,
        error: type[PybuildError],
        limits: LayerLimits | None = None,
    ) -> None:
        self.what, self.action, self.error = what, action, error
        self.limits = limits if limits is not None else LayerLimits.from_env()
        self.bytes_read = 0
        self.entries = 0

    def stream(self, stream: BinaryIO) -> BinaryIO:
        """``stream`` counted as it is read: refused once it has given more than the cap."""
        return cast(BinaryIO, _CountedStream(stream, self))

    def entry(self, member: tarfile.TarInfo) -> None:
        """Count ``member``; refuse it if there are too many, or if its data would end past the cap."""
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise self.error(
                self.action,
                f"{self.what} has more than {self.limits.max_entries} entries, the most "
                f"{MAX_LAYER_ENTRIES_ENV} allows (raise it if that is expected)",
            )
        end = member.offset_data + (member.size if member.isreg() else 0)
        if end > self.limits.max_bytes:
            raise self.error(
                self.action,
                f"entry {member.name[:200]!r} ({member.size} bytes) takes {self.what} past "
                f"{self.limits.max_bytes} bytes, the most {MAX_LAYER_BYTES_ENV} allows "
                "(raise it if that is expected)",
            )

    def count(self, n: int) -> None:
        self.bytes_read += n
        if self.bytes_read > self.limits.max_bytes:
            raise self.error(
                self.action,
                f"{self.what} unpacks to more than {self.limits.max_bytes} bytes, the most "
                f"{MAX_LAYER_BYTES_ENV} allows (raise it if that is expected)",
            )


class _CountedStream:
    """A read-only stream whose bytes count against a ``LayerBudget``."""

    def __init__(self, stream: BinaryIO, budget: LayerBudget) -> None:
        self._stream, self._budget = stream, budget

    def read(self, size: int = -1) -> bytes:
        if size < 0:  # the rest, a piece at a time, so a bomb never sits in memory whole
            return b"".join(iter(lambda: self.read(_PIECE), b""))
        data = self._stream.read(size)
        self._budget.count(len(data))
        return data
