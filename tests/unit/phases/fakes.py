"""Buildpacks simulated in Python for phase tests: a FakeRunner handler per buildpack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.env import Env
from lifecycle.execution.executor import BuildpackExecutor
from lifecycle.execution.runner import FakeRunner, ProcessRequest, SandboxPaths, Workspace

BuildScript = Callable[[Path, ProcessRequest], int]


def descriptor(bp_id: str, version: str = "1.0", api: str = "0.10", **info: Any) -> BuildpackDescriptor:
    return BuildpackDescriptor.model_validate(
        {"api": api, "buildpack": {"id": bp_id, "version": version, **info}}
    )


class FakeBuildpacks:
    """Workspace + executor whose buildpacks are Python functions keyed by id."""

    def __init__(
        self, tmp_path: Path, scripts: dict[str, BuildScript], apis: dict[str, str] | None = None
    ) -> None:
        self.scripts = scripts
        self.descriptors = {
            bp_id: descriptor(bp_id, api=(apis or {}).get(bp_id, "0.10")) for bp_id in scripts
        }
        dirs = {name: tmp_path / name for name in ("app", "layers", "platform")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        buildpacks = {}
        for bp_id, desc in self.descriptors.items():
            bp_dir = tmp_path / "buildpacks" / bp_id
            (bp_dir / "bin").mkdir(parents=True)
            for name in ("build", "detect"):
                (bp_dir / "bin" / name).write_text("#!/bin/sh\n")
                (bp_dir / "bin" / name).chmod(0o755)
            buildpacks[desc.ref] = bp_dir
        self.workspace = Workspace(dirs["app"], dirs["layers"], dirs["platform"], buildpacks)
        self.runner = FakeRunner(self._handle)
        self.executor = BuildpackExecutor(self.runner, self.workspace, output=lambda line: None)

    def _handle(self, request: ProcessRequest, paths: SandboxPaths) -> tuple[int, str]:
        bp_dir = Path(request.argv[0]).parent.parent
        bp_id = next(i for i, d in self.descriptors.items() if self.workspace.buildpacks[d.ref] == bp_dir)
        if request.argv[0].endswith("/detect"):
            return 0, ""
        return self.scripts[bp_id](Path(request.argv[1]), request), ""

    def group(self, *ids: str) -> tuple[BuildpackDescriptor, ...]:
        return tuple(self.descriptors[i] for i in ids)


def base_env() -> Env:
    return Env({"PATH": "/usr/bin:/bin", "HOME": "/home/cnb"})


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
