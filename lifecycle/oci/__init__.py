"""OCI image core: digests, models, reproducible layers, lazy images, mutation."""

from lifecycle.oci.compress import CompressedBlob, LayerSink, blob_layer, compress_file, write_layer
from lifecycle.oci.digest import is_digest, sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import BlobSource, FileBlobs, Layer, LocalBlobs, MemoryBlobs
from lifecycle.oci.models import ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, Platform
from lifecycle.oci.tarball import DEFAULT_MTIME, LayerTar
from lifecycle.oci.validate import validate

__all__ = [
    "DEFAULT_MTIME",
    "BlobSource",
    "CompressedBlob",
    "ContainerConfig",
    "Descriptor",
    "FileBlobs",
    "History",
    "Image",
    "ImageConfig",
    "Index",
    "Layer",
    "LayerSink",
    "LayerTar",
    "LocalBlobs",
    "Manifest",
    "MemoryBlobs",
    "Platform",
    "blob_layer",
    "compress_file",
    "is_digest",
    "sha256_digest",
    "validate",
    "write_layer",
]
