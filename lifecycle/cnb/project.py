"""project.toml, pack's project descriptor, in schema 0.2 (`[_]`, `[io.buildpacks]`) and 0.1
(`[project]`, `[build]`), both read into one `ProjectDescriptor`.

A file without `_.schema-version` is 0.1, as in pack. pack's checks apply: not both
`include` and `exclude`; each buildpack has an `id` or a `uri`, and not a `uri` with a `version`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from lifecycle.cnb._files import config_error, read_toml, validate
from lifecycle.cnb._model import TomlModel

__all__ = [
    "ProjectBuildpackRef",
    "ProjectDescriptor",
    "ProjectEnvVar",
    "ProjectLicense",
    "ProjectScript",
    "load_project_toml",
]


class ProjectLicense(TomlModel):
    """A `licenses` entry: `type` or `uri`."""

    type: str | None = None
    uri: str | None = None

    @model_validator(mode="after")
    def _type_or_uri(self) -> ProjectLicense:
        if not self.type and not self.uri:
            raise ValueError("a license has neither type nor uri (set one)")
        return self


class ProjectScript(TomlModel):
    """An inline buildpack's `script` table."""

    api: str = ""
    inline: str = ""
    shell: str = ""


class ProjectBuildpackRef(TomlModel):
    """A buildpack the project asks for: `id` (with optional `version`) or `uri`."""

    id: str | None = None
    version: str | None = None
    uri: str | None = None
    script: ProjectScript | None = None

    @model_validator(mode="after")
    def _id_or_uri(self) -> ProjectBuildpackRef:
        if not self.id and not self.uri:
            raise ValueError("a buildpack has neither id nor uri (set one)")
        if self.uri and self.version:
            raise ValueError(f'buildpack "{self.uri}" has both uri and version (drop the version)')
        return self


class ProjectEnvVar(TomlModel):
    """A build-time `env` entry: `name`, `value`."""

    name: str = Field(min_length=1)
    value: str = ""


class ProjectDescriptor(TomlModel):
    """A project.toml of either schema, in one shape."""

    schema_version: str
    id: str | None = None
    name: str | None = None
    version: str | None = None
    licenses: tuple[ProjectLicense, ...] = ()
    builder: str | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    buildpacks: tuple[ProjectBuildpackRef, ...] = ()
    pre: tuple[ProjectBuildpackRef, ...] = ()
    post: tuple[ProjectBuildpackRef, ...] = ()
    env: tuple[ProjectEnvVar, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _include_or_exclude(self) -> ProjectDescriptor:
        if self.include is not None and self.exclude is not None:
            raise ValueError("include and exclude are both set (keep one)")
        return self


def load_project_toml(path: Path) -> ProjectDescriptor:
    """Read project.toml of schema 0.1 or 0.2."""
    raw = read_toml(path)
    project = raw.get("_", {})
    schema = project.get("schema-version", "0.1") if isinstance(project, dict) else "0.1"
    if schema == "0.2":
        return validate(path, ProjectDescriptor, _from_v02(project, raw), renamed=_V02_KEYS)
    if schema == "0.1":
        return validate(path, ProjectDescriptor, _from_v01(raw), renamed=_V01_KEYS)
    raise config_error(path, f'_.schema-version "{schema}" is not supported (use 0.1 or 0.2)')


# Where each ProjectDescriptor key sits in a file of each schema, for error messages.
_V02_KEYS = {
    **{key: f"_.{key}" for key in ("id", "name", "version", "licenses", "metadata")},
    **{key: f"io.buildpacks.{key}" for key in ("builder", "include", "exclude")},
    "buildpacks": "io.buildpacks.group",
    "pre": "io.buildpacks.pre.group",
    "post": "io.buildpacks.post.group",
    "env": "io.buildpacks.build.env",
}
_V01_KEYS = {
    **{key: f"project.{key}" for key in ("id", "name", "version", "licenses")},
    **{key: f"build.{key}" for key in ("builder", "include", "exclude", "buildpacks", "env")},
}


def _table(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The nested table at `keys`, or {} where a level is missing."""
    for key in keys:
        value = raw.get(key)
        raw = value if isinstance(value, dict) else {}
    return raw


def _from_v02(project: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    io_buildpacks = _table(raw, "io", "buildpacks")
    # pack still reads the old `[[io.buildpacks.env.build]]` spelling when the new one is absent.
    env = _table(io_buildpacks, "build").get("env", _table(io_buildpacks, "env").get("build", []))
    return {
        **{key: project[key] for key in ("id", "name", "version", "licenses", "metadata") if key in project},
        "schema-version": "0.2",
        **{key: io_buildpacks[key] for key in ("builder", "include", "exclude") if key in io_buildpacks},
        "buildpacks": io_buildpacks.get("group", []),
        "pre": _table(io_buildpacks, "pre").get("group", []),
        "post": _table(io_buildpacks, "post").get("group", []),
        "env": env,
    }


def _from_v01(raw: dict[str, Any]) -> dict[str, Any]:
    project, build = _table(raw, "project"), _table(raw, "build")
    return {
        **{key: project[key] for key in ("id", "name", "version", "licenses") if key in project},
        "schema-version": "0.1",
        **{key: build[key] for key in ("builder", "include", "exclude", "buildpacks", "env") if key in build},
        "metadata": raw.get("metadata", {}),
    }
