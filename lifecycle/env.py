"""Environment rules for buildpacks and launched processes (BLD-6..9, LCH-5, cnb-spec.md §4).

This module owns how an environment is *computed*, not how a process is started:
- env dirs (`env/`, `env.build/`, `env.launch/`, `env.launch/<type>/`, `/platform/env`,
  `<build-config>/env`) read into an ordered list of `EnvOperation` (BLD-7);
- layer dirs (`bin`, `lib`, `include`, `pkgconfig`) turned into path operations (BLD-6, LCH-5);
- the allow-list of the platform's own environment handed to buildpacks (BLD-9);
- user variables from `/platform/env` (BLD-8) and pack-style `--env`/`--env-file` input.

Operations are plain values so the exporter can write them into a launch plan and the
launcher can apply them at start (a rebase may change the run image's env).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Literal

from lifecycle.errors import ConfigError

__all__ = [
    "BUILD_ALLOWED_VARS",
    "MAX_ENV_FILE",
    "PATH_VARS",
    "Env",
    "EnvOp",
    "EnvOperation",
    "Phase",
    "build_layer_operations",
    "filter_platform_env",
    "launch_operations",
    "layer_path_operations",
    "parse_env_assignment",
    "parse_env_file",
    "read_env_dir",
    "read_env_file",
    "read_user_env",
    "user_env_operations",
]

Phase = Literal["build", "launch"]

MAX_ENV_FILE = 1 << 20
"""The most bytes of one env file that are read."""


class EnvOp(StrEnum):
    """What an env file does to its variable (BLD-7): the file-name suffix."""

    OVERRIDE = "override"
    DEFAULT = "default"
    PREPEND = "prepend"
    APPEND = "append"


@dataclass(frozen=True)
class EnvOperation:
    """One change to one variable: `value` verbatim, `delim` None when no `.delim` file exists."""

    name: str
    op: EnvOp
    value: str
    delim: str | None = None

    def apply_to(self, current: str | None) -> str | None:
        """The variable's new value given its current one (None means unset)."""
        delim = self.delim or ""
        match self.op:
            case EnvOp.OVERRIDE:
                return self.value
            case EnvOp.DEFAULT:
                # "Empty" counts as unset, as in the lifecycle.
                return current if current else self.value
            case EnvOp.PREPEND:
                # No separator before an empty value: a trailing ":" in PATH would mean ".".
                return self.value + (delim + current if current else "")
            case EnvOp.APPEND:
                return (current + delim if current else "") + self.value


