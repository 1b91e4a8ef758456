"""What the exporter writes besides layers: the image config and the CNB labels (EXP-8..12).

Pure functions of the build's metadata and the run image, so the same inputs give the same
config bytes (EXP-6).
"""

from __future__ import annotations

from lifecycle.cnb.labels import BuildMetadataLabel, BuildpackRefLabel, ProcessLabel, RunImageForRebase
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.oci.image import Image
from lifecycle.oci.models import ContainerConfig

__all__ = ["LAUNCHER_PATH", "build_label", "container_config", "run_image_label"]

LAUNCHER_PATH = "/cnb/lifecycle/launcher"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run_image_label(
    run_image: Image, name: str, reference: str, mirrors: tuple[str, ...]
) -> RunImageForRebase:
    """``runImage``: the run image's top layer and names, for rebase (REB-1, REB-5)."""
    return RunImageForRebase(
        top_layer=run_image.diff_ids[-1] if run_image.layers else "",
        reference=reference,
        image=name,
        mirrors=mirrors,
    )


def build_label(meta: ConfigMetadata) -> BuildMetadataLabel:
    """``io.buildpacks.build.metadata`` (EXP-11, cnb-spec.md §3)."""
    return BuildMetadataLabel(
        buildpacks=tuple(
            BuildpackRefLabel(id=b.id, version=b.version, homepage=b.homepage or "") for b in meta.buildpacks
        ),
        processes=tuple(
            ProcessLabel(
                type=p.type,
                command=p.command,
                args=p.args or None,
                direct=p.direct,
                buildpack_id=p.buildpack_id,
                working_dir=p.working_dir,
                exec_env=p.exec_env,
            )
            for p in meta.processes
        ),
        buildpack_default_process_type=meta.buildpack_default_process_type or "",
        extensions=tuple(
            BuildpackRefLabel(id=e.id, version=e.version, homepage=e.homepage or "") for e in meta.extensions
        ),
    )


def container_config(cfg: ContainerConfig, default_type: str | None, platform_api: str) -> ContainerConfig:
    """Env (EXP-9), Entrypoint and Cmd (EXP-8), WorkingDir (EXP-10); User is the run image's."""
    env = cfg.env_dict()
    run_path = env.get("PATH", _DEFAULT_PATH)
    env.update(
        CNB_LAYERS_DIR="/layers",
        CNB_APP_DIR="/workspace",
        CNB_PLATFORM_API=platform_api,
        CNB_DEPRECATION_MODE="quiet",
        PATH=f"/cnb/process:/cnb/lifecycle:{run_path}",
    )
    entrypoint = f"/cnb/process/{default_type}" if default_type else LAUNCHER_PATH
    return cfg.model_copy(
        update={
            "env": [f"{k}={v}" for k, v in env.items()],
            "entrypoint": [entrypoint],
            "cmd": None,
            "working_dir": "/workspace",
        }
    )
