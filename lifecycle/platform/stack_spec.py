"""The ``stacks/<name>/stack.toml`` format: what a stack's build, run and patched run images hold.

A stack (DESIGN.md "Stacks and builders") is made from Debian packages by one of two
methods: ``[debs]`` unpacks ``.deb`` files straight into the layer (seconds, for tests)
and ``[mmdebstrap]`` bootstraps a real Debian system. ``[build]`` and ``[run]`` list the
packages and files of each image; ``[run.patch]`` adds packages or files on top of the
run image to make its second version, so rebase can be shown end to end. A malformed file
is a ``StackError`` whose one-line message names the file, the field and the fix.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from lifecycle.errors import StackError

__all__ = ["DebsSpec", "ImageSpec", "MmdebstrapSpec", "RunSpec", "StackSpec", "UserSpec", "load_stack"]

_ACTION = "read stack"
Variant = Literal["essential", "apt", "required", "minbase", "buildd", "important", "standard"]
_VARIANTS = get_args(Variant)

# The fix for a bad value, by field name: pydantic's own words name a Python type, not the fix.
_HINTS = {
    "id": "must be a reverse-DNS id such as io.pybuild.stacks.tiny",
    "name": "must be a tag-safe name: lowercase letters, digits, '.', '_' or '-'",
    "description": "must be a string",
    "maintainer": "must be a string",
    "homepage": "must be an http(s) URL",
    "source-date-epoch": "must be a Unix time in whole seconds, e.g. 1700000000",
    "packages": "must be a list of Debian package names",
    "files": "must be a table of absolute paths to file contents",
    "links": "must be a table of absolute symlink paths to their targets",
    "busybox": "must be the absolute path of the busybox binary in the image, e.g. /bin/busybox",
    "uid": "must be an integer from 1 to 2147483647 (images run as this non-root user)",
    "gid": "must be an integer from 1 to 2147483647 (images run as this non-root group)",
    "shell": "must be an absolute path such as /bin/bash",
    "suite": "must be a Debian suite name such as bookworm",
    "variant": f"must be one of {', '.join(_VARIANTS)}",
    "path-exclude": "must be a list of dpkg path globs such as /usr/share/doc/*",
    "path-include": "must be a list of dpkg path globs such as /usr/share/doc/*/copyright",
}


def _absolute(path: str) -> str:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or str(pure) == "/":
        raise ValueError("not an absolute path below /")
    return str(pure)


AbsPath = Annotated[str, AfterValidator(_absolute)]
DebName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=True,
        alias_generator=lambda name: name.replace("_", "-"),
    )


class UserSpec(_Spec):
    """The non-root user both images run as (cnb-spec.md §4: CNB_USER_ID, CNB_GROUP_ID, User)."""

    name: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "cnb"
    uid: Id = 1000
    gid: Id = 1000
    shell: AbsPath = "/bin/bash"

    @property
    def home(self) -> str:
        return f"/home/{self.name}"


class ImageSpec(_Spec):
    """Packages and files of one image; files replace what packages put at the same path."""

    packages: list[DebName] = []
    files: dict[AbsPath, str] = {}


class PatchSpec(ImageSpec):
    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.packages and not self.files:
            raise ValueError("must add packages or files, so version 2 differs from version 1")
        return self


class RunSpec(ImageSpec):
    patch: PatchSpec


class _PathFilter(_Spec):
    """dpkg's path-exclude/path-include: leave out files (docs, man pages) but keep some of them."""

    path_exclude: list[AbsPath] = []
    path_include: list[AbsPath] = []

    def keeps(self, path: str) -> bool:
        """Whether dpkg would unpack ``path``: excluded unless a later include matches (dpkg(1))."""
        excluded = any(fnmatch.fnmatchcase(path, glob) for glob in self.path_exclude)
        return not excluded or any(fnmatch.fnmatchcase(path, glob) for glob in self.path_include)


class DebsSpec(_PathFilter):
    """Unpack the packages' .deb files as they are: no maintainer scripts run."""

    busybox: AbsPath | None = None  # symlink every applet this binary lists (busybox --list-full)
    links: dict[AbsPath, str] = {}


class MmdebstrapSpec(_PathFilter):
    """Bootstrap a Debian system from the host's configured mirror (ENVIRONMENT.md §1)."""

    suite: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    variant: Variant


class StackSpec(_Spec):
    id: Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")]
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    description: str
    maintainer: str
    homepage: Annotated[str, Field(pattern=r"^https?://\S+$")]
    source_date_epoch: Annotated[int, Field(ge=0)]
    user: UserSpec = UserSpec()
    files: dict[AbsPath, str] = {}
    debs: DebsSpec | None = None
    mmdebstrap: MmdebstrapSpec | None = None
    build: ImageSpec
    run: RunSpec

    @model_validator(mode="after")
    def _one_method(self) -> Self:
        if (self.debs is None) == (self.mmdebstrap is None):
            raise ValueError("give exactly one of [debs] or [mmdebstrap] to say how the images are made")
        if self.debs is not None and not (self.build.packages and self.run.packages):
            raise ValueError("build.packages and run.packages must not be empty with [debs]")
        return self


def load_stack(stack_dir: Path) -> StackSpec:
    """Parse and check ``stack_dir/stack.toml``."""
    path = stack_dir / "stack.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(_ACTION, f"{path} does not exist: a stack directory needs a stack.toml") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StackError(_ACTION, f"{path}: not valid TOML: {exc}") from None
    try:
        return StackSpec.model_validate(document)
    except ValidationError as exc:
        raise StackError(_ACTION, f"{path}: {explain(exc.errors()[0])}") from None


def explain(error: ErrorDetails) -> str:
    """One pydantic error as ``<field> <what is wrong and how to fix it>``."""
    field = _field_path(error["loc"])
    if error["type"] == "missing":
        return f"{field} is missing: add it"
    if error["type"] == "extra_forbidden":
        return f"unknown key {field}: remove it or correct its spelling"
    hint = _HINTS.get(field.rsplit(".", 1)[-1])
    if hint:
        return f"{field} {hint}"
    if error["type"] == "value_error":  # our own model checks, worded for the user
        message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        return f"{field} {message}" if field else message
    return f"{field}: {error['msg']}"


def _field_path(loc: tuple[Any, ...]) -> str:
    """``('run', 'files', '/etc/x', '[key]')`` -> ``run.files``: stop at a table of user keys."""
    parts: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break
        parts.append(part)
        if part in ("files", "links", "packages", "path-exclude", "path-include"):
            break
    return ".".join(parts)
