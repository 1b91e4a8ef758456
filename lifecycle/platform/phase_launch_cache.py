"""The launch cache: ``-launch-cache`` / ``CNB_LAUNCH_CACHE_DIR`` for daemon exports (§4).

A Docker daemon has no per-layer read: a layer of the previous image that the new image
reuses above a changed layer has to come out of a whole ``docker save``. The launch cache
keeps the uncompressed tar of every layer the exporter wrote, by diffID, as
``<dir>/committed/<diffID>.tar`` (the lifecycle's volume-cache layout), so the next export
takes those layers from disk instead. After each export the cache holds exactly the layers
of the new image that the export wrote or took from it; a tar is linked in (no copy) when
the cache is on the same filesystem as the export's scratch. Failures only warn: the cache
is a speed-up, never a reason to fail an export.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from lifecycle.oci.digest import is_digest
from lifecycle.oci.files import create_temp
from lifecycle.oci.image import Image
from lifecycle.oci.layer import FileBlobs, Layer
from lifecycle.oci.media import OCI_LAYER
from lifecycle.oci.models import Descriptor
from lifecycle.phases.export_layers import TarredLayer

__all__ = ["LaunchCache"]


class LaunchCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.committed = root / "committed"

    def _tar(self, diff_id: str) -> Path | None:
        return self.committed / f"{diff_id}.tar" if is_digest(diff_id) else None

    def layer(self, diff_id: str) -> Layer | None:
        """The cached tar with ``diff_id`` as an uncompressed layer, or None."""
        path = self._tar(diff_id)
        if path is None or not path.is_file():
            return None
        descriptor = Descriptor(media_type=OCI_LAYER, digest=diff_id, size=path.stat().st_size)
        return Layer(descriptor, diff_id, FileBlobs({diff_id: path}))

    def serving(self, image: Image) -> tuple[Image, int]:
        """``image`` with each layer the cache holds read from the cache; and how many that is."""
        layers = [self.layer(layer.diff_id) or layer for layer in image.layers]
        swapped = sum(1 for new, old in zip(layers, image.layers, strict=True) if new is not old)
        return dataclasses.replace(image, layers=tuple(layers)), swapped

    def commit(self, tars: Iterable[TarredLayer], image: Image, warn: Callable[[str], None]) -> int:
        """Keep the tars of ``image``'s layers (new ones linked in), drop the rest; how many were added."""
        wanted = set(image.diff_ids)
        added = 0
        try:
            self.committed.mkdir(parents=True, exist_ok=True)
            for tarred in tars:
                dest = self._tar(tarred.diff_id)
                if dest is not None and tarred.diff_id in wanted and not dest.is_file():
                    self._put(tarred.path, dest)
                    added += 1
            for path in self.committed.glob("*.tar"):
                if path.name.removesuffix(".tar") not in wanted:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            warn(f"failed to save launch cache {self.root}: {exc}")
        return added

    def _put(self, source: Path, dest: Path) -> None:
        fd, partial = create_temp(self.committed, ".tar-")
        os.close(fd)
        partial.unlink()
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, dest)