class Env(Mapping[str, str]):
    """An immutable set of environment variables; `apply` returns a new Env."""

    __slots__ = ("_vars",)

    def __init__(self, variables: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._vars: dict[str, str] = dict(variables)

    def __getitem__(self, name: str) -> str:
        return self._vars[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __repr__(self) -> str:
        return f"Env({self._vars!r})"

    def apply(self, operations: Iterable[EnvOperation]) -> Env:
        """Apply `operations` in order; each one sees the result of the ones before it."""
        changed = dict(self._vars)
        for operation in operations:
            value = operation.apply_to(changed.get(operation.name))
            if value is not None:
                changed[operation.name] = value
        return Env(changed)

    def to_dict(self) -> dict[str, str]:
        """A mutable copy, e.g. for `subprocess` or a container config."""
        return dict(self._vars)


def read_env_dir(env_dir: Path, *, no_suffix: EnvOp = EnvOp.OVERRIDE) -> list[EnvOperation]:
    """Read one env dir into operations, in file-name order (BLD-7).

    The name is the file name up to the first `.`; the rest is the suffix. A file without a
    suffix does `no_suffix`: override for buildpacks, default for operator build-config env
    (BLD-8). `<NAME>.delim` sets the separator for NAME within this dir only. Unknown suffixes,
    names starting with `.`, subdirectories and a missing dir give nothing. Values are verbatim.

    A buildpack wrote these files in its sandbox, but they are read here, on the host: a
    symbolic link (the dir, its layer dir or a file) would be resolved against the host's
    filesystem and hand a host file to the next buildpack, so it is a `ConfigError`.
    """
    for path in (env_dir.parent, env_dir):
        if path.is_symlink():
            raise ConfigError("read env dir", f"{path} is a symbolic link (write plain files)")
    if not env_dir.is_dir():
        return []
    entries = sorted(env_dir.iterdir())
    for entry in entries:
        if entry.is_symlink():
            raise ConfigError("read env dir", f"{entry} is a symbolic link (write the value into the file)")
    files = [entry for entry in entries if entry.is_file()]
    delims = {_split(f.name)[0]: _read_verbatim(f) for f in files if _split(f.name)[1] == "delim"}
    operations = []
    for file in files:
        name, suffix = _split(file.name)
        op = no_suffix if suffix is None else _known_op(suffix)
        if op is not None and name:
            operations.append(EnvOperation(name, op, _read_verbatim(file), delims.get(name)))
    return operations


def _read_verbatim(file: Path) -> str:
    # Bytes as written: no newline translation, and undecodable bytes kept the way os.environ keeps them.
    with file.open("rb") as source:
        data = source.read(MAX_ENV_FILE + 1)
    if len(data) > MAX_ENV_FILE:
        # The kernel passes no single variable longer than 128 KiB to a process anyway.
        raise ConfigError("read env file", f"{file} is larger than {MAX_ENV_FILE} bytes")
    return data.decode("utf-8", "surrogateescape")


def _split(file_name: str) -> tuple[str, str | None]:
    name, dot, suffix = file_name.partition(".")
    return name, suffix if dot else None


def _known_op(suffix: str) -> EnvOp | None:
    try:
        return EnvOp(suffix)
    except ValueError:
        return None


# Layer subdirs and the variables they extend, per phase (BLD-6 at build, LCH-5 at launch).
_LAYER_PATHS: dict[Phase, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "build": (
        ("bin", ("PATH",)),
        ("lib", ("LD_LIBRARY_PATH", "LIBRARY_PATH")),
        ("include", ("CPATH",)),
        ("pkgconfig", ("PKG_CONFIG_PATH",)),
    ),
    "launch": (
        ("bin", ("PATH",)),
        ("lib", ("LD_LIBRARY_PATH",)),
    ),
}

PATH_VARS = frozenset(var for _, names in _LAYER_PATHS["build"] for var in names)
"""Variables that hold search paths: /platform/env prepends to these instead of overriding (BLD-8)."""


def layer_path_operations(
    layer_dir: Path, phase: Phase, *, visible_as: PurePath | None = None
) -> list[EnvOperation]:
    """Prepend the layer's existing `bin`, `lib`, ... dirs to their variables (BLD-6, LCH-5).

    `layer_dir` is where the layer is read on this machine; `visible_as` is where the buildpack
    or the app sees it (e.g. `/layers/acme_node/runtime`), which is what goes into the value.
    """
    shown = visible_as if visible_as is not None else layer_dir
    return [
        EnvOperation(var, EnvOp.PREPEND, str(shown / subdir), os.pathsep)
        for subdir, variables in _LAYER_PATHS[phase]
        if (layer_dir / subdir).is_dir()
        for var in variables
    ]


def build_layer_operations(layer_dir: Path, *, visible_as: PurePath | None = None) -> list[EnvOperation]:
    """What one `build=true` layer does to later buildpacks' env (BLD-6).

    The layer's dirs come before its env files, so its own `PATH.prepend` lands in front of
    its `bin`; then `env/`, then `env.build/`. Callers go through a buildpack's layers in
    alphabetical order.
    """
    return [
        *layer_path_operations(layer_dir, "build", visible_as=visible_as),
        *read_env_dir(layer_dir / "env"),
        *read_env_dir(layer_dir / "env.build"),
    ]


def launch_operations(
    buildpack_dir: Path,
    layer_names: Iterable[str],
    process_type: str | None = None,
    *,
    visible_as: PurePath | None = None,
) -> list[EnvOperation]:
    """What one buildpack's launch layers do to a process's env (LCH-5).

    First the `bin`/`lib` dirs of all its layers, alphabetically; then, layer by layer, `env/`,
    `env.launch/` and `env.launch/<process_type>/`. `visible_as` is the buildpack's layers dir
    as the app sees it (e.g. `/layers/acme_node`).
    """
    names = sorted(layer_names)
    shown = visible_as if visible_as is not None else buildpack_dir
    operations = [
        op
        for name in names
        for op in layer_path_operations(buildpack_dir / name, "launch", visible_as=shown / name)
    ]
    for name in names:
        operations += _launch_env_files(buildpack_dir / name, process_type)
    return operations


def _launch_env_files(layer_dir: Path, process_type: str | None) -> list[EnvOperation]:
    operations = read_env_dir(layer_dir / "env") + read_env_dir(layer_dir / "env.launch")
    if process_type:
        operations += read_env_dir(layer_dir / "env.launch" / process_type)
    return operations


BUILD_ALLOWED_VARS = frozenset(
    {
        "HOME",
        "HOSTNAME",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "CNB_STACK_ID",
        *PATH_VARS,
    }
)
"""The only variables of pybuild's own environment a buildpack gets (BLD-9)."""


def filter_platform_env(environ: Mapping[str, str]) -> Env:
    """Keep only the allow-listed variables of the platform's environment (BLD-9)."""
    return Env((name, value) for name, value in environ.items() if name in BUILD_ALLOWED_VARS)


def read_user_env(platform_dir: Path) -> dict[str, str]:
    """`<platform>/env/<NAME>` files, one variable each, values verbatim (cnb-spec.md §4)."""
    env_dir = platform_dir / "env"
    if not env_dir.is_dir():
        return {}
    return {entry.name: _read_verbatim(entry) for entry in sorted(env_dir.iterdir()) if entry.is_file()}


def user_env_operations(user_vars: Mapping[str, str]) -> list[EnvOperation]:
    """User variables as operations (BLD-8): path variables are prepended, others override.

    Applied again before each buildpack, except those with `clear-env = true`.
    """
    return [
        EnvOperation(name, EnvOp.PREPEND, value, os.pathsep)
        if name in PATH_VARS
        else EnvOperation(name, EnvOp.OVERRIDE, value)
        for name, value in user_vars.items()
    ]


def parse_env_assignment(entry: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """One pack-style `--env` value: `KEY=VALUE`, or `KEY` alone to take KEY from `environ`."""
    name, equals, value = entry.partition("=")
    if not name:
        raise ConfigError("parse env", f'"{entry}" has no variable name (write KEY=VALUE or KEY)')
    value = value if equals else environ.get(name, "")
    if "\0" in name or "\0" in value:
        # No process environment can hold a NUL byte; it would fail later, with a traceback.
        raise ConfigError("parse env", f"{name!r} holds a NUL byte (remove it)")
    return name, value


def parse_env_file(text: str, environ: Mapping[str, str], *, source: str = "env file") -> dict[str, str]:
    """A pack-style env file: `KEY=VALUE` or `KEY` lines; blank lines and `#` comments skipped.

    Lines are stripped of surrounding whitespace, as pack does; the value after the first `=`
    is kept as is otherwise. Later lines win.
    """
    variables: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            name, value = parse_env_assignment(stripped, environ)
        except ConfigError as exc:
            raise ConfigError("parse env", f"{source} line {number}: {exc.cause}") from None
        variables[name] = value
    return variables


def read_env_file(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Read and parse a `--env-file` (see `parse_env_file`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("read env file", f"{path}: {exc.strerror} (check the --env-file path)") from exc
    except UnicodeDecodeError as exc:
        detail = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError("read env file", detail) from None
    return parse_env_file(text, environ, source=str(path))
