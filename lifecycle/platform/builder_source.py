"""What a builder was made from: a fingerprint of its builder.toml and the local buildpacks it names.

`pybuild builder create` records it in the builder dir (``source.json``: the fingerprint and the
builder.toml it was made from). The builders pybuild embeds (``KNOWN_BUILDERS``) are made on
first use from pybuild's own files; when pybuild is upgraded or its buildpacks change, the
recorded fingerprint no longer matches and the builder is made again, instead of building with
stale buildpacks forever. A builder the user made under such a name from another builder.toml
is theirs and is left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lifecycle import __version__

__all__ = ["RECORD", "Source", "recorded", "source_fingerprint"]

RECORD = "source.json"


def source_fingerprint(config_path: Path) -> str:
    """sha256 over pybuild's version, builder.toml and every local directory its uris name."""
    digest = hashlib.sha256(f"pybuild {__version__}\n".encode())
    raw = config_path.read_bytes()
    digest.update(raw)
    try:
        config = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return digest.hexdigest()  # create_builder reports the error itself
    for table in ("buildpacks", "extensions"):
        entries = config.get(table, [])
        for entry in entries if isinstance(entries, list) else []:
            uri = entry.get("uri") if isinstance(entry, dict) else None
            if isinstance(uri, str):
                local = (config_path.parent / uri.removeprefix("file://")).resolve()
                digest.update(f"\0{table}\0{uri}\0".encode())
                if local.is_dir():
                    _tree(local, digest)
                elif local.is_file():
                    digest.update(hashlib.sha256(local.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Source:
    fingerprint: str
    config: str  # the builder.toml, resolved

    @classmethod
    def of(cls, config_path: Path) -> Source:
        return cls(source_fingerprint(config_path), str(config_path.resolve()))

    def dumps(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, "config": self.config}, sort_keys=True) + "\n"


def recorded(builder_dir: Path) -> Source | None:
    """What the builder in ``builder_dir`` was made from; None if unknown (an older pybuild)."""
    try:
        data = json.loads((builder_dir / RECORD).read_text())
        return Source(str(data["fingerprint"]), str(data["config"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tree(root: Path, digest: hashlib._Hash) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            info = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{stat.S_IMODE(info.st_mode):o}\0".encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                digest.update(hashlib.sha256(path.read_bytes()).digest())
