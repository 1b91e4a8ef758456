"""Build secrets: values buildpacks read during detect and build, and that no output may carry.

A ``Secret`` is an id and a value, read by the platform (``lifecycle.platform.secrets``) and
kept in memory only; its repr never shows the value. A ``ProcessRequest`` carries the secrets
its process may read; runners mount them at ``<platform>/secrets/<id>`` (``secret_mounts``).
Besides that, the build uses the values only to find them where they must not be:

- ``Secrets.mask`` replaces every value by ``***`` in buildpack output before it is logged;
- ``LeakScanner`` searches the bytes of every layer tar the exporter and the cacher write,
  fed in chunks of any size, so a value split across two chunks is still found;
- ``Secrets.scrub_env`` drops variables carrying a value from an environment (the host runner
  hands pybuild's own environment to buildpacks).

What is searched for (the *needles*): the value without surrounding whitespace, so a file's
trailing newline does not hide a copy made with ``$(cat ...)``, and each line of it, stripped
likewise, with at least ``MIN_SECRET_BYTES`` bytes, so one line of a key printed or kept alone
is found too. PEM armour lines (``-----BEGIN ...-----``) are not needles: they are public and
in every CA bundle. Shorter lines would match by chance and are not searched; the platform
refuses a value without a needle of that length. Only verbatim copies are found: an encoded,
compressed or encrypted copy is not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["MASK", "MIN_SECRET_BYTES", "NO_SECRETS", "LeakScanner", "Secret", "Secrets"]

MIN_SECRET_BYTES = 8
MASK = "***"
_PEM_ARMOUR = re.compile(rb"-----(BEGIN|END) [A-Z0-9 ]+-----")


@dataclass(frozen=True)
class Secret:
    id: str
    value: bytes = field(repr=False)

    @property
    def needles(self) -> tuple[bytes, ...]:
        """The value and its lines worth searching for, longest first (see the module doc)."""
        found = {self.value.strip(), *(line.strip() for line in self.value.splitlines())}
        kept = (n for n in found if len(n) >= MIN_SECRET_BYTES and not _PEM_ARMOUR.fullmatch(n))
        return tuple(sorted(kept, key=len, reverse=True))


@dataclass(frozen=True)
class Secrets:
    """The secrets of one build, in the order they were given."""

    items: tuple[Secret, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Secret]:
        return iter(self.items)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(secret.id for secret in self.items)

    @functools.cached_property
    def needles(self) -> dict[bytes, str]:
        """Every needle and the id of the secret it comes from, longest first."""
        found: dict[bytes, str] = {}
        for secret in self.items:
            for needle in secret.needles:
                found.setdefault(needle, secret.id)
        return dict(sorted(found.items(), key=lambda item: len(item[0]), reverse=True))

    @functools.cached_property
    def _text_needles(self) -> tuple[str, ...]:
        return tuple(needle.decode("utf-8", errors="replace") for needle in self.needles)

    def mask(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for needle in self._text_needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def masking(self, sink: Callable[[str], None]) -> Callable[[str], None]:
        """``sink`` behind ``mask``; ``sink`` itself when there are no secrets."""
        if not self.items:
            return sink
        return lambda line: sink(self.mask(line))

    def scanner(self) -> LeakScanner:
        return LeakScanner(self.needles)

    def scrub_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` without the variables whose value holds a secret."""
        return {name: value for name, value in env.items() if not self._holds_secret(value)}

    def _holds_secret(self, value: str) -> bool:
        return any(needle in value for needle in self._text_needles)


NO_SECRETS = Secrets()


class LeakScanner:
    """Searches a byte stream, fed in chunks of any size, for needles; remembers the first found.

    Between chunks it keeps the last ``longest needle - 1`` bytes, so a needle that starts in one
    chunk and ends in a later one is found at the seam; each chunk itself is searched in place.
    """

    def __init__(self, needles: Mapping[bytes, str]) -> None:
        self._needles = dict(needles)
        self._keep = max(map(len, self._needles), default=1) - 1
        self._tail = b""
        self.found: str | None = None  # the id of the first secret found

    def feed(self, chunk: bytes | bytearray) -> str | None:
        """Search ``chunk`` and the seam before it; the id of a secret found so far, or None."""
        if self.found is not None or not self._needles:
            return self.found
        seam = self._tail + bytes(chunk[: self._keep])
        self.found = self._search(seam) or self._search(chunk)
        if self._keep:
            self._tail = (self._tail + bytes(chunk[-self._keep :]))[-self._keep :]
        return self.found

    def _search(self, data: bytes | bytearray) -> str | None:
        return next((secret_id for needle, secret_id in self._needles.items() if needle in data), None)
