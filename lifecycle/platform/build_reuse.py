"""What a build resolved from its options, as the dependencies of its reuse record.

``build_inputs`` fingerprints the options; this module, run inside ``pybuild build`` before the
phases, turns what they resolved to (the builder, the run image, ``--previous-image``, each
buildpack and extension reference) into dependencies ``build_inputs.Reuse.reusable`` checks on
the next build. A build that read anything it cannot check cheaply (an image outside the local
store, for one) gets no record, so it is never reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.errors import PybuildError
from lifecycle.platform.build_inputs import Dependency, Reuse, builder_dir, normalize_tag

if TYPE_CHECKING:
    from lifecycle.oci.image import Image
    from lifecycle.platform.builders import Builder, BuildpackSource

__all__ = ["Recording", "start_recording"]


@dataclass(frozen=True)
class Recording:
    """The dependencies known before the phases; ``finish`` adds the run image and writes it."""

    reuse: Reuse
    dependencies: tuple[Dependency, ...]

    def finish(self, digest: str, run_name: str, run_image: Image) -> None:
        """Record ``digest`` for the fingerprint, unless the final run image is not a store tag."""
        run = self.reuse.in_store(run_name, run_image.digest)  # an extension may have switched it
        if run is not None:
            self.reuse.record(digest, [*self.dependencies, run])


def start_recording(
    reuse: Reuse,
    *,
    builder_name: str,
    builder: Builder,
    build_image: Image,
    run_name: str,
    run_image: Image,
    buildpacks: Sequence[str],
    extensions: Sequence[str],
    previous_image: str | None,
) -> Recording | None:
    """The dependencies of a build about to run, or ``None`` if one of them cannot be checked."""
    try:
        found = [
            *_builder(reuse, builder_name, builder, build_image),
            reuse.in_store(run_name, run_image.digest),
            _previous(reuse, previous_image),
        ]
        base = Path.cwd()
        for ref in buildpacks:
            found.extend(_buildpack(reuse, ref, base, builder.buildpacks))
        for ref in extensions:
            path = (base / ref).resolve()
            found.append(reuse.tree(path) if path.is_dir() else reuse.absent(path))
    except (OSError, PybuildError):  # the build meets it too, and reports it
        return None
    if any(dep is None for dep in found):
        return None
    return Recording(reuse, tuple(dep for dep in found if dep))


def _previous(reuse: Reuse, ref: str | None) -> Dependency | None:
    """``--previous-image`` in the store; IMAGE itself is checked anyway (it moves with this build)."""
    if ref is None or normalize_tag(ref) == reuse.tag:
        return {}
    return reuse.stored(ref)


def _builder(reuse: Reuse, name: str, builder: Builder, build_image: Image) -> list[Dependency | None]:
    """A store builder's directory and build image, or a builder image's digest."""
    directory = builder_dir(reuse.home, name)
    if builder.image is None:
        return [reuse.tree(directory), reuse.in_store(builder.build_image, build_image.digest)]
    # An image read from the local store; a builder directory made later would take its place.
    return [reuse.in_store(name, builder.image.digest), reuse.absent(directory / "builder.json")]


def _buildpack(
    reuse: Reuse, ref: str, base: Path, builder_buildpacks: dict[str, BuildpackSource]
) -> list[Dependency | None]:
    """A ``--buildpack`` (or project.toml) reference, classified as the build will classify it."""
    from lifecycle.platform.bpref import BUILDER_URN, RefKind, parse_buildpack_ref
    from lifecycle.platform.buildpackage_config import local_path

    parsed = parse_buildpack_ref(ref, base=base, builder_buildpacks=builder_buildpacks)
    if parsed.kind is RefKind.DIRECTORY:
        return [reuse.tree(Path(parsed.location))]
    if parsed.kind in (RefKind.ARCHIVE, RefKind.CNB_FILE):
        return [reuse.file(Path(parsed.location))]
    if ref.startswith(BUILDER_URN):  # the builder dependency covers it
        return []
    # An id of the builder or a store image: a path of that name, had it existed, would have won.
    absent = reuse.absent(local_path(ref, base))
    if parsed.kind is RefKind.BUILDER:
        return [absent]
    return [absent, reuse.stored(parsed.location)]
