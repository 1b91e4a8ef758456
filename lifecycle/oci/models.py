"""Pydantic models of OCI/Docker manifests, indexes and image configs.

Models keep unknown fields (``extra="allow"``) so a value we re-serialise after
a change loses nothing; values we did not change are never re-serialised at
all: callers keep the raw bytes beside the parsed model.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lifecycle.errors import ImageError, PybuildError

__all__ = [
    "MAX_API_DOCUMENT_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_MANIFEST_BYTES",
    "ContainerConfig",
    "Descriptor",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "OciModel",
    "Platform",
    "RootFS",
    "canonical_json",
    "json_object",
    "parse_model",
]


MAX_MANIFEST_BYTES = 4 << 20
"""The most bytes of a manifest or an index we read (distribution and containerd refuse more too)."""
MAX_CONFIG_BYTES = 8 << 20
"""The most bytes of an image config (labels included) we read; real ones are a few KB."""
MAX_API_DOCUMENT_BYTES = 16 << 20
"""The most bytes of any other JSON a registry answers with (an error body, a token, a page of tags)."""

# The OCI digest grammar: a malformed one could name another path in a blob dir or a registry URL.
_DIGEST_PATTERN = r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"


class OciModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True, defer_build=True)

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, so equal values give equal digests."""
        return canonical_json(self.model_dump(by_alias=True, exclude_none=True, mode="json"))


class Platform(OciModel):
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")


class Descriptor(OciModel):
    media_type: str = Field(alias="mediaType")
    digest: str = Field(pattern=_DIGEST_PATTERN)
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    urls: list[str] | None = None


class Manifest(OciModel):
    schema_version: int = Field(default=2, alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    config: Descriptor
    layers: list[Descriptor] = Field(default_factory=list)
    annotations: dict[str, str] | None = None


class Index(OciModel):
    schema_version: int = Field(default=2, alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    manifests: list[Descriptor] = Field(default_factory=list)
    annotations: dict[str, str] | None = None


class ContainerConfig(OciModel):
    user: str | None = Field(default=None, alias="User")
    env: list[str] | None = Field(default=None, alias="Env")
    entrypoint: list[str] | None = Field(default=None, alias="Entrypoint")
    cmd: list[str] | None = Field(default=None, alias="Cmd")
    working_dir: str | None = Field(default=None, alias="WorkingDir")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    exposed_ports: dict[str, Any] | None = Field(default=None, alias="ExposedPorts")
    volumes: dict[str, Any] | None = Field(default=None, alias="Volumes")
    stop_signal: str | None = Field(default=None, alias="StopSignal")

    def env_dict(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.env or [])
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}


class RootFS(OciModel):
    type: str = "layers"
    diff_ids: list[str] = Field(default_factory=list)


class History(OciModel):
    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    empty_layer: bool | None = None


class ImageConfig(OciModel):
    created: str | None = None
    author: str | None = None
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    config: ContainerConfig = Field(default_factory=ContainerConfig)
    rootfs: RootFS = Field(default_factory=RootFS)
    history: list[History] | None = None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.labels or {})


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


M = TypeVar("M", bound=OciModel)


def parse_model(model: type[M], raw: bytes, what: str) -> M:
    """Parse ``raw`` JSON into ``model``; a one-line ImageError naming ``what`` otherwise."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise ImageError(f"read {what}", f"{where}: {first['msg']}") from exc


def json_object(
    raw: bytes, action: str, *, what: str, limit: int, error: type[PybuildError] = ImageError
) -> dict[str, Any]:
    """Parse one untrusted JSON object; anything else is a one-line ``error(action, ...)``.

    Untrusted JSON (from a registry, a ``.cnb`` file) goes through here, or through
    ``parse_model``, whose parser has its own nesting limit: more than ``limit`` bytes is
    refused before parsing, and bad UTF-8, malformed JSON and nesting too deep for the parser
    (``RecursionError``) are reported, never raised as they are.
    """
    if len(raw) > limit:
        raise error(action, f"the {what} is {len(raw)} bytes, more than the {limit} bytes allowed")
    try:
        document = json.loads(raw)
    except RecursionError:
        raise error(action, f"the {what} is not a JSON object (JSON nested too deeply)") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = " ".join(str(exc).split())[:200]
        raise error(action, f"the {what} is not a JSON object (invalid JSON: {reason})") from None
    if not isinstance(document, dict):
        raise error(action, f"the {what} is not a JSON object")
    return document
