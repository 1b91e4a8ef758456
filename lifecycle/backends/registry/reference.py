"""Registry image references: ``host/repo:tag``, ``host/repo@sha256:..``, with or without ``docker://``.

Docker's rules decide whether the first path component is a host: it is ``localhost`` or holds a
``.`` or a ``:``. A name without a host would mean Docker Hub, which pybuild cannot reach, so it is
refused with a hint to name the registry (DESIGN.md "where images live").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import NamedTuple

from lifecycle.errors import ConfigError
from lifecycle.oci.digest import is_digest

__all__ = ["DEFAULT_TAG", "Reference", "is_host", "is_loopback_host", "parse_reference", "split_repository"]

DEFAULT_TAG = "latest"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"\w[\w.-]{0,127}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_TRANSPORT = "docker://"


class Reference(NamedTuple):
    """A registry host, a repository in it, and a tag or a digest."""

    host: str
    repository: str
    reference: str

    @property
    def is_digest(self) -> bool:
        return is_digest(self.reference)

    @property
    def name(self) -> str:
        """``host/repository``: what ``docker login`` and error messages name."""
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        separator = "@" if self.is_digest else ":"
        return f"{self.name}{separator}{self.reference}"


def parse_reference(text: str) -> Reference:
    """``[docker://]host/repo[:tag|@digest]`` -> Reference; a missing tag means ``latest``."""
    full = text.removeprefix(_TRANSPORT)
    first, slash, rest = full.partition("/")
    if not slash or not is_host(first):
        raise ConfigError(
            f"parse image reference {text!r}",
            f"name the registry host, e.g. localhost:5000/{full} (Docker Hub is not reachable from pybuild)",
        )
    repository, reference = split_repository(rest, text)
    return Reference(first, repository, reference)


def is_host(component: str) -> bool:
    """Docker's test for a registry host in the first path component of a name."""
    looks_like_host = component == "localhost" or "." in component or ":" in component
    return looks_like_host and _HOST.fullmatch(component) is not None


def split_repository(name: str, original: str | None = None) -> tuple[str, str]:
    """``repo:tag`` / ``repo@digest`` / ``repo`` -> (repository, tag or digest); a digest wins over a tag."""
    what = f"parse image reference {original or name!r}"
    rest, at, digest = name.partition("@")
    if at and not is_digest(digest):
        raise ConfigError(what, f"{digest!r} is not a sha256 digest")
    tag = DEFAULT_TAG
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ConfigError(what, f"{tag!r} is not a valid tag")
    if not _REPOSITORY.fullmatch(rest):
        raise ConfigError(
            what, f"{rest!r} is not a valid repository name (lower-case letters, digits, . _ - /)"
        )
    return rest, digest if at else tag


def is_loopback_host(host: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``host`` is spoken to over plain HTTP: loopback (as docker does) or listed by the user."""
    listed = {entry.strip() for entry in extra if entry.strip()}
    bare = _strip_port(host)
    if host in listed or bare in listed or bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
