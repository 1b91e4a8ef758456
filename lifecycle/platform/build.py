"""``pybuild build``: what pack does around the lifecycle phases.

Resolve the builder, run image, target and cache; prepare the workspace; run analyze,
detect, restore, build and export with one executor; write the image to its target, then
the cache (EXP-14: cache failures only warn). Image extensions (DET-16) generate, switch
and extend between detect and export (``build_extensions``); ``build_images`` reads the user,
env and target off the images, ``build_export`` assembles the exporter's inputs. A rebuild
reuses what did not change: layer metadata and cached contents come back (RES-*), unchanged
layers are reused by reference (EXP-3, EXP-7), and a blob compressed once on this machine is
not compressed again.
Build secrets (``--secret``, ``lifecycle.platform.secrets``) reach bin/detect and bin/build
only; every logged line is masked and every layer tar, the cache's too, is searched for them
before the image is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.backends.base import repository_of
from lifecycle.backends.store import LocalStore, pybuild_home
from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.cnb.order import GroupElement, OrderEntry, OrderGroup
from lifecycle.env import filter_platform_env, read_user_env
from lifecycle.errors import ConfigError, PybuildError
from lifecycle.execution.bwrap import HOST_CA_BUNDLE, BwrapRunner
from lifecycle.execution.executor import BuildpackExecutor
from lifecycle.execution.host import HostRunner
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import Runner, Workspace
from lifecycle.execution.secrets import NO_SECRETS, Secrets
from lifecycle.oci.image import Image
from lifecycle.phases.analyze import Analysis, analyze, write_analyzed_toml
from lifecycle.phases.build import Builder as BuildPhase
from lifecycle.phases.build import BuildInputs
from lifecycle.phases.cache import LayerCache
from lifecycle.phases.cache_writer import Cacher
from lifecycle.phases.detect import Detector
from lifecycle.phases.export import Exporter, ExportInputs
from lifecycle.phases.generate import GenerateResult, Generator
from lifecycle.phases.restore import RestoreInputs, Restorer
from lifecycle.platform.build_export import export_inputs
from lifecycle.platform.build_extensions import (
    BuildImages,
    ExtendedImage,
    ExtendSandbox,
    choose_extensions,
    generate,
    record_extensions,
)
from lifecycle.platform.build_images import check_platform, image_user, sandbox_env, target_info
from lifecycle.platform.build_inputs import Reuse
from lifecycle.platform.build_reuse import Recording, start_recording
from lifecycle.platform.builders import DEFAULT_BUILDER, Builder, BuildpackSource, load_builder
from lifecycle.platform.cache import blob_index, open_cache, previous_image
from lifecycle.platform.defaults import ensure_builder
from lifecycle.platform.secrets import check_secrets
from lifecycle.platform.targets import Target, daemon_store, open_target
from lifecycle.platform.workspace import copy_app, write_platform_env

__all__ = ["BuildOptions", "BuildReport", "Phases", "build"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    image: str
    path: Path
    builder: str | None = None
    buildpacks: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # --extension: directories or builder ids; the only order-extensions
    env: dict[str, str] = field(default_factory=dict)
    run_image: str | None = None
    executor: str = "bwrap"
    network: str = "host"
    creation_time: int | None = None
    process_type: str | None = None
    ca_bundle: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cache: str | None = None  # --cache NAME: a directory cache other than the image's name
    cache_image: str | None = None  # --cache-image REF
    clear_cache: bool = False  # --clear-cache: restore no layers (RES-5), start the cache afresh
    previous_image: str | None = None  # --previous-image REF
    secrets: Secrets = NO_SECRETS  # --secret: operator input only, never from project.toml
    reuse: Reuse | None = None  # pybuild build's input fingerprint: record it with the digest


@dataclass(frozen=True)
class BuildReport:
    image: str
    digest: str
    reused: tuple[str, ...] = ()  # layers taken from an existing blob: nothing compressed
    added: tuple[str, ...] = ()  # layers compressed in this build


@dataclass
class Phases:
    """Callbacks the CLI gives for headers and live output."""

    phase: Log
    output: Log
    info: Log
    warn: Log | None = None

    def warning(self, message: str) -> None:
        (self.warn or (lambda text: self.info(f"Warning: {text}")))(message)


def build(opts: BuildOptions, phases: Phases) -> BuildReport:
    check_secrets(opts.secrets, executor=opts.executor, env=opts.env)
    phases = _masked(phases, opts.secrets)
    home = pybuild_home()
    store = LocalStore(home)
    builder_name = opts.builder or DEFAULT_BUILDER
    ensure_builder(builder_name, store, phases.info)
    builder = load_builder(builder_name, home)
    run_name = opts.run_image or builder.run_images[0].image
    run_source = open_target(run_name, home=home)  # the local store, or a registry for host/repo names
    run_image = run_source.store.image(run_source.name)
    check_platform(builder.base_image(store), run_image, run_name)
    target = open_target(opts.image, create=True, home=home)
    cache = open_cache(
        home,
        target.display if target.kind != "store" else opts.image,
        name=opts.cache,
        cache_image=opts.cache_image,
        run_image=run_image,
        clear=opts.clear_cache,
        publish=target.kind == "registry",
    )
    context = _Context(
        opts, phases, builder, builder.base_image(store), run_name, run_image, home, target, cache
    )
    recording = _recording(opts, builder_name, context)
    scratch_root = home / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=scratch_root))
    try:
        image, exporter = context.run(work)
        if opts.secrets:  # a cache layer holding one fails the build now, not after the image moved
            context.cacher(exporter).tar_layers()
        digest = target.store.write(image, [target.name])
        phases.info(f"Saved {target.display}")
        count = len(exporter.reused) + len(exporter.added)
        phases.info(
            f"Reused {len(exporter.reused)} of {count} layers, compressed {len(exporter.writer.compressed)}"
        )
        context.save_cache(exporter)
        # Blobs now stored, the image's (reused ones too: the index may predate them) and the cache's.
        blob_index(home).record([*image.layers[len(run_image.layers) :], *exporter.writer.compressed])
        if recording is not None:
            try:
                recording.finish(digest, context.run_name, context.run_image)
            except OSError as exc:  # the image is written: only the next build's shortcut is lost
                phases.warning(f"failed to record the build's inputs: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuildReport(target.display, digest, tuple(exporter.reused), tuple(exporter.added))


def _recording(opts: BuildOptions, builder_name: str, context: _Context) -> Recording | None:
    """What this build resolved, so that an unchanged rebuild may report its image (``build_inputs``)."""
    if opts.reuse is None:
        return None
    return start_recording(
        opts.reuse,
        builder_name=builder_name,
        builder=context.builder,
        build_image=context.build_image,
        run_name=context.run_name,
        run_image=context.run_image,
        buildpacks=opts.buildpacks,
        extensions=opts.extensions,
        previous_image=opts.previous_image,
    )


@dataclass
class _Context:
    opts: BuildOptions
    phases: Phases
    builder: Builder
    build_image: Image
    run_name: str
    run_image: Image
    home: Path
    target: Target
    cache: LayerCache
    group: tuple[BuildpackDescriptor, ...] = ()
    group_extensions: tuple[GroupElement, ...] = ()
    extended_run: ExtendedImage | None = None

    @property
    def user(self) -> tuple[int, int]:
        return image_user(self.build_image)

    def _runner(self) -> Runner:
        if self.opts.executor == "host":
            return HostRunner()
        if self.opts.executor == "bwrap":
            rootfs = rootfs_cache(self.build_image, self.home / "cache" / "rootfs")
            ca = HOST_CA_BUNDLE if self.opts.ca_bundle else None
            return BwrapRunner(rootfs, *self.user, network=self.opts.network, ca_bundle=ca)
        if self.opts.executor == "docker":
            from lifecycle.execution.docker import DockerRunner  # the docker SDK: ~70 ms to import

            ca = HOST_CA_BUNDLE if self.opts.ca_bundle else None
            return DockerRunner(
                daemon_store(), self.build_image, *self.user, network=self.opts.network, ca_bundle=ca
            )
        raise ConfigError(
            "choose executor", f"{self.opts.executor!r} is not an executor (use bwrap, docker or host)"
        )

    def _sources(self, work: Path) -> tuple[dict[str, BuildpackSource], tuple[OrderGroup, ...]]:
        """The builder's buildpacks plus those asked for; asked-for ones form the only group."""
        opts = self.opts
        sources = dict(self.builder.buildpacks)
        chosen: list[BuildpackSource] = []
        if opts.buildpacks:  # only then: resolving refs needs the buildpackage readers and their models
            from lifecycle.platform.bpref import resolve_buildpack
        for ref in opts.buildpacks:
            found = resolve_buildpack(
                ref, base=Path.cwd(), scratch=work, builder_buildpacks=self.builder.buildpacks, home=self.home
            )
            chosen.append(found[0])
            for source in found[1:]:
                sources.setdefault(source.descriptor.ref, source)
        for source in chosen:
            sources[source.descriptor.ref] = source
        if not chosen:
            return sources, self.builder.order
        entries = tuple(
            OrderEntry(id=s.descriptor.buildpack.id, version=s.descriptor.buildpack.version) for s in chosen
        )
        return sources, (OrderGroup(group=entries),)

    def run(self, work: Path) -> tuple[Image, Exporter]:
        opts, phases = self.opts, self.phases
        app, layers, platform = work / "app", work / "layers", work / "platform"
        copy_app(opts.path, app, opts.include, opts.exclude)
        layers.mkdir()
        write_platform_env(platform, opts.env)
        phases.phase("ANALYZING")
        analysis = self._analyze(layers)
        sources, order = self._sources(work)
        extensions = choose_extensions(self.builder, opts.extensions, Path.cwd())
        dirs = {ref: s.path for ref, s in sources.items()}
        dirs.update({ref: e.path for ref, e in extensions.extensions.items()})
        workspace = Workspace(app, layers, platform, dirs)
        executor = self._executor(workspace)
        base_env = filter_platform_env(opts.secrets.scrub_env(sandbox_env(self.build_image, opts.executor)))
        user_env = read_user_env(platform)
        descriptors = {ref: s.descriptor for ref, s in sources.items()}
        phases.phase("DETECTING")
        system = self.builder.system if order is self.builder.order else None
        detector = Detector(order, descriptors, executor, base_env, user_env, system, extensions)
        group, plan = detector.detect(layers)
        for bp in group:
            phases.info(f"{bp.buildpack.id} {bp.buildpack.version}")
        self.group = tuple(group)
        generated = None
        if detector.group_extensions:
            self.group_extensions = tuple(detector.group_extensions)
            chosen = [extensions.extensions[e.ref] for e in self.group_extensions]
            generated = self._generate(work, Generator(chosen, plan, executor, base_env, user_env))
            plan = generated.plan
            executor = self._executor(workspace)
        phases.phase("RESTORING")
        self._restore(layers, analysis)
        phases.phase("BUILDING")
        inputs = BuildInputs(self.group, plan, layers, base_env, user_env, self.builder.env)
        metadata = record_extensions(layers, BuildPhase(inputs, executor).build(), self.group_extensions)
        if generated is not None and generated.extend_run:
            phases.phase("EXTENDING (run)")
            self.extended_run = self._sandbox(work).extend(self.run_image, generated.run, "run")
        phases.phase("EXPORTING")
        exporter = Exporter(self._export_inputs(work, group, metadata, analysis))
        return exporter.export(), exporter

    def _executor(self, workspace: Workspace) -> BuildpackExecutor:
        """Runs bin/detect and bin/build with the build's secrets (image extensions get none)."""
        target = target_info(self.run_image)
        return BuildpackExecutor(
            self._runner(), workspace, target, output=self.phases.output, secrets=self.opts.secrets
        )

    def _sandbox(self, work: Path) -> ExtendSandbox:
        """Where extensions' Dockerfiles run, as the build image's user of the moment."""
        rootfs = self.home / "cache" / "rootfs"
        return ExtendSandbox(work, rootfs, self.opts.network, self.user, self.phases.info, self.phases.output)

    def _generate(self, work: Path, generator: Generator) -> GenerateResult:
        """DET-16: generate, switch the run image and extend the build image (``build_extensions``)."""
        images = BuildImages(self.build_image, self.run_name, self.run_image)
        generated, images = generate(
            generator,
            builder=self.builder,
            images=images,
            sandbox=self._sandbox(work),
            home=self.home,
            phase=self.phases.phase,
            warn=self.phases.warning,
        )
        self.build_image, self.run_image = images.build_image, images.run_image
        self.run_name = images.run_name
        return generated

    def _analyze(self, layers: Path) -> Analysis:
        """ANA-1, ANA-2: the previous image's label, and analyzed.toml."""
        previous = previous_image(self.target, self.opts.previous_image, self.home, self.phases.warning)
        analysis = analyze(previous.image, previous.reference, self.phases.warning)
        reference = f"{repository_of(self.run_name)}@{self.run_image.digest}"
        # Informational only: a label that TOML cannot express does not stop the build.
        with contextlib.suppress(TypeError, ValueError, OSError):
            write_analyzed_toml(layers / "analyzed.toml", analysis, self.run_image, reference, self.run_name)
        return analysis

    def _restore(self, layers: Path, analysis: Analysis) -> None:
        inputs = RestoreInputs(
            group=self.group,
            layers_dir=layers,
            previous=analysis.metadata,
            cache=self.cache,
            previous_image=analysis.image,
            skip_layers=self.opts.clear_cache,
            log=self.phases.info,
            warn=self.phases.warning,
        )
        Restorer(inputs).restore()

    def cacher(self, exporter: Exporter) -> Cacher:
        uid, gid = self.user
        return Cacher(
            self.group,
            exporter.inputs.layers_dir,
            exporter.writer,
            uid,
            gid,
            self.phases.info,
            self.phases.warning,
        )

    def save_cache(self, exporter: Exporter) -> None:
        """EXP-14: cache=true layers to the cache; every failure is a warning."""
        cacher = self.cacher(exporter)
        try:
            cacher.cache(self.cache)
        except (OSError, PybuildError) as exc:  # the image is written: a cache failure only warns
            self.phases.warning(f"failed to save {self.cache.name}: {exc}")

    def _export_inputs(
        self, work: Path, group: list[BuildpackDescriptor], metadata: ConfigMetadata, analysis: Analysis
    ) -> ExportInputs:
        return export_inputs(
            work,
            builder=self.builder,
            run_name=self.run_name,
            run_image=self.run_image,
            extended_run=self.extended_run,
            group=group,
            metadata=metadata,
            analysis=analysis,
            user=self.user,
            process_type=self.opts.process_type,
            creation_time=self.opts.creation_time,
            home=self.home,
            target=self.target,
            secrets=self.opts.secrets,
            log=self.phases.info,
        )


def _masked(phases: Phases, secrets: Secrets) -> Phases:
    """``phases`` logging every line with the secrets' values replaced by ``***``."""
    if not secrets:
        return phases
    warn = secrets.masking(phases.warn) if phases.warn else None
    return dataclasses.replace(
        phases, output=secrets.masking(phases.output), info=secrets.masking(phases.info), warn=warn
    )
