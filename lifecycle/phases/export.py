"""The export phase: app layers and CNB metadata over the run image (EXP-1..13).

Layers are appended in the lifecycle's order (EXP-2): each buildpack's launch
layers by name, the app (one layer per slice plus the rest), the launcher, the
config, and the process-type links. Every tar is reproducible (EXP-5, EXP-6);
layers are compressed in parallel threads, each in one pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lifecycle.appimage import AppImage
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.labels import (
    BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    PROJECT_METADATA_LABEL,
    BuildMetadataLabel,
    BuildpackLayersLabel,
    BuildpackRefLabel,
    LayerLabel,
    LayerSha,
    LifecycleMetadata,
    ProcessLabel,
    RunImageForRebase,
    StackLabel,
    StackRunImage,
    StoreLabel,
)
from lifecycle.cnb.layers import ConfigMetadata, load_layer_toml, load_store_toml
from lifecycle.errors import ExitCode, PybuildError
from lifecycle.oci import mutate
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.models import ContainerConfig
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar
from lifecycle.phases.slices import split_slices

__all__ = ["ExportFailed", "ExportInputs", "Exporter", "LaunchFiles"]

LAUNCHER_PATH = "/cnb/lifecycle/launcher"
CONSTANT_CREATED = "1980-01-01T00:00:01Z"


class ExportFailed(PybuildError):
    exit_code = ExitCode.EXPORT


@dataclass(frozen=True)
class LaunchFiles:
    """What the launcher package puts in the image: the script and the resolved plan."""

    launcher: bytes
    plan_path: str  # in the image, under the config layer
    plan: bytes


@dataclass(frozen=True)
class ExportInputs:
    run_image: Image
    run_image_name: str  # as the user named it, e.g. ``pybuild/run:tiny``
    run_image_reference: str  # digest reference, ``pybuild/run@sha256:...``
    group: tuple[BuildpackDescriptor, ...]
    metadata: ConfigMetadata
    layers_dir: Path
    app_dir: Path
    scratch: Path
    launch_files: Callable[[ConfigMetadata], LaunchFiles]
    uid: int = 1000
    gid: int = 1000
    mtime: int = DEFAULT_MTIME
    created: str = CONSTANT_CREATED
    platform_api: str = "0.15"
    process_type: str | None = None
    run_image_mirrors: tuple[str, ...] = ()
    project_metadata: str = "{}"
    exec_env: str = "production"
    launcher_version: str = ""


@dataclass
class _Stack:
    """Layers in export order, with the label entries they produce."""

    layers: list[Layer] = field(default_factory=list)
    created_by: list[str] = field(default_factory=list)

    def add(self, layer: Layer, created_by: str) -> str:
        self.layers.append(layer)
        self.created_by.append(created_by)
        return layer.diff_id


class Exporter:
    def __init__(self, inputs: ExportInputs, workers: int | None = None) -> None:
        self.inputs = inputs
        self.workers = workers or min(8, (os.cpu_count() or 2))

    def export(self) -> Image:
        ins = self.inputs
        default_type = self._entrypoint_type()
        with ThreadPoolExecutor(self.workers) as pool:
            launch_jobs = [
                (bp, name, pool.submit(self._launch_layer, bp, name)) for bp, name in self._launch()
            ]
            sbom_job = pool.submit(self._sbom_layer) if self._has_sbom() else None
            app_jobs = [pool.submit(self._app_layer, files) for files in self._slices()]
            launcher = pool.submit(self._file_layer, LAUNCHER_PATH, ins.launch_files(ins.metadata).launcher)
            config = pool.submit(self._config_layer)
            processes = pool.submit(self._process_layer)
            stack = _Stack()
            bp_labels = self._buildpack_labels([(b, n, j.result()) for b, n, j in launch_jobs], stack)
            sbom = LayerSha(sha=stack.add(sbom_job.result(), "pybuild: sbom")) if sbom_job else None
            app = [LayerSha(sha=stack.add(j.result(), "pybuild: app")) for j in app_jobs]
            label = LifecycleMetadata(
                app=app,
                sbom=sbom,
                buildpacks=bp_labels,
                launcher=LayerSha(sha=stack.add(launcher.result(), "pybuild: launcher")),
                config=LayerSha(sha=stack.add(config.result(), "pybuild: config")),
                process_types=LayerSha(sha=stack.add(processes.result(), "pybuild: process types")),
                run_image=self._run_image_label(),
                stack=StackLabel(
                    run_image=StackRunImage(image=ins.run_image_name, mirrors=ins.run_image_mirrors)
                ),
            )
        return self._finish(stack, label, default_type)

    # -- layers ----------------------------------------------------------------
    def _launch(self) -> list[tuple[BuildpackDescriptor, str]]:
        """Launch layers per buildpack in group order, sorted by name (EXP-2)."""
        found = []
        for bp in self.inputs.group:
            bp_dir = self.inputs.layers_dir / escape_id(bp.buildpack.id)
            for toml in sorted(bp_dir.glob("*.toml")) if bp_dir.is_dir() else []:
                if toml.stem in ("launch", "build", "store"):
                    continue
                if load_layer_toml(toml).types.launch:
                    if not (bp_dir / toml.stem).is_dir():
                        raise ExportFailed(
                            f"export layer {bp.buildpack.id}:{toml.stem}",
                            f"{bp_dir / toml.stem} does not exist and no previous image has it",
                        )
                    found.append((bp, toml.stem))
        return found

    def _write(self, fill: Callable[[LayerTar], None], uid: int = 0, gid: int = 0) -> Layer:
        return write_layer(self.inputs.scratch, fill, mtime=self.inputs.mtime, uid=uid, gid=gid)

    def _owned_parents(self, tar: LayerTar, path: str) -> None:
        parts = PurePosixPath(path).parts[1:]
        for n in range(1, len(parts)):
            tar.add_dir("/" + "/".join(parts[:n]), 0o755, uid=self.inputs.uid, gid=self.inputs.gid)

    def _launch_layer(self, bp: BuildpackDescriptor, name: str) -> Layer:
        ins = self.inputs
        esc = escape_id(bp.buildpack.id)
        dest = f"/layers/{esc}/{name}"

        def fill(tar: LayerTar) -> None:
            self._owned_parents(tar, dest)
            tar.add_tree(ins.layers_dir / esc / name, dest)

        return self._write(fill, ins.uid, ins.gid)

    def _has_sbom(self) -> bool:
        return (self.inputs.layers_dir / "sbom" / "launch").is_dir()

    def _sbom_layer(self) -> Layer:
        """``<layers>/sbom/launch`` as one layer (EXP-2 step 3)."""
        ins = self.inputs

        def fill(tar: LayerTar) -> None:
            self._owned_parents(tar, "/layers/sbom/launch")
            tar.add_tree(ins.layers_dir / "sbom" / "launch", "/layers/sbom/launch")

        return self._write(fill, ins.uid, ins.gid)

    def _slices(self) -> list[set[str]]:
        globs = [s.paths for s in self.inputs.metadata.slices]
        return split_slices(self.inputs.app_dir, globs)

    def _app_layer(self, files: set[str]) -> Layer:
        ins = self.inputs
        keep = files | {
            str(PurePosixPath(f).parents[i]) for f in files for i in range(len(PurePosixPath(f).parents) - 1)
        }

        def include(path: Path) -> bool:
            return path.relative_to(ins.app_dir).as_posix() in keep

        def fill(tar: LayerTar) -> None:
            tar.add_dir("/workspace", 0o755, uid=ins.uid, gid=ins.gid)
            tar.add_tree(ins.app_dir, "/workspace", include=include)

        return self._write(fill, ins.uid, ins.gid)

    def _file_layer(self, path: str, data: bytes) -> Layer:
        def fill(tar: LayerTar) -> None:
            tar.add_parents(path)
            tar.add_file(path, data, 0o755)

        return self._write(fill)

    def _config_layer(self) -> Layer:
        ins = self.inputs
        files = ins.launch_files(ins.metadata)
        metadata = (ins.layers_dir / "config" / "metadata.toml").read_bytes()

        def fill(tar: LayerTar) -> None:
            self._owned_parents(tar, "/layers/config/metadata.toml")
            tar.add_file("/layers/config/metadata.toml", metadata, 0o644, uid=ins.uid, gid=ins.gid)
            tar.add_parents(files.plan_path)
            tar.add_file(files.plan_path, files.plan, 0o644)

        return self._write(fill)

    def _process_layer(self) -> Layer:
        types = [p.type for p in self.inputs.metadata.processes]

        def fill(tar: LayerTar) -> None:
            tar.add_parents("/cnb/process/x")
            for process_type in types:
                tar.add_symlink(f"/cnb/process/{process_type}", LAUNCHER_PATH)

        return self._write(fill)

    # -- labels and config -----------------------------------------------------
    def _buildpack_labels(
        self, layers: list[tuple[BuildpackDescriptor, str, Layer]], stack: _Stack
    ) -> list[BuildpackLayersLabel]:
        labels = []
        for bp in self.inputs.group:
            bp_dir = self.inputs.layers_dir / escape_id(bp.buildpack.id)
            entries = {}
            for owner, name, layer in layers:
                if owner is bp:
                    toml = load_layer_toml(bp_dir / f"{name}.toml")
                    entries[name] = LayerLabel(
                        sha=stack.add(layer, f"pybuild: {bp.buildpack.id}:{name}"),
                        data=toml.metadata,
                        build=toml.types.build,
                        launch=True,
                        cache=toml.types.cache,
                    )
            store = load_store_toml(bp_dir / "store.toml") if (bp_dir / "store.toml").is_file() else None
            labels.append(
                BuildpackLayersLabel(
                    key=bp.buildpack.id,
                    version=bp.buildpack.version,
                    layers=entries,
                    store=StoreLabel(metadata=store.metadata) if store and store.metadata else None,
                )
            )
        return labels

    def _run_image_label(self) -> RunImageForRebase:
        ins = self.inputs
        return RunImageForRebase(
            top_layer=ins.run_image.diff_ids[-1] if ins.run_image.layers else "",
            reference=ins.run_image_reference,
            image=ins.run_image_name,
            mirrors=ins.run_image_mirrors,
        )

    def _entrypoint_type(self) -> str | None:
        """EXP-8: the requested type (which must exist), else the buildpacks' default."""
        meta = self.inputs.metadata
        wanted = self.inputs.process_type
        if wanted is not None and wanted not in {p.type for p in meta.processes}:
            raise ExportFailed("export image", f'process type "{wanted}" is not defined by any buildpack')
        return wanted or meta.buildpack_default_process_type

    def _build_label(self) -> BuildMetadataLabel:
        meta = self.inputs.metadata
        return BuildMetadataLabel(
            buildpacks=tuple(
                BuildpackRefLabel(id=b.id, version=b.version, homepage=b.homepage or "")
                for b in meta.buildpacks
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
        )

    def _finish(self, stack: _Stack, label: LifecycleMetadata, default_type: str | None) -> Image:
        ins = self.inputs
        image = mutate.append_layers(ins.run_image, stack.layers, stack.created_by, ins.created)
        image = mutate.edit_config(image, lambda cfg: self._container_config(cfg, default_type))
        labels = {
            LIFECYCLE_METADATA_LABEL: label.model_dump_json(by_alias=True),
            BUILD_METADATA_LABEL: self._build_label().model_dump_json(by_alias=True),
            PROJECT_METADATA_LABEL: ins.project_metadata,
            "io.buildpacks.exec-env": ins.exec_env,
            **{lbl.key: lbl.value for lbl in ins.metadata.labels},
        }
        image = mutate.set_labels(image, labels)
        image = mutate.edit_image_config(image, created=ins.created)
        return AppImage.with_base_annotations(image, ins.run_image_name, ins.run_image.digest)

    def _container_config(self, cfg: ContainerConfig, default_type: str | None) -> ContainerConfig:
        ins = self.inputs
        env = cfg.env_dict()
        run_path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.update(
            CNB_LAYERS_DIR="/layers",
            CNB_APP_DIR="/workspace",
            CNB_PLATFORM_API=ins.platform_api,
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
