"""project.toml: the app's own build settings, merged under the command line's (pack's rules).

Flags win over the descriptor; the descriptor's env fills in what flags did not
set; its buildpacks apply only when no ``--buildpack`` was given.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lifecycle.cnb.project import load_project_toml
from lifecycle.errors import ConfigError
from lifecycle.platform.build import BuildOptions

__all__ = ["apply_project"]


def apply_project(options: BuildOptions, descriptor: Path | None) -> BuildOptions:
    path = descriptor or options.path / "project.toml"
    if not path.is_file():
        if descriptor is not None:
            raise ConfigError("read project descriptor", f"{path} does not exist (check --descriptor)")
        return options
    project = load_project_toml(path)
    env = {**{e.name: e.value for e in project.env}, **options.env}
    changes: dict[str, object] = {
        "env": env,
        "include": project.include or (),
        "exclude": project.exclude or (),
        "builder": options.builder or project.builder,
    }
    if not options.buildpacks and project.buildpacks:
        changes["buildpacks"] = tuple(
            _reference(ref.uri, ref.id, ref.version, path.parent) for ref in project.buildpacks
        )
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def _reference(uri: str | None, bp_id: str | None, version: str | None, base: Path) -> str:
    """A project.toml buildpack as a ``resolve_buildpack`` reference: a uri, or an id of the builder."""
    if uri:
        if "://" in uri or uri.startswith(("oci:", "urn:")):
            return uri
        return str((base / uri).resolve())
    return f"{bp_id}@{version}" if version else str(bp_id)
