"""Stack images: a build image, a run image and a patched run image from ``stacks/<name>/stack.toml``.

``build_stack`` makes them from Debian packages with no registry pull (DESIGN.md "Stacks and
builders") and stores them in the local store as ``pybuild/build:<name>``,
``pybuild/run:<name>`` (= ``pybuild/run:<name>-1``) and ``pybuild/run:<name>-2``. Each image
is one reproducible layer (same packages, same digest) with the config cnb-spec.md §4 asks of
a base: PATH, a non-root User, ``CNB_USER_ID``/``CNB_GROUP_ID`` on the build image, and the
``io.buildpacks.base.*`` labels (ANA-4 reads the target from them, REB-7 copies them on
rebase) plus ``io.buildpacks.rebasable`` on run images (REB-3). Version 2 of the run image
differs in its base layer, so a rebase onto it is visible in the app image.
"""

from __future__ import annotations

import functools
import itertools
import posixpath
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

from lifecycle.backends.store import LocalStore
from lifecycle.errors import StackError
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.models import ContainerConfig, History, ImageConfig, canonical_json
from lifecycle.oci.mutate import new_image
from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.stack_debs import Deb, Member, busybox_applets, deb_file, deb_members, fetch_debs
from lifecycle.platform.stack_mmdebstrap import Bootstrap, bootstrap
from lifecycle.platform.stack_progress import RichStackProgress, SilentProgress, StackProgress, reporting
from lifecycle.platform.stack_rootfs import (
    Entry,
    RootfsFacts,
    RootfsPlan,
    account_files,
    skeleton,
    tarball_members,
    write_rootfs,
)
from lifecycle.platform.stack_spec import DebsSpec, StackSpec, load_stack

__all__ = [
    "RichStackProgress",
    "Role",
    "StackImage",
    "StackProgress",
    "StackResult",
    "build_stack",
    "load_stack",
    "stack_tags",
]

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# dpkg architecture -> OCI (architecture, variant), as the Go toolchain names them.
_OCI_ARCH: dict[str, tuple[str, str | None]] = {
    "amd64": ("amd64", None),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", None),
    "ppc64el": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64el": ("mips64le", None),
}


class Role(StrEnum):
    BUILD = "build"
    RUN = "run"
    PATCHED_RUN = "patched-run"


def stack_tags(name: str) -> dict[Role, tuple[str, ...]]:
    """The local-store tags of a stack's images; the first one of each is its main name."""
    return {
        Role.BUILD: (f"pybuild/build:{name}",),
        Role.RUN: (f"pybuild/run:{name}", f"pybuild/run:{name}-1"),
        Role.PATCHED_RUN: (f"pybuild/run:{name}-2",),
    }


@dataclass(frozen=True)
class StackImage:
    role: Role
    tags: tuple[str, ...]
    digest: str
    diff_id: str  # of the image's one layer: the base layer rebase swaps
    size: int  # compressed layer bytes


@dataclass(frozen=True)
class StackResult:
    name: str
    images: tuple[StackImage, ...]
    reused: bool  # every tag existed, nothing was built

    def image(self, role: Role) -> StackImage:
        return next(image for image in self.images if image.role is role)

    @property
    def digests(self) -> dict[str, str]:
        """Every tag with the digest it points to."""
        return {tag: image.digest for image in self.images for tag in image.tags}


@dataclass(frozen=True)
class _ImagePlan:
    role: Role
    tags: tuple[str, ...]
    packages: tuple[str, ...]
    files: dict[str, str]
    version: int  # of the run image; the build image is version 1

    @property
    def kind(self) -> str:
        return "build" if self.role is Role.BUILD else "run"


@dataclass(frozen=True)
class _Source:
    """Where one image's files come from, and how its history says so."""

    members: Callable[[Callable[[int], None]], Iterator[Member]]
    size: int | None
    created_by: str
    plan: RootfsPlan = field(default_factory=RootfsPlan)
    packages: dict[str, str] = field(default_factory=dict)  # empty: read the dpkg status file


def build_stack(
    stack_dir: Path, store: LocalStore, *, progress: StackProgress | None = None, force: bool = False
) -> StackResult:
    """Make and store the stack's three images; reuse them when every tag exists, unless ``force``."""
    spec = load_stack(stack_dir)
    plans = _image_plans(spec)
    if not force and (stored := _stored(spec.name, plans, store)) is not None:
        return stored
    report = progress or SilentProgress()
    with reporting(report, f"stack {spec.name}"):
        images = _build(spec, plans, store, report)
    return StackResult(
        spec.name, tuple(_stack_image(p, i) for p, i in zip(plans, images, strict=True)), reused=False
    )


