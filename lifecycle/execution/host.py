"""The host runner: buildpacks run straight on this machine (authoring, quick tests).

Paths inside and outside are the same; only the environment is controlled. Build secrets are
files in memory behind ``<platform>/secrets`` for the length of each run (``secret_mounts``).
"""

from __future__ import annotations

from lifecycle.execution.process import stream_process
from lifecycle.execution.runner import OutputSink, ProcessRequest, SandboxPaths, Workspace, host_paths
from lifecycle.execution.secret_mounts import host_secrets

__all__ = ["HostRunner"]


class HostRunner:
    def paths(self, workspace: Workspace) -> SandboxPaths:
        return host_paths(workspace)

    def run(self, request: ProcessRequest, workspace: Workspace, output: OutputSink) -> int:
        with host_secrets(workspace.platform, request.secrets):
            return stream_process(request.argv, request.env, request.cwd, output)
