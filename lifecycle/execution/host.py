"""The host runner: buildpacks run straight on this machine (authoring, quick tests).

Paths inside and outside are the same; only the environment is controlled.
"""

from __future__ import annotations

from lifecycle.execution.process import stream_process
from lifecycle.execution.runner import OutputSink, ProcessRequest, SandboxPaths, Workspace

__all__ = ["HostRunner"]


class HostRunner:
    def paths(self, workspace: Workspace) -> SandboxPaths:
        return SandboxPaths(
            app=str(workspace.app),
            layers=str(workspace.layers),
            platform=str(workspace.platform),
            buildpacks={key: str(path) for key, path in workspace.buildpacks.items()},
        )

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        return stream_process(request.argv, request.env, request.cwd, output)
