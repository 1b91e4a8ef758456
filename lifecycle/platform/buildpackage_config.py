"""package.toml in pack's format: what ``pybuild buildpack package`` puts in a buildpackage.

```
[buildpack]
uri = "path/to/buildpack"            # the entrypoint: a dir, .tgz, .cnb or image reference

[[dependencies]]
uri = "../other"                     # a dir, .tgz, .cnb, docker://REF or oci:DIR[:tag] ...
[[dependencies]]
image = "localhost:5000/acme/dep:1"  # ... or an image reference

[platform]
os = "linux"                         # only linux; `architecture` (default amd64) is pybuild's
```

Relative paths are relative to the file. Every problem is one ``ConfigError`` line naming the
file and the field, e.g. ``package.toml: dependencies[0].uri "../nope" does not exist (check the
path)``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from lifecycle.errors import ConfigError

__all__ = [
    "PackageBuildpack",
    "PackageConfig",
    "PackageDependency",
    "PackagePlatform",
    "load_package_toml",
    "local_path",
    "looks_like_path",
]

_SCHEMES = ("docker://", "oci:", "docker-daemon:", "urn:", "http://", "https://")
_PATH_STARTS = ("./", "../", "/", "~", "file://")
_ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".cnb")


class _PackageModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PackageBuildpack(_PackageModel):
    """``[buildpack]``: the entrypoint buildpack."""

    uri: str = Field(min_length=1)


class PackageDependency(_PackageModel):
    """A ``[[dependencies]]`` entry: exactly one of ``uri`` and ``image``."""

    uri: str | None = Field(default=None, min_length=1)
    image: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> PackageDependency:
        if self.uri is None and self.image is None:
            raise ValueError("has neither uri nor image (set one)")
        if self.uri is not None and self.image is not None:
            raise ValueError("has both uri and image (keep one)")
        return self

    @property
    def reference(self) -> str:
        """What to resolve: the uri, or the image reference."""
        return self.uri if self.uri is not None else str(self.image)


class PackagePlatform(_PackageModel):
    """``[platform]``: the image config's os (and architecture)."""

    os: Literal["linux"] = "linux"
    architecture: str = Field(default="amd64", min_length=1)


class PackageConfig(_PackageModel):
    """The whole package.toml."""

    buildpack: PackageBuildpack
    dependencies: tuple[PackageDependency, ...] = ()
    platform: PackagePlatform = Field(default_factory=PackagePlatform)


def looks_like_path(uri: str) -> bool:
    """A reference that can only mean a file or directory: ``./x``, ``../x``, ``/x``, ``~/x``, ``x.tgz``...

    Other names without a scheme may also be images or buildpack IDs (``acme/node:1``).
    """
    if uri.startswith(_SCHEMES):
        return False
    return uri.startswith(_PATH_STARTS) or uri.endswith(_ARCHIVE_SUFFIXES)


def local_path(uri: str, base: Path) -> Path:
    """The file or directory a local ``uri`` names, relative to ``base``."""
    return base / Path(uri.removeprefix("file://")).expanduser()


def load_package_toml(path: Path) -> PackageConfig:
    """Read and check package.toml: its shape, then that every local uri exists."""
    what = f"read {path.name}"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(what, f"{path}: does not exist (check --config)") from None
    except OSError as exc:
        raise ConfigError(what, f"{path}: cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(what, f"{path}: is not valid TOML: {exc} (fix the syntax)") from None
    try:
        config = PackageConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(what, f"{path}: {_describe(exc.errors()[0])}") from None
    _check_local_uris(config, path)
    return config


def _check_local_uris(config: PackageConfig, path: Path) -> None:
    fields = [("buildpack.uri", config.buildpack.uri)]
    fields += [(f"dependencies[{i}].uri", d.uri) for i, d in enumerate(config.dependencies) if d.uri]
    for field, uri in fields:
        if looks_like_path(uri) and not local_path(uri, path.parent).exists():
            raise ConfigError(f"read {path.name}", f'{path}: {field} "{uri}" does not exist (check the path)')


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as ``<field> <problem> (<fix>)``."""
    field = ""
    for part in error["loc"]:
        field += f"[{part}]" if isinstance(part, int) else f".{part}"
    field = field.lstrip(".") or "the file"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        hint = ' (add [buildpack] uri = "PATH")' if field == "buildpack" else " (add it)"
        return f"{field} is missing{hint}"
    if error["type"] == "value_error":
        return f"{field} {message}"
    got = repr(error["input"])
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{field} is invalid: {message[:1].lower()}{message[1:]} (got {got})"
