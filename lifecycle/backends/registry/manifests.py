"""Manifest documents as a registry serves them: Accept types, verification, media type, platform choice."""

from __future__ import annotations

from lifecycle.backends.registry.reference import Reference
from lifecycle.errors import DigestMismatch, ImageNotFound
from lifecycle.oci.digest import check_digest, sha256_digest
from lifecycle.oci.media import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from lifecycle.oci.models import MAX_MANIFEST_BYTES, Descriptor, Index, json_object

__all__ = ["ACCEPT", "manifest_media_type", "pick_platform", "verify_manifest"]

ACCEPT = {"Accept": ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))}


def verify_manifest(raw: bytes, target: Reference, served_digest: str | None, action: str) -> None:
    """By digest: the bytes must hash to it. By tag: to the ``Docker-Content-Digest`` the registry sent."""
    if target.is_digest:
        check_digest(raw, target.reference, f"manifest {target}")
    elif served_digest and served_digest.startswith("sha256:") and served_digest != sha256_digest(raw):
        raise DigestMismatch(
            action, f"the manifest hashes to {sha256_digest(raw)}, the registry said {served_digest}"
        )


def manifest_media_type(raw: bytes, content_type: str, action: str) -> str:
    """The document's own ``mediaType``, else the response's Content-Type, else by its shape."""
    document = json_object(raw, action, what="manifest the registry served", limit=MAX_MANIFEST_BYTES)
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    header = content_type.split(";", 1)[0].strip()
    if header and header not in ("application/json", "application/octet-stream"):
        return header
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def pick_platform(index: Index, platform: str, action: str) -> Descriptor:
    """The entry for ``os/arch[/variant]`` (e.g. ``linux/amd64``), as docker pull chooses."""
    os_name, _, rest = platform.partition("/")
    architecture, _, variant = rest.partition("/")
    for entry in index.manifests:
        found = entry.platform
        matches = found is not None and (found.os, found.architecture) == (os_name, architecture)
        if matches and (not variant or (found is not None and found.variant == variant)):
            return entry
    offered = sorted({f"{e.platform.os}/{e.platform.architecture}" for e in index.manifests if e.platform})
    raise ImageNotFound(
        action, f"the image index has no {platform} manifest (it has: {', '.join(offered) or 'none'})"
    )
