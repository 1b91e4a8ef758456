"""OCI and Docker media types, and the predicates that group them."""

from __future__ import annotations

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "is_gzip_layer",
    "is_index",
    "is_manifest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_GZIP_LAYERS = {OCI_LAYER_GZIP, DOCKER_LAYER, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}


def is_manifest(media_type: str) -> bool:
    return media_type in (OCI_MANIFEST, DOCKER_MANIFEST)


def is_index(media_type: str) -> bool:
    return media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)


def is_gzip_layer(media_type: str) -> bool:
    return media_type in _GZIP_LAYERS
