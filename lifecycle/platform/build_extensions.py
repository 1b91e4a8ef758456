"""Image extensions in `pybuild build`: which extensions, then generate, switch and extend.

After detect, the group's extensions run `bin/generate` (exit 91/92). A `run.Dockerfile` whose
`FROM` names an image switches the run image: the app is exported on it and its name goes into
`runImage` so `pybuild rebase` follows it; a name the builder does not list is warned about, as
the platform spec says. `build.Dockerfile`s extend the build image the buildpacks then run in;
the remaining `run.Dockerfile`s extend the run image after the build. An extended run image is
labelled `io.buildpacks.rebasable=false` unless every Dockerfile applied to it set the label
`true` (EXP-12); analyzed.toml records the switch and what was extended, metadata.toml and the
build label the extensions (BLD-14). An image named by `FROM` that cannot be read is an extend
error (102).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lifecycle.cnb import write_toml
from lifecycle.cnb.extension import ExtensionDir, load_extension_dir
from lifecycle.cnb.images import AnalyzedRunImage, ImageIdentifier, load_analyzed_toml
from lifecycle.cnb.layers import ConfigMetadata
from lifecycle.cnb.order import GroupElement, OrderEntry, OrderGroup
from lifecycle.errors import ConfigError, ExitCode, ExtendError, PybuildError
from lifecycle.oci.image import Image
from lifecycle.phases.detect_extensions import ExtensionOrder
from lifecycle.phases.generate import GeneratedDockerfile, GenerateResult, Generator
from lifecycle.platform.build_images import check_platform
from lifecycle.platform.builders import Builder
from lifecycle.platform.targets import open_target

__all__ = [
    "BuildImages",
    "ExtendSandbox",
    "ExtendedImage",
    "check_experimental",
    "choose_extensions",
    "extend",
    "generate",
    "open_switched_run_image",
    "record_analyzed",
    "record_extensions",
]

Log = Callable[[str], None]


def choose_extensions(builder: Builder, refs: Sequence[str], base: Path) -> ExtensionOrder:
    """The builder's extensions and order-extensions; `--extension` refs form the only group."""
    extensions = dict(builder.extensions)
    if not refs:
        return ExtensionOrder(extensions, builder.order_extensions)
    chosen = []
    for ref in refs:
        found = _extension(ref, base, extensions)
        extensions[found.ref] = found
        chosen.append(found)
    entries = tuple(
        OrderEntry(id=e.descriptor.extension.id, version=e.descriptor.extension.version, optional=True)
        for e in chosen
    )
    return ExtensionOrder(extensions, (OrderGroup(group=entries),))


def _extension(ref: str, base: Path, known: dict[str, ExtensionDir]) -> ExtensionDir:
    path = (base / ref).resolve()
    if path.is_dir():
        return load_extension_dir(path)
    ext_id, _, version = ref.partition("@")
    matches = [e for e in known.values() if e.descriptor.extension.id == ext_id]
    matches = [e for e in matches if not version or e.descriptor.extension.version == version]
    if not matches:
        raise ConfigError(
            "choose extension",
            f"--extension {ref}: no such directory, and the builder has no extension {ref} (check the name)",
        )
    return matches[0]


def check_experimental(feature: str, mode: str | None, warn: Log) -> None:
    """GEN-5: an experimental feature fails unless `CNB_EXPERIMENTAL_MODE` is `warn` or `silent`."""
    if mode == "silent":
        return
    if mode == "warn":
        warn(f"{feature} is experimental")
        return
    raise ConfigError(
        "detect",
        f"{feature} is experimental (set CNB_EXPERIMENTAL_MODE=warn or silent to go on without it)",
        exit_code=ExitCode.DETECT_OTHER,
    )


def open_switched_run_image(name: str, home: Path, known: Sequence[str], warn: Log) -> Image:
    """The run image a `run.Dockerfile` switched to; warns when the builder does not list it."""
    if name not in known:
        warn(f"run image {name} chosen by an extension is not one of the builder's run images")
    try:
        source = open_target(name, home=home)
        return source.store.image(source.name)
    except PybuildError as exc:
        raise ExtendError(
            "switch run image", f"a run.Dockerfile names {name}, which cannot be read: {exc.cause}"
        ) from None


@dataclass(frozen=True)
class ExtendedImage:
    """An image after the extensions' Dockerfiles: the result, and whether it may be rebased."""

    image: Image
    base: Image
    layers: int
    rebasable: bool


