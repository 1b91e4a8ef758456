"""Where the phase commands read and write images: the store, a registry, the daemon or a layout.

- ``-daemon``: the output (and a previous image named by the output) is in the Docker daemon.
- ``-layout`` (experimental, GEN-5): every image is an OCI layout under ``-layout-dir``, at the
  path the platform spec maps a reference to: ``<layout-dir>/<registry>/<repo>/<tag>``, or
  ``.../<repo>/sha256/<hex>`` for a digest; a name without a registry is Docker Hub's
  (``index.docker.io``, ``library/`` for one-part names). Each such directory holds one image.
- otherwise a name with a registry host is in that registry, any other name in the local store.

ANA-5: before anything is built, the analyzer checks that each registry image it will read can
be read and each one it will write can be pushed to (an upload is opened and cancelled).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lifecycle.backends.layout import Layout
from lifecycle.backends.registry.reference import is_host, parse_reference, split_repository
from lifecycle.backends.store import pybuild_home
from lifecycle.errors import ConfigError, ExitCode, ImageNotFound, PybuildError
from lifecycle.oci.digest import hex_part
from lifecycle.oci.image import Image
from lifecycle.platform.phase_inputs import PhaseInputs
from lifecycle.platform.targets import Target, open_target, set_insecure_registries

__all__ = [
    "DOCKER_HUB",
    "check_registry_access",
    "layout_path",
    "output_target",
    "prepare_images",
    "read_image",
    "read_target",
]

DOCKER_HUB = "index.docker.io"
_LAYOUT_TAG = "latest"  # the tag an image written under a layout path gets


def layout_path(layout_dir: Path, ref: str) -> Path:
    """The platform spec's path for ``ref`` under ``layout_dir``."""
    if ref.startswith(str(layout_dir).rstrip("/") + "/"):
        return Path(ref.partition("@")[0])  # already a path there (analyzed.toml of a layout build)
    first, slash, _ = ref.partition("/")
    if slash and is_host(first):
        parsed = parse_reference(ref)
        host, repository, reference = parsed.host, parsed.repository, parsed.reference
    else:
        repository, reference = split_repository(ref)
        host = DOCKER_HUB
        repository = repository if "/" in repository else f"library/{repository}"
    tail = Path("sha256", hex_part(reference)) if reference.startswith("sha256:") else Path(reference)
    return layout_dir / host / repository / tail


def prepare_images(inputs: PhaseInputs, warn: Callable[[str], None]) -> None:
    """Before a phase: registry settings, and GEN-5 for the experimental layout."""
    set_insecure_registries(inputs.insecure_registries)
    if not inputs.layout:
        return
    mode = os.environ.get("CNB_EXPERIMENTAL_MODE", "error")
    if mode == "warn":
        warn("the OCI layout (-layout) is experimental")
    elif mode != "silent":
        raise ConfigError(
            "parse arguments",
            "the OCI layout (-layout) is experimental (set CNB_EXPERIMENTAL_MODE=warn or silent to use it)",
        )


def _layout_target(inputs: PhaseInputs, name: str, create: bool) -> Target:
    assert inputs.layout_dir is not None  # parse_phase_args requires it with -layout
    root = layout_path(inputs.layout_dir, name)
    if not create and not (root / "index.json").is_file():
        raise ImageNotFound(f"find image {name}", f"no OCI layout at {root}")
    return Target(Layout(root, create=create), _LAYOUT_TAG, f"{root}", "layout")


def output_target(inputs: PhaseInputs, name: str) -> Target:
    """An output image name: the daemon (-daemon), a layout (-layout), a registry, or the store."""
    if inputs.layout:
        return _layout_target(inputs, name, create=True)
    first, slash, _ = name.partition("/")
    publish = not inputs.daemon and bool(slash) and is_host(first)
    return open_target(name, create=True, publish=publish, daemon=inputs.daemon)


def read_target(inputs: PhaseInputs, name: str) -> Target:
    """An image to read (run image, previous image): in the layout with -layout, else as named."""
    if inputs.layout:
        return _layout_target(inputs, name, create=False)
    return open_target(name, home=pybuild_home())


def read_image(inputs: PhaseInputs, name: str) -> Image:
    target = read_target(inputs, name)
    if target.kind == "layout":
        return _only_image(target)
    return target.store.image(target.name)


def _only_image(target: Target) -> Image:
    """The one image of a layout path, whatever tool wrote it (with or without a ref name)."""
    assert isinstance(target.store, Layout)
    manifests = target.store.read_index().manifests
    if not manifests:
        raise ImageNotFound(f"find image {target.display}", "the layout there holds no image")
    if len(manifests) != 1:
        raise ConfigError(
            f"read image {target.display}",
            f"the layout holds {len(manifests)} images, not one (give each image its own path)",
        )
    return target.store.image(manifests[0].digest)


def check_registry_access(inputs: PhaseInputs, reads: list[str], writes: list[str]) -> None:
    """ANA-5: registry read access to ``reads``, push access to ``writes`` (other stores: nothing)."""
    if inputs.layout:
        return
    for names, write in ((reads, False), (writes, True)):
        for name in names:
            target = output_target(inputs, name) if write else read_target(inputs, name)
            check = getattr(target.store, "check_access", None)
            if target.kind != "registry" or check is None:
                continue
            try:
                check(target.name, write=write)
            except PybuildError as exc:
                what = "read/write" if write else "read"
                raise ConfigError(
                    "analyze",
                    f"no registry {what} access to {target.display}: {exc.cause}",
                    exit_code=ExitCode.ANALYZE,
                ) from None