def _build(
    spec: StackSpec, plans: Sequence[_ImagePlan], store: LocalStore, report: StackProgress
) -> list[Image]:
    """Every image first, then every tag: a failed build leaves the previous stack images tagged."""
    prepare = _prepare_debs if spec.debs is not None else _prepare_mmdebstrap
    sources = prepare(spec, plans, store, report)
    with tempfile.TemporaryDirectory(dir=store.layout.scratch, prefix=".stack-") as tmp:
        scratch = Path(tmp)
        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            images = list(pool.map(lambda p: _make_image(spec, p, sources[p.role], scratch, report), plans))
        for plan, image in zip(plans, images, strict=True):
            store.write(image, plan.tags)  # a hard link of the scratch blob, then the tags
    return images


def _image_plans(spec: StackSpec) -> list[_ImagePlan]:
    tags = stack_tags(spec.name)
    run_files = {**spec.files, **spec.run.files}
    patched = dict.fromkeys([*spec.run.packages, *spec.run.patch.packages])
    patched_files = {**run_files, **spec.run.patch.files}
    build_files = {**spec.files, **spec.build.files}
    return [
        _ImagePlan(Role.BUILD, tags[Role.BUILD], tuple(spec.build.packages), build_files, 1),
        _ImagePlan(Role.RUN, tags[Role.RUN], tuple(spec.run.packages), run_files, 1),
        _ImagePlan(Role.PATCHED_RUN, tags[Role.PATCHED_RUN], tuple(patched), patched_files, 2),
    ]


def _stored(name: str, plans: Sequence[_ImagePlan], store: LocalStore) -> StackResult | None:
    images = []
    for plan in plans:
        digests = {store.resolve(tag) for tag in plan.tags}
        if len(digests) != 1 or None in digests:
            return None
        images.append(_stack_image(plan, store.image(plan.tags[0])))
    return StackResult(name, tuple(images), reused=True)


def _stack_image(plan: _ImagePlan, image: Image) -> StackImage:
    layer = image.layers[-1]
    return StackImage(plan.role, plan.tags, image.digest, layer.diff_id, layer.size)


# -- where the files come from ---------------------------------------------------------------
def _prepare_debs(
    spec: StackSpec, plans: Sequence[_ImagePlan], store: LocalStore, report: StackProgress
) -> dict[Role, _Source]:
    assert spec.debs is not None  # build_stack picked this method for it
    wanted = list(dict.fromkeys(itertools.chain.from_iterable(p.packages for p in plans)))
    with reporting(report, "download packages"):
        debs = {deb.package: deb for deb in fetch_debs(wanted, store.home / "cache" / "debs")}
    links = tuple(Entry(path, 0o777, "symlink", target.encode()) for path, target in spec.debs.links.items())
    sources = {}
    for plan in plans:
        own = [debs[name] for name in plan.packages]
        applets: tuple[Entry, ...] = ()
        if spec.debs.busybox:
            paths = busybox_applets(deb_file(own, spec.debs.busybox), store.layout.scratch)
            applets = tuple(_relative_link(path, spec.debs.busybox) for path in paths)
        sources[plan.role] = _Source(
            members=functools.partial(_deb_members, own, spec.debs),
            size=None,
            created_by="pybuild stack: unpack " + " ".join(f"{d.package}={d.version}" for d in own),
            plan=RootfsPlan(overrides=(*account_files(spec.user), *links), defaults=applets),
            packages={deb.package: deb.version for deb in own},
        )
    return sources


def _deb_members(debs: Sequence[Deb], paths: DebsSpec, _advance: Callable[[int], None]) -> Iterator[Member]:
    for deb in debs:
        for info, stream in deb_members(deb.path):
            # Directories stay, as with dpkg: an included file needs its parents.
            if info.isdir() or paths.keeps(str(PurePosixPath("/", info.name))):
                yield info, stream


def _relative_link(path: str, target: str) -> Entry:
    """A symlink that works both in the image and in a rootfs unpacked anywhere on the host."""
    relative = posixpath.relpath(target, posixpath.dirname(path))
    return Entry(path, 0o777, "symlink", relative.encode())