def extend(
    base: Image,
    dockerfiles: Sequence[GeneratedDockerfile],
    *,
    kind: Literal["build", "run"],
    scratch: Path,
    rootfs_cache: Path,
    network: str,
    user: tuple[int, int],
    log: Log,
    output: Log,
) -> ExtendedImage:
    """Apply `dockerfiles` to `base` in the sandbox; an extended run image is not rebasable unless
    every Dockerfile labelled it so (EXP-12). `base` is the run image a switch already chose."""
    from lifecycle.phases.extend import DockerfileStep, extend_image  # the extender: only when used

    steps = [DockerfileStep(d.dockerfile, d.context, d.extension_id, d.args) for d in dockerfiles]
    for step in dockerfiles:
        log(f"Applying {step.kind}.Dockerfile of {step.extension_id}")
    uid, gid = user
    result = extend_image(
        base,
        steps,
        kind=kind,
        scratch=scratch,
        rootfs_cache=rootfs_cache,
        uid=uid,
        gid=gid,
        network=network,
        output=output,
    )
    return ExtendedImage(result.image, base, len(result.layers), result.rebasable)


@dataclass(frozen=True)
class ExtendSandbox:
    """Where the extensions' Dockerfiles run: scratch under the build's work dir, the rootfs cache,
    the network and the build image's user; `log` gets progress, `output` the Dockerfiles' output."""

    work: Path
    rootfs_cache: Path
    network: str
    user: tuple[int, int]
    log: Log
    output: Log

    def extend(
        self, base: Image, dockerfiles: Sequence[GeneratedDockerfile], kind: Literal["build", "run"]
    ) -> ExtendedImage:
        extended = extend(
            base,
            dockerfiles,
            kind=kind,
            scratch=self.work / f"extend-{kind}",
            rootfs_cache=self.rootfs_cache,
            network=self.network,
            user=self.user,
            log=self.log,
            output=self.output,
        )
        self.log(f"Extended the {kind} image with {extended.layers} layer(s)")
        return extended


@dataclass(frozen=True)
class BuildImages:
    """The images a build runs in and on: generate may switch the run image, extend the build image."""

    build_image: Image
    run_name: str
    run_image: Image


def generate(
    generator: Generator,
    *,
    builder: Builder,
    images: BuildImages,
    sandbox: ExtendSandbox,
    home: Path,
    phase: Log,
    warn: Log,
) -> tuple[GenerateResult, BuildImages]:
    """Generate (91/92), then switch the run image and extend the build image as it says."""
    layers = sandbox.work / "layers"
    phase("GENERATING")
    for extension in generator.extensions:
        sandbox.log(f"{extension.descriptor.extension.id} {extension.descriptor.extension.version}")
    generated = generator.generate()
    write_toml(layers / "plan.toml", generated.plan)
    if generated.run_image is not None:
        known = [r.image for r in builder.run_images]
        run_image = open_switched_run_image(generated.run_image, home, known, warn)
        images = dataclasses.replace(images, run_name=generated.run_image, run_image=run_image)
        check_platform(images.build_image, images.run_image, images.run_name)
        sandbox.log(f"Run image {images.run_name} (chosen by an extension)")
    record_analyzed(layers / "analyzed.toml", generated, images.run_name, builder.build_image)
    if generated.build:
        phase("EXTENDING (build)")
        extended = sandbox.extend(images.build_image, generated.build, "build")
        images = dataclasses.replace(images, build_image=extended.image)
    return generated, images


def record_analyzed(path: Path, generated: GenerateResult, run_name: str, build_image: str) -> None:
    """analyzed.toml after generate: the selected run image and what gets extended (platform spec)."""
    with contextlib.suppress(ConfigError, OSError, TypeError, ValueError):  # informational only
        analyzed = load_analyzed_toml(path)
        run = analyzed.run_image or AnalyzedRunImage(reference="")
        if generated.run_image is not None:
            run = AnalyzedRunImage(reference="", image=run_name)  # reference and target no longer hold
        run = run.model_copy(update={"extend": generated.extend_run})
        update = {"run_image": run, "build_image": ImageIdentifier(reference=build_image)}
        write_toml(path, analyzed.model_copy(update=update))


def record_extensions(
    layers: Path, metadata: ConfigMetadata, extensions: Sequence[GroupElement]
) -> ConfigMetadata:
    """metadata.toml with the group's extensions (BLD-14)."""
    if not extensions:
        return metadata
    metadata = metadata.model_copy(update={"extensions": tuple(extensions)})
    write_toml(layers / "config" / "metadata.toml", metadata)
    return metadata
