"""The extend phase: apply image extensions' Dockerfiles to the build or run image.

Each Dockerfile in group order works on the image the previous one made
(image_extension.md "Phase: Extension"): ``ARG``s get the lifecycle's ``base_image``, ``build_id`` (a UUID),
``user_id`` and ``group_id`` plus the extension's own build args; ``RUN`` runs
in the image's root filesystem under ``extend_sandbox`` (root only inside a
user namespace); ``COPY``/``ADD`` read the extension's context directory;
``ENV``, ``LABEL``, ``USER`` and ``WORKDIR`` edit the image config. What one
Dockerfile changed on disk becomes one reproducible layer (``rootfs_changes``).

For the run image (platform.md "extender"): unless every applied ``run.Dockerfile`` itself sets
the label ``io.buildpacks.rebasable=true``, the extended image gets
``io.buildpacks.rebasable=false``; and it may not end with root as its user.
A failing ``RUN`` or any other problem here exits 102.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from lifecycle.cnb.dockerfile import (
    BASE_IMAGE_ARG,
    Dockerfile,
    Instruction,
    arg_values,
    expand_word,
    split_words,
)
from lifecycle.errors import ExtendError, ImageNotFound, PybuildError
from lifecycle.execution import rootfs
from lifecycle.execution.extend_sandbox import IdShift, RunSandbox, open_sandbox, working_dir
from lifecycle.execution.rootfs_changes import changes, snapshot, working_copy, write_changes
from lifecycle.execution.runner import OutputSink
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.models import ContainerConfig
from lifecycle.oci.mutate import append_layers, edit_config
from lifecycle.oci.tarball import DEFAULT_MTIME
from lifecycle.phases.extend_files import copy_into, home_of, lookup_user, make_workdir

__all__ = ["REBASABLE_LABEL", "DockerfileStep", "ExtendResult", "extend_image", "is_root_user"]

REBASABLE_LABEL = "io.buildpacks.rebasable"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DEFAULT_SHELL = ("/bin/sh", "-c")

Kind = Literal["build", "run"]


@dataclass(frozen=True)
class DockerfileStep:
    dockerfile: Dockerfile
    context: Path  # the extension's context dir (<output>/context[.kind], else the app dir)
    extension_id: str
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtendResult:
    image: Image
    layers: tuple[Layer, ...]  # the new layers, bottom first; their blobs live under <scratch>/layers
    rebasable: bool  # for a run image: every run.Dockerfile set io.buildpacks.rebasable=true


@dataclass
class _Config:
    """The image config fields a Dockerfile changes, as it goes."""

    env: dict[str, str]
    user: str
    workdir: str
    labels: dict[str, str]

    @classmethod
    def of(cls, image: Image) -> _Config:
        config = image.config.config
        return cls(config.env_dict(), config.user or "", config.working_dir or "/", dict(config.labels or {}))

    def apply(self, config: ContainerConfig) -> ContainerConfig:
        env = [f"{name}={value}" for name, value in self.env.items()]
        changed = {"env": env or None, "user": self.user or None, "labels": self.labels or None}
        return config.model_copy(
            update={**changed, "working_dir": None if self.workdir == "/" else self.workdir}
        )


def extend_image(
    base: Image,
    steps: Sequence[DockerfileStep],
    *,
    kind: Kind,
    scratch: Path,
    rootfs_cache: Path,
    uid: int,
    gid: int,
    network: str = "host",
    output: OutputSink = print,
    resolve: Callable[[str], Image] | None = None,
    mtime: int = DEFAULT_MTIME,
    shift: IdShift | None = None,
) -> ExtendResult:
    """Apply ``steps`` in order to ``base``.

    ``base`` is the image the first Dockerfile builds FROM; a ``run.Dockerfile``
    that names another image switches to it through ``resolve`` (the Dockerfiles
    before it are then dropped, as the spec's run-image selection says).
    ``uid``/``gid`` are the CNB user's ids, the ``user_id``/``group_id`` args when
    the image's ``User`` cannot be resolved. New layer blobs are written under ``scratch/layers``.
    """
    base, steps = _select_base(base, steps, resolve)
    ids = shift or IdShift.for_this_process()
    image, layers, rebasable = base, [], True
    build_id = str(uuid.uuid4())
    with working_dir(scratch, ids) as directory:
        work = directory / "rootfs"
        working_copy(rootfs.rootfs_cache(base, rootfs_cache), work, ids)
        with open_sandbox(work, ids, network=network) as sandbox:
            for step in steps:
                applier = _Applier(step, sandbox, scratch, (uid, gid), build_id, output)
                image, layer = applier.apply(image, kind, mtime)
                layers += [layer] if layer else []
                rebasable = rebasable and applier.sets_rebasable
    if kind == "run":
        image = _finish_run_image(image, rebasable)
    return ExtendResult(image, tuple(layers), rebasable)


def _select_base(
    base: Image, steps: Sequence[DockerfileStep], resolve: Callable[[str], Image] | None
) -> tuple[Image, Sequence[DockerfileStep]]:
    switches = [i for i, step in enumerate(steps) if step.dockerfile.switches_base]
    if not switches:
        return base, steps
    last = switches[-1]
    dockerfile = steps[last].dockerfile
    name = dockerfile.base_image(steps[last].build_args) or ""
    if resolve is None:
        if last == 0:
            return base, steps
        where = dockerfile.where(dockerfile.from_instruction)
        raise ExtendError(
            "extend image", f"{where}: FROM {name} switches the base, but no image resolver was given"
        )
    try:
        return resolve(name), steps[last:]
    except ImageNotFound as exc:
        where = dockerfile.where(dockerfile.from_instruction)
        raise ExtendError("extend image", f"{where}: FROM image {name!r} not found ({exc.cause})") from exc


def _finish_run_image(image: Image, rebasable: bool) -> Image:
    if not rebasable:
        image = edit_config(
            image, lambda c: c.model_copy(update={"labels": {**(c.labels or {}), REBASABLE_LABEL: "false"}})
        )
    if is_root_user(image.config.config.user):
        raise ExtendError(
            "extend run image",
            f"its user is {image.config.config.user or 'unset (root)'} after the last run.Dockerfile;"
            " end it with USER ${user_id}:${group_id}",
        )
    return image


def is_root_user(user: str | None) -> bool:
    name = (user or "").partition(":")[0]
    return name in ("", "0", "root")


class _Applier:
    """Applies one Dockerfile: config as it goes, file changes as one layer at the end."""

    def __init__(
        self,
        step: DockerfileStep,
        sandbox: RunSandbox,
        scratch: Path,
        cnb_ids: tuple[int, int],
        build_id: str,
        output: OutputSink,
    ) -> None:
        self.step = step
        self.dockerfile = step.dockerfile
        self.sandbox = sandbox
        self.root = sandbox.rootfs
        self.scratch = scratch
        self.cnb_ids = cnb_ids
        self.build_id = build_id
        self.output = output
        self.config = _Config({}, "", "/", {})
        self.build_args: dict[str, str] = {}
        self.args: dict[str, str] = {}
        self.shell: tuple[str, ...] = _DEFAULT_SHELL
        self.sets_rebasable = False

    def apply(self, image: Image, kind: Kind, mtime: int) -> tuple[Image, Layer | None]:
        self.config = _Config.of(image)
        self.build_args = {**self._lifecycle_args(), **self.step.build_args}
        before = snapshot(self.root)
        for instruction in self.dockerfile.body:
            try:
                self._instruction(instruction)
            except ExtendError as exc:
                where = self.dockerfile.where(instruction)
                raise ExtendError(exc.action, f"{where} ({instruction.keyword}): {exc.cause}") from exc
            except (PybuildError, OSError, ValueError) as exc:
                where = self.dockerfile.where(instruction)
                raise ExtendError(f"apply {instruction.keyword}", f"{where}: {exc}") from exc
        found = changes(before, snapshot(self.root))
        layer = (
            write_changes(self.root, found, self.scratch / "layers", self.sandbox.shift, mtime=mtime)
            if found
            else None
        )
        image = edit_config(image, self.config.apply)
        if layer is not None:
            by = f"pybuild extend: {kind}.Dockerfile of {self.step.extension_id}"
            image = append_layers(image, [layer], created_by=[by])
        return image, layer

    def _lifecycle_args(self) -> dict[str, str]:
        try:
            uid, gid = lookup_user(self.root, self.config.user) if self.config.user else self.cnb_ids
        except ExtendError:
            uid, gid = self.cnb_ids
        return {BASE_IMAGE_ARG: "", "build_id": self.build_id, "user_id": str(uid), "group_id": str(gid)}

    @property
    def variables(self) -> dict[str, str]:
        return {**self.args, **self.config.env}  # ENV wins over ARG, as in Docker

    def _instruction(self, instruction: Instruction) -> None:
        keyword = instruction.keyword
        if keyword == "ARG":
            self.args.update(arg_values(instruction, self.build_args, self.variables))
        elif keyword in ("ENV", "LABEL"):
            pairs = _pairs(instruction, self.variables)
            (self.config.env if keyword == "ENV" else self.config.labels).update(pairs)
            if keyword == "LABEL" and REBASABLE_LABEL in pairs:
                self.sets_rebasable = pairs[REBASABLE_LABEL] == "true"
        elif keyword == "USER":
            self.config.user = expand_word(str(instruction.args).strip(), self.variables)
            lookup_user(self.root, self.config.user)
        elif keyword == "WORKDIR":
            path = expand_word(str(instruction.args).strip(), self.variables)
            self.config.workdir = str(PurePosixPath(self.config.workdir, path))
            make_workdir(self.root, self.config.workdir, self.sandbox.shift)
        elif keyword == "SHELL":
            self.shell = tuple(instruction.args)
        elif keyword == "RUN":
            self._run(instruction)
        else:
            self._copy(instruction)

    def _run(self, instruction: Instruction) -> None:
        argv = (
            list(instruction.args) if isinstance(instruction.args, tuple) else [*self.shell, instruction.args]
        )
        uid, gid = lookup_user(self.root, self.config.user)
        env = {"PATH": _DEFAULT_PATH, "HOME": home_of(self.root, uid), **self.args, **self.config.env}
        self.output(f"[{self.step.extension_id}] RUN {' '.join(argv[len(self.shell) :] or argv)}")
        status = self.sandbox.run(argv, env, cwd=self.config.workdir, uid=uid, gid=gid, output=self.output)
        if status != 0:
            raise ExtendError("apply RUN", f"the command exited with status {status}")

    def _copy(self, instruction: Instruction) -> None:
        words = instruction.words(self.variables)
        dest = words[-1]
        if not dest.startswith("/"):
            dest = str(PurePosixPath(self.config.workdir, dest)) + ("/" if dest.endswith("/") else "")
        chown = instruction.flags.get("chown")
        owner = lookup_user(self.root, expand_word(chown, self.variables)) if chown else (0, 0)
        chmod = instruction.flags.get("chmod")
        copy_into(
            self.root,
            self.step.context,
            words[:-1],
            dest,
            owner=owner,
            mode=int(chmod, 8) if chmod else None,
            shift=self.sandbox.shift,
            scratch=self.scratch,
            unpack=instruction.keyword == "ADD",
        )


def _pairs(instruction: Instruction, variables: Mapping[str, str]) -> dict[str, str]:
    """``name=value ...``, or the legacy ``name value`` (the rest of the line is the value)."""
    words = split_words(str(instruction.args), variables)
    if words and "=" not in words[0]:
        name, _, rest = str(instruction.args).strip().partition(" ")
        return {name: expand_word(rest.strip(), variables)}
    pairs = {}
    for word in words:
        name, _, value = word.partition("=")
        pairs[name] = value
    return pairs
