"""The registry backend: images in the repositories of one registry host (OCI distribution API).

Reads keep the raw manifest and config bytes and verify them: by the digest asked for, else
against ``Docker-Content-Digest`` (DESIGN.md "bytes are truth"); an index resolves to the chosen
platform (linux/amd64 unless told). Writes are atomic per tag (DESIGN.md "atomic writes"):
layers in parallel (bounded), then configs, and only then a manifest PUT by each tag, so a failed
push leaves every tag on its previous, complete image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from types import TracebackType

import httpx

from lifecycle.backends.registry.blobs import RegistryBlobs
from lifecycle.backends.registry.client import RegistryClient, RetryPolicy
from lifecycle.backends.registry.credentials import Credentials, find_credentials
from lifecycle.backends.registry.manifests import ACCEPT, manifest_media_type, pick_platform, verify_manifest
from lifecycle.backends.registry.push import CHUNK_SIZE, CHUNK_THRESHOLD, BlobPusher, Progress, RegistryStats
from lifecycle.backends.registry.reference import Reference, is_host, parse_reference, split_repository
from lifecycle.errors import ConfigError, DigestMismatch, ImageError, ImageNotFound
from lifecycle.oci.digest import is_digest, sha256_digest
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.media import is_index, is_manifest
from lifecycle.oci.models import (
    MAX_API_DOCUMENT_BYTES,
    MAX_MANIFEST_BYTES,
    Index,
    Manifest,
    json_object,
    parse_model,
)

__all__ = ["DEFAULT_PLATFORM", "RegistryStore"]

DEFAULT_PLATFORM = "linux/amd64"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryStore:
    """Images named ``repo:tag`` or ``repo@sha256:..`` (or ``[docker://]host/repo:tag``) on ``host``."""

    def __init__(
        self,
        host: str,
        *,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        transport: httpx.BaseTransport | None = None,
        progress: Progress | None = None,
        insecure_registries: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        platform: str = DEFAULT_PLATFORM,
        parallel: int = 4,
        chunk_threshold: int = CHUNK_THRESHOLD,
        chunk_size: int = CHUNK_SIZE,
        page_size: int = 100,
    ) -> None:
        self.host = host
        self.client = RegistryClient(
            host,
            insecure=insecure,
            insecure_registries=insecure_registries,
            credentials=credentials if credentials is not None else find_credentials(host),
            transport=transport,
            retry=retry,
        )
        self.stats = RegistryStats()
        self.progress = progress
        self.platform = platform
        self.parallel = max(parallel, 1)
        self.chunks = (chunk_threshold, chunk_size)
        self.page_size = page_size
        self._seen_blobs: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reference(self, ref: str) -> Reference:
        """``repo[:tag|@digest]`` on this host; a full reference must name this host.

        A bare ``sha256:..`` is looked for in every repository of the catalog.
        """
        text = ref.removeprefix("docker://")
        if is_digest(text):
            return Reference(self.host, self._repository_holding(text), text)
        first, slash, _ = text.partition("/")
        if slash and is_host(first):
            parsed = parse_reference(text)
            if parsed.host != self.host:
                raise ConfigError(f"use image {ref}", f"it names registry {parsed.host}, not {self.host}")
            return parsed
        return Reference(self.host, *split_repository(text, ref))

    def _repository_holding(self, digest: str) -> str:
        for repository in self.catalog():
            found = self.client.request(
                "HEAD",
                f"/v2/{repository}/manifests/{digest}",
                action=f"find {digest}",
                repository=repository,
                headers=ACCEPT,
                ok=(200, 404),
            )
            if found.status_code == 200:
                return repository
        raise ImageNotFound(f"find image {digest}", f"no repository on {self.host} has it")

    # -- reads -------------------------------------------------------------------------------------
    def image(self, ref: str, *, platform: str | None = None) -> Image:
        """The image ``ref`` names; an index gives its ``platform`` manifest (default linux/amd64)."""
        target = self.reference(ref)
        action = f"pull {target}"
        raw, media_type = self._manifest(target, action)
        if is_index(media_type):
            chosen = pick_platform(
                parse_model(Index, raw, f"index of {target}"), platform or self.platform, action
            )
            target = target._replace(reference=chosen.digest)
            raw, media_type = self._manifest(target, action)
        if not is_manifest(media_type):
            raise ImageError(action, f"media type {media_type} is not an image manifest")
        manifest = parse_model(Manifest, raw, f"manifest of {target}")
        sizes = {layer.digest: layer.size for layer in manifest.layers}
        blobs = RegistryBlobs(self.client, target.repository, self.stats, sizes)
        raw_config = blobs.read_blob(manifest.config.digest, f"config of {target}")
        return Image.from_raw(raw, raw_config, blobs, str(target))

    def _manifest(self, target: Reference, action: str) -> tuple[bytes, str]:
        response = self.client.read_document(
            self._manifest_path(target),
            action=action,
            repository=target.repository,
            limit=MAX_MANIFEST_BYTES,
            what=f"manifest of {target}",
            headers=ACCEPT,
        )
        raw = response.content
        verify_manifest(raw, target, response.headers.get("Docker-Content-Digest"), action)
        return raw, manifest_media_type(raw, response.headers.get("Content-Type", ""), action)

    def resolve(self, ref: str) -> str | None:
        """The digest ``ref`` points to (a HEAD), or None when the registry has no such manifest."""
        try:
            target = self.reference(ref)
        except ImageNotFound:
            return None  # a bare digest that no repository holds
        action = f"resolve {target}"
        response = self.client.request(
            "HEAD",
            self._manifest_path(target),
            action=action,
            repository=target.repository,
            headers=ACCEPT,
            ok=(200, 404),
        )
        if response.status_code == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        return digest or sha256_digest(self._manifest(target, action)[0])

    def check_access(self, ref: str, *, write: bool = False) -> None:
        """Raise unless ``ref``'s repository can be read (a missing image is fine) and, with ``write``,
        pushed to: an upload is opened and cancelled, so nothing is stored (ANA-5)."""
        target = self.reference(ref)
        self.resolve(str(target))
        if not write:
            return
        uploads = f"/v2/{target.repository}/blobs/uploads/"
        action = f"check write access to {target.name}"
        opened = self.client.request("POST", uploads, action=action, repository=target.repository, ok=(202,))
        location = opened.headers.get("Location")
        if location:
            self.client.request(
                "DELETE", location, action=action, repository=target.repository, ok=(204, 404, 405)
            )

    def tags(self, repository: str | None = None) -> list[str]:
        """``repo:tag`` for one repository, or for every repository in the catalog."""
        repositories = [repository] if repository is not None else self.catalog()
        names = [
            f"{name}:{tag}"
            for name in repositories
            for tag in self._paged(f"/v2/{name}/tags/list", "tags", f"list tags of {self.host}/{name}", name)
        ]
        return sorted(names)

    def catalog(self) -> list[str]:
        """Every repository on the registry (``/v2/_catalog``, followed page by page)."""
        return self._paged("/v2/_catalog", "repositories", f"list repositories of {self.host}", "_catalog")

    def _paged(self, path: str, key: str, action: str, repository: str) -> list[str]:
        items: list[str] = []
        url: httpx.URL | None = self.client.http.base_url.join(path).copy_merge_params(
            {"n": str(self.page_size)}
        )
        while url is not None:
            response = self.client.read_document(
                url,
                action=action,
                repository=repository,
                limit=MAX_API_DOCUMENT_BYTES,
                what="listing",
                ok=(200, 404),
            )
            if response.status_code == 404:
                return items
            body = json_object(response.content, action, what="listing", limit=MAX_API_DOCUMENT_BYTES)
            page = body.get(key)
            items.extend(str(item) for item in (page if isinstance(page, list) else []))
            url = self._next_page(response)
        return items

    def _next_page(self, response: httpx.Response) -> httpx.URL | None:
        found = _NEXT_LINK.search(response.headers.get("Link", ""))
        return None if found is None else self.client.http.base_url.join(found[1])

    def known_blob(self, ref: str, digest: str, size: int) -> RegistryBlobs | None:
        """The ``HoldsBlobs`` capability: a lazy source for blob ``digest`` if the repository ``ref``
        names already has it, of ``size`` bytes when the registry says (one HEAD; nothing is read)."""
        if not is_digest(digest):
            return None
        target = self.reference(ref)
        found = self.client.request(
            "HEAD",
            f"/v2/{target.repository}/blobs/{digest}",
            action=f"look for blob {digest} in {self.host}/{target.repository}",
            repository=target.repository,
            ok=(200, 404),
        )
        length = found.headers.get("Content-Length", "")
        if found.status_code != 200 or (length.isdigit() and int(length) != size):
            return None
        return RegistryBlobs(self.client, target.repository, self.stats, {digest: size})

    # -- writes ------------------------------------------------------------------------------------
    def write(self, image: Image, tags: Sequence[str]) -> str:
        """Every blob into each named repository, then the manifest by each tag; returns the digest."""
        for target in self._push_blobs_for(image, tags):
            self.put_manifest(str(target), image.raw_manifest, image.media_type)
        return image.digest

    def write_if(self, image: Image, tag: str, expected: str | None) -> bool:
        """Move ``tag`` to ``image`` only if it still names ``expected``, as near as distribution allows.

        The distribution API has no conditional manifest PUT (``If-Match`` is not part of it), so
        the blobs go first, then the tag is read (a HEAD) right before the PUT: a push that lands
        between that HEAD and the PUT is still overwritten, a window of one round trip.
        """
        (target,) = self._push_blobs_for(image, [tag])
        if self.resolve(str(target)) != expected:
            return False
        self.put_manifest(str(target), image.raw_manifest, image.media_type)
        return True

    def _push_blobs_for(self, image: Image, tags: Sequence[str]) -> list[Reference]:
        targets = [self.reference(tag) for tag in tags]
        if not targets:
            raise ConfigError(f"push image {image.digest}", "name at least one repository:tag to push to")
        for target in targets:
            if target.is_digest and target.reference != image.digest:
                raise DigestMismatch(f"push {target}", f"the image's digest is {image.digest}")
        for repository in dict.fromkeys(target.repository for target in targets):
            self._push_blobs(self._pusher(repository), image)
        return targets

    def put_manifest(self, ref: str, raw: bytes, media_type: str) -> str:
        """PUT a manifest or an index (whose blobs must already exist) by tag or digest; its digest."""
        target = self.reference(ref)
        digest = sha256_digest(raw)
        response = self.client.request(
            "PUT",
            self._manifest_path(target),
            action=f"push {target.name}",
            repository=target.repository,
            headers={"Content-Type": media_type},
            content=raw,
            ok=(201,),
        )
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise DigestMismatch(f"push {target}", f"the registry stored {stored}, not {digest}")
        return digest

    def _pusher(self, repository: str) -> BlobPusher:
        threshold, size = self.chunks
        return BlobPusher(
            self.client, repository, self.stats, self.progress, threshold, size, self._seen_blobs
        )

    def _push_blobs(self, pusher: BlobPusher, image: Image) -> None:
        layers: list[Layer] = list({layer.digest: layer for layer in image.layers}.values())
        if layers:
            with ThreadPoolExecutor(
                min(self.parallel, len(layers)), thread_name_prefix="registry-push"
            ) as pool:
                futures = [pool.submit(pusher.push_layer, layer) for layer in layers]
                _, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in pending:
                    future.cancel()
            for future in futures:
                if future.done() and not future.cancelled() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
        pusher.push_bytes(image.raw_config)

    def delete(self, ref: str) -> None:
        """Delete a tag (or, by digest, a manifest and all its tags).

        Distribution 2.8 deletes manifests only by digest, which drops every tag on it; so the
        other tags on that digest are put back (the blobs stay), as other backends delete one tag.
        """
        target = self.reference(ref)
        action = f"delete {ref}"  # as the caller named it, like the other stores; causes name the host
        digest = target.reference if target.is_digest else self.resolve(ref)
        if digest is None:
            raise ImageNotFound(action, f"no such image on {self.host}")
        by_digest = target._replace(reference=digest)
        siblings = [] if target.is_digest else self._other_tags_on(target, digest)
        kept = self._manifest(by_digest, action) if siblings else None
        self.client.request(
            "DELETE",
            self._manifest_path(by_digest),
            action=action,
            repository=target.repository,
            ok=(200, 202),
        )
        for tag in siblings:
            assert kept is not None
            self.put_manifest(f"{target.repository}:{tag}", *kept)

    def _other_tags_on(self, target: Reference, digest: str) -> list[str]:
        tags = [name.rsplit(":", 1)[1] for name in self.tags(target.repository)]
        return [
            tag
            for tag in tags
            if tag != target.reference and self.resolve(f"{target.repository}:{tag}") == digest
        ]

    @staticmethod
    def _manifest_path(target: Reference) -> str:
        return f"/v2/{target.repository}/manifests/{target.reference}"
