"""The Runner seam: start one process in a sandbox and stream its output.

A runner knows where things are inside its sandbox (``SandboxPaths``); the
``BuildpackExecutor`` above speaks only those paths, so one executor serves the
bwrap, docker, host and fake runners alike (DESIGN.md "how buildpacks run").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lifecycle.execution.secrets import NO_SECRETS, Secrets

__all__ = ["FakeRunner", "OutputSink", "ProcessRequest", "Runner", "SandboxPaths", "Workspace", "host_paths"]

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class Workspace:
    """Host directories a build works in."""

    app: Path
    layers: Path
    platform: Path
    buildpacks: Mapping[str, Path] = field(default_factory=dict)  # "id@version" -> host dir


@dataclass(frozen=True)
class SandboxPaths:
    """The same directories as a buildpack sees them."""

    app: str
    layers: str
    platform: str
    buildpacks: Mapping[str, str]


@dataclass(frozen=True)
class ProcessRequest:
    argv: list[str]
    env: Mapping[str, str]
    cwd: str
    secrets: Secrets = NO_SECRETS  # mounted at <platform>/secrets/<id> for this process only
    # Dirs under the layers dir (relative) this process may write; None: all of it. A runner
    # that can confine mounts the rest read-only (bwrap); others may give more.
    writable_layers: tuple[str, ...] | None = None


class Runner(Protocol):
    """One method that matters: run a process, return its exit code."""

    def paths(self, workspace: Workspace) -> SandboxPaths: ...

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int: ...


def buildpack_path(key: str) -> str:
    """``id@version`` -> ``/cnb/buildpacks/<escaped id>/<version>``, as in buildpackages (GEN-3)."""
    buildpack_id, _, version = key.rpartition("@")
    return f"/cnb/buildpacks/{buildpack_id.replace('/', '_')}/{version}"


def host_paths(workspace: Workspace) -> SandboxPaths:
    """For runners without a sandbox: buildpacks see the host paths themselves."""
    return SandboxPaths(
        app=str(workspace.app),
        layers=str(workspace.layers),
        platform=str(workspace.platform),
        buildpacks={key: str(path) for key, path in workspace.buildpacks.items()},
    )


Handler = Callable[[ProcessRequest, SandboxPaths], tuple[int, str]]


class FakeRunner:
    """Runs a Python function instead of a process: unit tests (like httpx's MockTransport)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[ProcessRequest] = []

    def paths(self, workspace: Workspace) -> SandboxPaths:
        return host_paths(workspace)

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        self.requests.append(request)
        code, text = self.handler(request, self.paths(workspace))
        for line in text.splitlines():
            output(line)
        return code
