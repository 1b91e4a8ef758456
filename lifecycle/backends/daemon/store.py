"""``DaemonStore``: the ``ImageStore`` interface over a Docker daemon (imgutil's daemon model).

Reading costs two small API calls: ``inspect`` (config fields, labels,
diffIDs from ``RootFS.Layers``) and ``history``; the config bytes are re-made
from them and checked against the image ID (``config.py``). Layers are lazy
handles whose bytes come from one ``docker save`` of the image, made only
when a layer is actually read (``saved.py``).

Docker keeps no registry manifest, so the manifest of a daemon image is
synthesized: an OCI manifest over the config, with each layer described as
an uncompressed tar whose digest is its diffID and whose size is unknown (0)
until it is saved. Its digest is therefore not what a registry would report
for the same image: the identity of a daemon image is its image ID (the
config digest), which ``write`` and ``resolve`` return. ``materialize`` turns
a daemon image into one with real (gzip) blobs, for writing to a layout or a
registry.

Writing loads a docker archive streamed from the image, with placeholders
for the bottom layers the daemon already has (``load.py``), or only tags
when the daemon already has the image ID.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lifecycle.backends.base import normalize_tag, repository_of
from lifecycle.backends.daemon.config import remade_config
from lifecycle.backends.daemon.connect import connect, daemon_errors, docker_params
from lifecycle.backends.daemon.load import LayerChains, load_archive
from lifecycle.backends.daemon.saved import DaemonLayers, DaemonStats, SavedImages
from lifecycle.errors import DigestMismatch, ImageError, ImageNotFound
from lifecycle.oci.compress import LayerSink, blob_layer
from lifecycle.oci.digest import sha256_digest
from lifecycle.oci.dockerarchive import write_docker_archive
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.media import OCI_CONFIG, OCI_MANIFEST
from lifecycle.oci.models import Descriptor, Manifest

__all__ = ["DaemonStore"]

_CHUNK = 1 << 20
_BASE_NAME = "org.opencontainers.image.base.name"  # set by the exporter: the run image's name


class DaemonStore:
    """Images in a Docker daemon, by name:tag or image ID.

    ``client`` is a ``docker.DockerClient``; without one, the daemon is
    ``host`` or the one the docker CLI would use (``connect.py``), reached on
    first use. ``scratch`` is where saved layers go (a temp dir by default,
    removed by ``close()`` or at exit).
    """

    def __init__(self, client: Any = None, host: str | None = None, *, scratch: Path | None = None) -> None:
        self._client = client
        self._params = docker_params(host) if client is None else {}
        self.host: str = self._params.get("base_url") or str(getattr(client.api, "base_url", "docker"))
        self.stats = DaemonStats()
        self._saved = SavedImages(self._save_stream, self.stats, scratch)
        self._chains = LayerChains(self._all_image_ids, self._diff_ids_of)
        self._remade: dict[str, str] = {}  # config digest of a re-made (inexact) config -> image ID

    @property
    def client(self) -> Any:
        """The SDK client; connecting on first use raises the one-line "failed to connect" error."""
        if self._client is None:
            self._client = connect(self._params)
        return self._client

    def close(self) -> None:
        """Remove saved layers and close a client this store made; the store stays usable."""
        self._saved.close()
        if self._params and self._client is not None:
            self._client.close()
            self._client = None

    def errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """SDK failures inside become domain errors naming ``action`` (and this daemon)."""
        return daemon_errors(action, self.host)

    # -- reading -------------------------------------------------------------
    def image(self, ref: str) -> Image:
        """A lazy image: config from inspect (no layer bytes move), layers saved on first read."""
        with self.errors(f"find image {ref}"):
            inspect = self.client.api.inspect_image(ref)
            history = self.client.api.history(inspect["Id"])
        return self._lazy_image(inspect, history)

    def _lazy_image(self, inspect: dict[str, Any], history: list[dict[str, Any]]) -> Image:
        image_id = inspect["Id"]
        raw_config = remade_config(inspect, history)
        if sha256_digest(raw_config) != image_id:
            self._remade[sha256_digest(raw_config)] = image_id
        source = DaemonLayers(self._saved, self.stats, image_id)
        layers = tuple(source.layer(diff_id) for diff_id in (inspect.get("RootFS") or {}).get("Layers") or [])
        return Image(_manifest(raw_config, layers), raw_config, layers)

    def is_exact(self, image: Image) -> bool:
        """False for an image read from this daemon whose config could not be re-made byte for byte."""
        return image.config_descriptor.digest not in self._remade

    def resolve(self, ref: str) -> str | None:
        """The image ID (config digest) ``ref`` names, or None."""
        try:
            with self.errors(f"resolve {ref}"):
                return str(self.client.api.inspect_image(ref)["Id"])
        except ImageNotFound:
            return None

    def tags(self) -> list[str]:
        with self.errors("list images"):
            images = self.client.api.images()
        return sorted({tag for entry in images for tag in entry.get("RepoTags") or [] if "<none>" not in tag})

    def materialize(self, image: Image, directory: Path) -> Image:
        """The same image with every daemon layer saved and gzipped into ``directory``: real blobs.

        A config that could not be re-made exactly is replaced by the image's
        own bytes from the save, so the result is what the daemon holds.
        """
        layers = tuple(self._materialized(layer, directory) for layer in image.layers)
        raw_config = image.raw_config
        image_id = self._remade.get(image.config_descriptor.digest)
        if image_id is not None:
            raw_config = self._saved.get(image_id).raw_config
        return Image(_manifest(raw_config, layers), raw_config, layers)

    def _materialized(self, layer: Layer, directory: Path) -> Layer:
        if not isinstance(layer.source, DaemonLayers):
            return layer
        with LayerSink(directory) as sink, layer.uncompressed() as src:
            while chunk := src.read(_CHUNK):
                sink.write(chunk)
        blob = sink.close()
        if blob.diff_id != layer.diff_id:
            raise DigestMismatch("save layer from docker daemon", f"{layer.diff_id} read as {blob.diff_id}")
        return blob_layer(blob)

    # -- writing -------------------------------------------------------------
    def write(self, image: Image, tags: Sequence[str]) -> str:
        """Load ``image`` unless the daemon has its ID, then point ``tags`` at it; returns the image ID."""
        repo_tags = [_repo_tag(tag) for tag in tags]
        image_id = sha256_digest(image.raw_config)
        if self.resolve(image_id) == image_id:
            self.stats.tag_only_writes += 1
            self._tag(image_id, repo_tags)
            return image_id
        placeholders = self._chains.present(image.diff_ids, self._hints(image, repo_tags))
        error = self._load(image, repo_tags, placeholders)
        if error and placeholders:
            self.stats.fallbacks += 1
            error = self._load(image, repo_tags, 0)
        if error:
            raise ImageError(f"load image {image_id[:19]} into docker daemon", error)
        return image_id

    def _hints(self, image: Image, repo_tags: Sequence[str]) -> list[str]:
        """Images likely to share our bottom layers: what our tags name now, our base, our layers' sources."""
        names = [*repo_tags, image.annotations.get(_BASE_NAME, "")]
        hints = [image_id for name in names if name and (image_id := self.resolve(name))]
        hints += [layer.source.image_id for layer in image.layers if isinstance(layer.source, DaemonLayers)]
        return hints

    def _load(self, image: Image, repo_tags: Sequence[str], placeholders: int) -> str:
        sendable = self._sendable(image, placeholders)

        def write(out: BinaryIO) -> None:
            write_docker_archive(sendable, repo_tags, out, placeholders=placeholders)

        self.stats.loads += 1
        self.stats.load_attempts.append(placeholders)
        with self.errors("load image into docker daemon"):
            sent, error = load_archive(self.client.api.load_image, write)
        self.stats.load_bytes += sent
        self.stats.placeholders += placeholders
        self.stats.layers_sent += len(image.layers) - placeholders
        return error

    def _sendable(self, image: Image, placeholders: int) -> Image:
        """Daemon layers above the placeholders need true sizes in the archive: save them now."""
        layers = list(image.layers)
        for index in range(placeholders, len(layers)):
            source = layers[index].source
            if isinstance(source, DaemonLayers):
                layers[index] = source.exact_layer(layers[index].diff_id)
        return Image(image.raw_manifest, image.raw_config, tuple(layers))

    def _tag(self, image_id: str, repo_tags: Iterable[str]) -> None:
        for repo_tag in repo_tags:
            repository = repository_of(repo_tag)
            with self.errors(f"tag {repo_tag}"):
                self.client.api.tag(image_id, repository, repo_tag[len(repository) + 1 :], force=True)

    def delete(self, ref: str) -> None:
        """Untag ``ref`` (and remove the image when that was its last tag), as ``docker rmi`` does."""
        with self.errors(f"delete {ref}"):
            self.client.api.remove_image(ref)

    # -- daemon queries --------------------------------------------------------
    def _save_stream(self, image_id: str) -> Iterator[bytes]:
        with self.errors(f"save image {image_id[:19]} from docker daemon"):
            yield from self.client.api.get_image(image_id, chunk_size=_CHUNK)

    def _all_image_ids(self) -> list[str]:
        with self.errors("list images"):
            return [entry["Id"] for entry in self.client.api.images(all=True)]

    def _diff_ids_of(self, image_id: str) -> list[str]:
        try:
            with self.errors(f"inspect image {image_id[:19]}"):
                inspect = self.client.api.inspect_image(image_id)
        except ImageNotFound:  # removed since it was listed
            return []
        return list((inspect.get("RootFS") or {}).get("Layers") or [])


def _repo_tag(tag: str) -> str:
    named = normalize_tag(tag)
    if "@" in named:
        raise ImageError(f"tag {tag}", "a digest reference cannot be a tag in a docker daemon; use name:tag")
    return named


def _manifest(raw_config: bytes, layers: Sequence[Layer]) -> bytes:
    config = Descriptor(media_type=OCI_CONFIG, digest=sha256_digest(raw_config), size=len(raw_config))
    manifest = Manifest(
        schema_version=2,
        media_type=OCI_MANIFEST,
        config=config,
        layers=[layer.descriptor for layer in layers],
    )
    return manifest.to_bytes()
