"""From the build's ``metadata.toml`` to what the launcher needs in the image.

The exporter calls this once per export: it turns the processes (BLD-11) and
the launch layers on disk into the launcher's plan file (LCH-1..8).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.launcher import PLAN_PATH, LaunchPlan, Process, launcher_script, render_plan, scan_layers
from lifecycle.phases.export import LaunchFiles

__all__ = ["launch_files"]


def launch_files(
    metadata: ConfigMetadata, layers_dir: Path, group: Sequence[BuildpackDescriptor]
) -> LaunchFiles:
    apis = {bp.buildpack.id: str(bp.api) for bp in group}
    processes = tuple(
        Process(
            type=p.type,
            command=p.command,
            buildpack_id=p.buildpack_id,
            buildpack_api=apis.get(p.buildpack_id, "0.12"),
            args=p.args,
            direct=p.direct,
            default=p.type == metadata.buildpack_default_process_type,
            working_dir=p.working_dir,
            exec_env=p.exec_env or None,
        )
        for p in metadata.processes
    )
    layers = scan_layers(layers_dir, [bp.buildpack.id for bp in group])
    plan = LaunchPlan(processes=processes, layers=tuple(layers))
    return LaunchFiles(launcher=launcher_script(), plan_path=f"/layers/{PLAN_PATH}", plan=render_plan(plan))
