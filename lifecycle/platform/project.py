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
        local = []
        for ref in project.buildpacks:
            if not ref.uri:
                raise ConfigError(
                    "read project descriptor",
                    f"{path}: buildpack {ref.id} has no uri (give a uri, or pass it with --buildpack)",
                )
            local.append((path.parent / ref.uri).resolve())
        changes["project_buildpacks"] = tuple(local)
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]
