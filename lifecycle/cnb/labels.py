"""The JSON of the CNB image labels (cnb-spec.md §3, EXP-11, REB-6).

Keys, their order and which ones are left out when empty follow what the lifecycle writes,
so `pack inspect` and the real rebaser read our images, and the same build gives the same
bytes (EXP-6). Unknown keys are kept, so a rebase changes only what it means to (REB-6).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AliasChoices, Field, PlainSerializer, SerializerFunctionWrapHandler, WrapSerializer

from lifecycle.cnb._model import FreeForm, LabelModel, sorted_keys

__all__ = [
    "BUILD_METADATA_LABEL",
    "LIFECYCLE_METADATA_LABEL",
    "PROJECT_METADATA_LABEL",
    "BuildMetadataLabel",
    "BuildpackLayersLabel",
    "BuildpackRefLabel",
    "GitSource",
    "LauncherLabel",
    "LauncherSource",
    "LayerLabel",
    "LayerSha",
    "LifecycleMetadata",
    "ProcessLabel",
    "ProjectMetadataLabel",
    "ProjectSource",
    "RunImageForRebase",
    "StackLabel",
    "StackRunImage",
    "StoreLabel",
]

LIFECYCLE_METADATA_LABEL = "io.buildpacks.lifecycle.metadata"
BUILD_METADATA_LABEL = "io.buildpacks.build.metadata"
PROJECT_METADATA_LABEL = "io.buildpacks.project.metadata"


def _by_name(value: dict[str, Any], handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
    dumped: dict[str, Any] = handler(value)
    return dict(sorted(dumped.items()))


class LayerSha(LabelModel):
    """`{"sha": <diffID>}`: an uncompressed diffID, never a compressed digest."""

    sha: str = ""


class LayerLabel(LabelModel):
    """A launch layer: its diffID, its `[metadata]` as `data`, and its types."""

    sha: str = ""
    data: Annotated[Any, PlainSerializer(sorted_keys)] = None
    build: bool = False
    launch: bool = False
    cache: bool = False


class StoreLabel(LabelModel):
    """A buildpack's store.toml as kept in the label (BLD-15)."""

    metadata: FreeForm = Field(default_factory=dict)


class BuildpackLayersLabel(LabelModel):
    """One buildpack's launch layers, keyed by layer name (written in name order)."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"store"})

    key: str
    version: str
    layers: Annotated[dict[str, LayerLabel], WrapSerializer(_by_name)] = Field(default_factory=dict)
    store: StoreLabel | None = None


class RunImageForRebase(LabelModel):
    """`runImage`: where the app's base ends (`topLayer`) and which image it came from (REB-1, REB-5)."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"image", "mirrors"})

    top_layer: str = Field(
        default="", alias="topLayer", validation_alias=AliasChoices("topLayer", "top-layer")
    )
    reference: str = ""
    image: str = ""
    mirrors: tuple[str, ...] = ()


class StackRunImage(LabelModel):
    """The deprecated `stack.runImage`: image and mirrors only."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"mirrors"})

    image: str = ""
    mirrors: tuple[str, ...] = ()


class StackLabel(LabelModel):
    """The deprecated `stack` key, still written and read as a rebase fallback (REB-1)."""

    run_image: StackRunImage = Field(
        default_factory=StackRunImage,
        alias="runImage",
        validation_alias=AliasChoices("runImage", "run-image"),
    )


class LifecycleMetadata(LabelModel):
    """`io.buildpacks.lifecycle.metadata`; `sbom` and `stack` are left out when empty."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"sbom", "stack"})

    app: tuple[LayerSha, ...] = ()
    sbom: LayerSha | None = None
    buildpacks: tuple[BuildpackLayersLabel, ...] = ()
    config: LayerSha = Field(default_factory=LayerSha)
    launcher: LayerSha = Field(default_factory=LayerSha)
    process_types: LayerSha = Field(default_factory=LayerSha, alias="process-types")
    run_image: RunImageForRebase = Field(
        default_factory=RunImageForRebase,
        alias="runImage",
        validation_alias=AliasChoices("runImage", "run-image"),
    )
    stack: StackLabel | None = None


class BuildpackRefLabel(LabelModel):
    """A buildpack in the build metadata: `id`, `version`, `homepage` (the lifecycle leaves out `api`)."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"homepage"})

    id: str
    version: str
    homepage: str = ""


class GitSource(LabelModel):
    """Where the launcher was built from."""

    repository: str = ""
    commit: str = ""


class LauncherSource(LabelModel):
    """`launcher.source`."""

    git: GitSource = Field(default_factory=GitSource)


class LauncherLabel(LabelModel):
    """`launcher`: the launcher's version and source."""

    version: str = ""
    source: LauncherSource = Field(default_factory=LauncherSource)


class ProcessLabel(LabelModel):
    """A process in the build metadata: `args` is written even when null; `command` is a string below
    Platform 0.10 and an array from 0.10."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"default", "working-dir", "exec-env"})

    type: str
    command: tuple[str, ...] | str
    args: tuple[str, ...] | None = None
    direct: bool = False
    default: bool = False
    buildpack_id: str = Field(alias="buildpackID")
    working_dir: str | None = Field(default=None, alias="working-dir")
    exec_env: tuple[str, ...] = Field(default=(), alias="exec-env")


class BuildMetadataLabel(LabelModel):
    """`io.buildpacks.build.metadata`; `bom` (Platform below 0.9) and `extensions` only when present."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset(
        {"bom", "extensions", "buildpack-default-process-type"}
    )

    bom: tuple[Any, ...] | None = None
    buildpacks: tuple[BuildpackRefLabel, ...] = ()
    extensions: tuple[BuildpackRefLabel, ...] = ()
    launcher: LauncherLabel = Field(default_factory=LauncherLabel)
    processes: tuple[ProcessLabel, ...] = ()
    buildpack_default_process_type: str = Field(default="", alias="buildpack-default-process-type")


class ProjectSource(LabelModel):
    """`source` of the project metadata, e.g. `{"type": "git", "version": {...}, "metadata": {...}}`."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"type", "version", "metadata"})

    type: str = ""
    version: FreeForm = Field(default_factory=dict)
    metadata: FreeForm = Field(default_factory=dict)


class ProjectMetadataLabel(LabelModel):
    """`io.buildpacks.project.metadata`: `{"source": ...}` or `{}` (EXP-11)."""

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"source"})

    source: ProjectSource | None = None