def _prepare_mmdebstrap(
    spec: StackSpec, plans: Sequence[_ImagePlan], store: LocalStore, report: StackProgress
) -> dict[Role, _Source]:
    assert spec.mmdebstrap is not None  # build_stack picked this method for it
    runs = {
        plan.role: Bootstrap.plan(spec.mmdebstrap, plan.packages, spec.user, spec.source_date_epoch)
        for plan in plans
    }
    unique: dict[str, tuple[Role, Bootstrap]] = {}
    for role, run in runs.items():
        unique.setdefault(run.key, (role, run))  # the patched run image may need no run of its own
    cache = store.home / "cache" / "stacks"

    def make(role: Role, run: Bootstrap) -> Path:
        step = f"mmdebstrap {role}"
        with reporting(report, step):
            return bootstrap(run, cache, lambda line: report.update(step, note=line))

    # Two at a time: each is mostly one dpkg process, and this machine class has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        tarballs = dict(zip(unique, pool.map(lambda item: make(*item), unique.values()), strict=True))
    return {
        role: _Source(
            members=functools.partial(tarball_members, tarballs[run.key]),
            size=tarballs[run.key].stat().st_size,
            created_by=run.command,
        )
        for role, run in runs.items()
    }


# -- one image -----------------------------------------------------------------------------------
def _make_image(
    spec: StackSpec, plan: _ImagePlan, source: _Source, scratch: Path, report: StackProgress
) -> Image:
    step = f"layer {plan.tags[0]}"
    with reporting(report, step, source.size):
        layer, facts = _write_layer(spec, plan, source, scratch, lambda done: report.update(step, done=done))
    packages = source.packages or facts.dpkg_packages()
    return new_image(_config(spec, plan, source, facts, packages), [layer])


def _write_layer(
    spec: StackSpec, plan: _ImagePlan, source: _Source, scratch: Path, advance: Callable[[int], None]
) -> tuple[Layer, RootfsFacts]:
    base = skeleton(spec.user)
    files = tuple(Entry(path, content=text.encode()) for path, text in plan.files.items())
    rootfs = RootfsPlan(
        overrides=(*base.overrides, *source.plan.overrides, *files),
        defaults=(*source.plan.defaults, *base.defaults),
    )
    found: list[RootfsFacts] = []

    def fill(tar: LayerTar) -> None:
        found.append(write_rootfs(tar, source.members(advance), rootfs))

    layer = write_layer(scratch, fill, mtime=spec.source_date_epoch)
    return layer, found[0]


def _config(
    spec: StackSpec, plan: _ImagePlan, source: _Source, facts: RootfsFacts, packages: dict[str, str]
) -> ImageConfig:
    created = datetime.fromtimestamp(spec.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = [f"PATH={_PATH}"]
    if plan.role is Role.BUILD:
        env += [f"CNB_USER_ID={spec.user.uid}", f"CNB_GROUP_ID={spec.user.gid}"]
    architecture, variant = _host_platform()
    container = ContainerConfig(
        user=f"{spec.user.uid}:{spec.user.gid}", env=env, labels=_labels(spec, plan, facts, packages, created)
    )
    comment = f"pybuild stack {spec.name}: {plan.kind} image, version {plan.version}"
    return ImageConfig(
        created=created,
        architecture=architecture,
        os="linux",
        variant=variant,
        config=container,
        history=[History(created=created, created_by=source.created_by, comment=comment)],
    )


def _labels(
    spec: StackSpec, plan: _ImagePlan, facts: RootfsFacts, packages: dict[str, str], created: str
) -> dict[str, str]:
    release = facts.os_release()
    if not release.get("ID") or not release.get("VERSION_ID"):
        fix = "add /etc/os-release with ID and VERSION_ID under [files] in stack.toml"
        raise StackError(f"label {plan.tags[0]}", f"the image has no distro name or version: {fix}")
    metadata = {"stack": spec.name, "role": str(plan.role), "version": plan.version, "packages": packages}
    labels = {
        "io.buildpacks.base.id": spec.id,
        "io.buildpacks.stack.id": spec.id,  # Platform API < 0.12 and pack's stack checks (REB-2)
        "io.buildpacks.base.distro.name": release["ID"],
        "io.buildpacks.base.distro.version": release["VERSION_ID"],
        "io.buildpacks.base.maintainer": spec.maintainer,
        "io.buildpacks.base.homepage": spec.homepage,
        "io.buildpacks.base.released": created,
        "io.buildpacks.base.description": f"{spec.description} ({plan.kind} image, version {plan.version})",
        "io.buildpacks.base.metadata": canonical_json(metadata).decode(),
    }
    if plan.role is not Role.BUILD:
        labels["io.buildpacks.rebasable"] = "true"
    return labels


@functools.cache
def _host_platform() -> tuple[str, str | None]:
    """The OCI architecture and variant of this machine's Debian packages."""
    try:
        arch = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise StackError("find the Debian architecture", f"dpkg --print-architecture failed: {exc}") from None
    if arch not in _OCI_ARCH:
        raise StackError("find the Debian architecture", f"{arch} has no OCI name known to pybuild")
    return _OCI_ARCH[arch]
