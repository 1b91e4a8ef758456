"""The export phase: app layers and CNB metadata over the run image (EXP-1..13).

Layers are appended in the lifecycle's order (EXP-2): each buildpack's launch layers by
name, the SBOM, the app (one layer per slice plus the rest), the launcher, the config, and
the process-type links. Every tar is reproducible (EXP-5, EXP-6); layers are written in
parallel threads by a ``LayerWriter``.

Reuse (EXP-3, EXP-7): a launch layer whose ``<layer>.toml`` says launch but whose dir is
gone (the buildpack kept the restored metadata) is the previous image's layer with the SHA
recorded for it, taken by reference: no byte is read. Any other layer whose tar has the
diffID of a known blob (a layer of the previous image, or one the platform's finders know)
reuses that blob, so an unchanged layer is never compressed or stored twice. The log says
which layers were reused and which added, as the lifecycle does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lifecycle.appimage import AppImage
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.ids import escape_id
from lifecycle.cnb.labels import (
    BUILD_METADATA_LABEL,
    LIFECYCLE_METADATA_LABEL,
    PROJECT_METADATA_LABEL,
    BuildpackLayersLabel,
    LayerLabel,
    LayerSha,
    LifecycleMetadata,
    StackLabel,
    StackRunImage,
    StoreLabel,
)
from lifecycle.cnb.layers import ConfigMetadata, LayerToml, load_layer_toml, load_store_toml
from lifecycle.errors import ConfigError, ExitCode, ImageError, PybuildError
from lifecycle.execution.secrets import NO_SECRETS, Secrets
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar
from lifecycle.phases.export_config import LAUNCHER_PATH, build_label, container_config, run_image_label
from lifecycle.phases.export_layers import FindLayer, LayerWriter, TarredLayer, WrittenLayer, dir_fill
from lifecycle.phases.slices import split_slices

__all__ = ["LAUNCHER_PATH", "ExportFailed", "ExportInputs", "Exporter", "LaunchFiles"]

CONSTANT_CREATED = "1980-01-01T00:00:01Z"
LIFECYCLE_ID = "buildpacksio/lifecycle"
_HISTORY = {"launch.sbom": "sbom", "process-types": "process types"}  # created_by, as before reuse


class ExportFailed(PybuildError):
    exit_code = ExitCode.EXPORT


@dataclass(frozen=True)
class LaunchFiles:
    """What the launcher package puts in the image: the script and the resolved plan."""

    launcher: bytes
    plan_path: str  # in the image, under the config layer
    plan: bytes


def _quiet(message: str) -> None:
    """The default log: say nothing."""


@dataclass(frozen=True)
class ExportInputs:
    run_image: Image  # the extended run image when extensions extended it (EXP-1)
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
    previous_image: Image | None = None  # from analyze: layers to reuse (EXP-3, EXP-7)
    previous_metadata: LifecycleMetadata | None = None  # its lifecycle label
    find_layers: tuple[FindLayer, ...] = ()  # more places a known blob may be (the blob index)
    log: Callable[[str], None] = _quiet
    extended_from: Image | None = None  # the run image below the extension layers: topLayer (EXP-2)
    secrets: Secrets = NO_SECRETS  # no layer may hold one of these values (export_layers)


@dataclass
class _Stack:
    """Layers in export order, with the history entries they produce."""

    layers: list[Layer] = field(default_factory=list)
    created_by: list[str] = field(default_factory=list)

    def add(self, layer: Layer, created_by: str) -> str:
        self.layers.append(layer)
        self.created_by.append(created_by)
        return layer.diff_id


@dataclass(frozen=True)
class _LaunchLayer:
    buildpack: BuildpackDescriptor
    name: str
    toml: LayerToml
    previous_sha: str | None  # no dir here: reuse the previous image's layer with this diffID

    @property
    def identifier(self) -> str:
        return f"{self.buildpack.buildpack.id}:{self.name}"


class Exporter:
    def __init__(self, inputs: ExportInputs, workers: int | None = None) -> None:
        self.inputs = inputs
        self.workers = workers or min(8, (os.cpu_count() or 2))
        self.writer = LayerWriter(
            inputs.scratch,
            mtime=inputs.mtime,
            find=(self._previous, *inputs.find_layers),
            secrets=inputs.secrets,
        )
        self.reused: list[str] = []
        self.added: list[str] = []

    def export(self) -> Image:
        ins = self.inputs
        default_type = self._entrypoint_type()
        launch_layers = self._launch()
        files = ins.launch_files(ins.metadata)
        with ThreadPoolExecutor(self.workers) as pool:
            launch_jobs = [(layer, pool.submit(self._launch_layer, layer)) for layer in launch_layers]
            sbom_job = pool.submit(self._sbom_layer) if self._has_sbom() else None
            app_jobs = [pool.submit(self._app_layer, n, files) for n, files in enumerate(self._slices())]
            launcher = pool.submit(self._file_layer, LAUNCHER_PATH, files.launcher)
            config = pool.submit(self._config_layer, files)
            processes = pool.submit(self._process_layer)
            stack = _Stack()
            bp_labels = self._buildpack_labels([(layer, job.result()) for layer, job in launch_jobs], stack)
            sbom = self._add(stack, sbom_job, "launch.sbom") if sbom_job else None
            app = self._add_app(stack, app_jobs)
            label = LifecycleMetadata(
                app=app,
                sbom=sbom,
                buildpacks=bp_labels,
                launcher=self._add(stack, launcher, "launcher"),
                config=self._add(stack, config, "config"),
                process_types=self._add(stack, processes, "process-types"),
                run_image=run_image_label(
                    ins.extended_from or ins.run_image,
                    ins.run_image_name,
                    ins.run_image_reference,
                    ins.run_image_mirrors,
                ),
                stack=StackLabel(
                    run_image=StackRunImage(image=ins.run_image_name, mirrors=ins.run_image_mirrors)
                ),
            )
        return self._finish(stack, label, default_type)

    # -- which layers --------------------------------------------------------------
    def _launch(self) -> list[_LaunchLayer]:
        """Launch layers per buildpack in group order, sorted by name (EXP-2, EXP-3)."""
        found = []
        for bp in self.inputs.group:
            bp_dir = self.inputs.layers_dir / escape_id(bp.buildpack.id)
            for path in sorted(bp_dir.glob("*.toml")) if bp_dir.is_dir() else []:
                if path.stem in ("launch", "build", "store"):
                    continue
                toml = self._layer_toml(path, bp)
                if toml.types.launch:
                    found.append(self._launch_layer_of(bp, path.stem, toml))
        return found

    def _layer_toml(self, path: Path, bp: BuildpackDescriptor) -> LayerToml:
        try:
            return load_layer_toml(path)
        except ConfigError as exc:  # [L] an unparsable <layer>.toml fails the export
            raise ExportFailed(f"export layer {bp.buildpack.id}:{path.stem}", exc.cause) from None

    def _launch_layer_of(self, bp: BuildpackDescriptor, name: str, toml: LayerToml) -> _LaunchLayer:
        layer = _LaunchLayer(bp, name, toml, None)
        if (self.inputs.layers_dir / escape_id(bp.buildpack.id) / name).is_dir():
            return layer
        if toml.types.cache:  # [L] a cache=true layer must have contents
            raise ExportFailed(f"export layer {layer.identifier}", "it is cache=true but has no contents")
        previous = self._previous_sha(bp.buildpack.id, name)
        if previous is None:
            raise ExportFailed(
                f"export layer {layer.identifier}",
                f"{name} has no dir and the previous image has no layer {layer.identifier} to reuse",
            )
        return _LaunchLayer(bp, name, toml, previous)

    def _previous_sha(self, buildpack_id: str, name: str) -> str | None:
        metadata = self.inputs.previous_metadata
        for entry in metadata.buildpacks if metadata else ():
            if entry.key == buildpack_id and name in entry.layers:
                return entry.layers[name].sha or None
        return None

    def _previous(self, tarred: TarredLayer) -> Layer | None:
        """EXP-7: a layer of the previous image with the same diffID is reused, not stored again."""
        previous = self.inputs.previous_image
        return previous.layer_by_diff_id(tarred.diff_id) if previous else None

    # -- layers ----------------------------------------------------------------------
    def _write(self, identifier: str, fill: Callable[[LayerTar], None], owned: bool = False) -> WrittenLayer:
        uid, gid = (self.inputs.uid, self.inputs.gid) if owned else (0, 0)
        return self.writer.write(identifier, fill, uid, gid)

    def _launch_layer(self, layer: _LaunchLayer) -> WrittenLayer:
        ins = self.inputs
        if layer.previous_sha is not None:
            assert ins.previous_image is not None  # a previous SHA comes with its image
            try:
                return WrittenLayer(AppImage(ins.previous_image).layer(layer.previous_sha), reused=True)
            except ImageError as exc:
                raise ExportFailed(f"reuse layer {layer.identifier}", exc.cause) from None
        esc = escape_id(layer.buildpack.buildpack.id)
        fill = dir_fill(ins.layers_dir / esc / layer.name, f"/layers/{esc}/{layer.name}", ins.uid, ins.gid)
        return self._write(layer.identifier, fill, owned=True)

    def _has_sbom(self) -> bool:
        return (self.inputs.layers_dir / "sbom" / "launch").is_dir()

    def _sbom_layer(self) -> WrittenLayer:
        """``<layers>/sbom/launch`` as one layer (EXP-2 step 3)."""
        ins = self.inputs
        fill = dir_fill(ins.layers_dir / "sbom" / "launch", "/layers/sbom/launch", ins.uid, ins.gid)
        return self._write(f"{LIFECYCLE_ID}:launch.sbom", fill, owned=True)

    def _slices(self) -> list[set[str]]:
        globs = [s.paths for s in self.inputs.metadata.slices]
        return split_slices(self.inputs.app_dir, globs)

    def _app_layer(self, number: int, files: set[str]) -> WrittenLayer:
        ins = self.inputs
        keep = files | {
            str(PurePosixPath(f).parents[i]) for f in files for i in range(len(PurePosixPath(f).parents) - 1)
        }

        def include(path: Path) -> bool:
            return path.relative_to(ins.app_dir).as_posix() in keep

        def fill(tar: LayerTar) -> None:
            tar.add_dir("/workspace", 0o755, uid=ins.uid, gid=ins.gid)
            tar.add_tree(ins.app_dir, "/workspace", include=include)

        return self._write(f"app:{number}", fill, owned=True)

    def _file_layer(self, path: str, data: bytes) -> WrittenLayer:
        def fill(tar: LayerTar) -> None:
            tar.add_parents(path)
            tar.add_file(path, data, 0o755)

        return self._write(f"{LIFECYCLE_ID}:launcher", fill)

    def _config_layer(self, files: LaunchFiles) -> WrittenLayer:
        ins = self.inputs
        metadata = (ins.layers_dir / "config" / "metadata.toml").read_bytes()

        def fill(tar: LayerTar) -> None:
            for parent in ("/layers", "/layers/config"):
                tar.add_dir(parent, 0o755, uid=ins.uid, gid=ins.gid)
            tar.add_file("/layers/config/metadata.toml", metadata, 0o644, uid=ins.uid, gid=ins.gid)
            tar.add_parents(files.plan_path)
            tar.add_file(files.plan_path, files.plan, 0o644)

        return self._write(f"{LIFECYCLE_ID}:config", fill)

    def _process_layer(self) -> WrittenLayer:
        types = [p.type for p in self.inputs.metadata.processes]

        def fill(tar: LayerTar) -> None:
            tar.add_parents("/cnb/process/x")
            for process_type in types:
                tar.add_symlink(f"/cnb/process/{process_type}", LAUNCHER_PATH)

        return self._write(f"{LIFECYCLE_ID}:process-types", fill)

    # -- stacking and logging ---------------------------------------------------------
    def _note(self, identifier: str, written: WrittenLayer) -> None:
        (self.reused if written.reused else self.added).append(identifier)

    def _add(self, stack: _Stack, job: Future[WrittenLayer], name: str) -> LayerSha:
        written = job.result()
        verb = "Reusing" if written.reused else "Adding"
        self.inputs.log(f"{verb} layer '{LIFECYCLE_ID}:{name}'")
        self._note(f"{LIFECYCLE_ID}:{name}", written)
        return LayerSha(sha=stack.add(written.layer, f"pybuild: {_HISTORY.get(name, name)}"))

    def _add_app(self, stack: _Stack, jobs: list[Future[WrittenLayer]]) -> list[LayerSha]:
        written = [job.result() for job in jobs]
        reused = sum(w.reused for w in written)
        for verb, count in (("Reusing", reused), ("Adding", len(written) - reused)):
            if count:
                self.inputs.log(f"{verb} {count}/{len(written)} app layer(s)")
        for number, layer in enumerate(written):
            self._note(f"app:{number}", layer)
        return [LayerSha(sha=stack.add(w.layer, "pybuild: app")) for w in written]

    def _buildpack_labels(
        self, layers: list[tuple[_LaunchLayer, WrittenLayer]], stack: _Stack
    ) -> list[BuildpackLayersLabel]:
        labels = []
        for bp in self.inputs.group:
            entries = {}
            for launch, written in layers:
                if launch.buildpack is not bp:
                    continue
                self.inputs.log(f"{'Reusing' if written.reused else 'Adding'} layer '{launch.identifier}'")
                self._note(launch.identifier, written)
                entries[launch.name] = LayerLabel(
                    sha=stack.add(written.layer, f"pybuild: {launch.identifier}"),
                    data=launch.toml.metadata,
                    build=launch.toml.types.build,
                    launch=True,
                    cache=launch.toml.types.cache,
                )
            labels.append(
                BuildpackLayersLabel(
                    key=bp.buildpack.id, version=bp.buildpack.version, layers=entries, store=self._store(bp)
                )
            )
        return labels

    def _store(self, bp: BuildpackDescriptor) -> StoreLabel | None:
        """BLD-15: store.toml's metadata rides in the label to the next build (RES-1)."""
        path = self.inputs.layers_dir / escape_id(bp.buildpack.id) / "store.toml"
        store = load_store_toml(path) if path.is_file() else None
        return StoreLabel(metadata=store.metadata) if store and store.metadata else None

    # -- config ----------------------------------------------------------------------
    def _entrypoint_type(self) -> str | None:
        """EXP-8: the requested type (which must exist), else the buildpacks' default."""
        meta = self.inputs.metadata
        wanted = self.inputs.process_type
        if wanted is not None and wanted not in {p.type for p in meta.processes}:
            raise ExportFailed("export image", f'process type "{wanted}" is not defined by any buildpack')
        return wanted or meta.buildpack_default_process_type

    def _finish(self, stack: _Stack, label: LifecycleMetadata, default_type: str | None) -> Image:
        ins = self.inputs
        image = mutate.append_layers(ins.run_image, stack.layers, stack.created_by, ins.created)
        image = mutate.edit_config(image, lambda cfg: container_config(cfg, default_type, ins.platform_api))
        labels = {
            LIFECYCLE_METADATA_LABEL: label.model_dump_json(by_alias=True),
            BUILD_METADATA_LABEL: build_label(ins.metadata).model_dump_json(by_alias=True),
            PROJECT_METADATA_LABEL: ins.project_metadata,
            "io.buildpacks.exec-env": ins.exec_env,
            **{lbl.key: lbl.value for lbl in ins.metadata.labels},
        }
        image = mutate.set_labels(image, labels)
        image = mutate.edit_image_config(image, created=ins.created)
        return AppImage.with_base_annotations(image, ins.run_image_name, ins.run_image.digest)
