"""``pybuild rebase``: resolve the app, its run image and the new base; write the result.

The run image comes from ``--run-image``, else from the label (``runImage.image``,
then its mirrors, then ``stack.runImage``), resolved to its *current* digest
(REB-1). The tag moves only after the whole rebased image is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomli_w

from lifecycle.backends.base import BlobStats
from lifecycle.errors import ImageNotFound, PybuildError
from lifecycle.oci.image import Image
from lifecycle.phases.adopt import adopt
from lifecycle.phases.rebase import RebaseFailed, RebaseInputs, Rebaser, RebaseResult, read_metadata
from lifecycle.platform.targets import Target, open_target

__all__ = ["RebaseOptions", "RebaseReport", "find_run_image", "rebase", "run_image_candidates"]


@dataclass(frozen=True)
class RebaseOptions:
    image: str
    run_image: str | None = None
    previous_image: str | None = None
    base_image: str | None = None
    force: bool = False
    report: Path | None = None
    publish: bool = False


@dataclass(frozen=True)
class RebaseReport:
    image: str
    digest: str
    result: RebaseResult | None
    layer_bytes_read: int


def _layer_bytes_read(*targets: Target) -> int:
    stats = [getattr(getattr(t.store, "layout", t.store), "stats", None) for t in targets]
    return sum(s.layer_bytes_read for s in stats if isinstance(s, BlobStats))


def _open_image(ref: str, action: str, publish: bool = False) -> tuple[Target, Image]:
    target = open_target(ref, publish=publish)
    try:
        return target, target.store.image(target.name)
    except ImageNotFound as exc:
        raise RebaseFailed(action, exc.cause) from None
    except PybuildError as exc:
        raise RebaseFailed(action, str(exc)) from None


def run_image_candidates(app: Image) -> list[str]:
    metadata = read_metadata(app)
    names = [metadata.run_image.image, *metadata.run_image.mirrors]
    if metadata.stack is not None:
        names += [metadata.stack.run_image.image, *metadata.stack.run_image.mirrors]
    return [n for n in names if n]


def find_run_image(app: Image) -> tuple[str, Target, Image]:
    candidates = run_image_candidates(app)
    for name in candidates:
        try:
            target, image = _open_image(name, "find run image")
            return name, target, image
        except RebaseFailed:
            continue
    raise RebaseFailed(
        "find run image", f"none of {candidates or ['(no run image in the label)']} can be read"
    )


def rebase(opts: RebaseOptions) -> RebaseReport:
    target = open_target(opts.image, publish=opts.publish)
    source, app = _open_image(opts.previous_image or opts.image, "read app image", opts.publish)
    if opts.base_image:
        base_target, base = _open_image(opts.base_image, "read base image")
        image = adopt(app, base, opts.base_image, force=opts.force)
        digest = target.store.write(image, [target.name])
        return RebaseReport(target.display, digest, None, _layer_bytes_read(source, base_target, target))
    if opts.run_image:
        name = opts.run_image
        base_target, base = _open_image(name, "read run image")
    else:
        name, base_target, base = find_run_image(app)
    result = Rebaser(RebaseInputs(app, base, name, opts.force, bool(opts.run_image))).rebase()
    digest = app.digest
    if not result.up_to_date:
        digest = target.store.write(result.image, [target.name])
    elif opts.previous_image:
        digest = target.store.write(app, [target.name])
    if opts.report:
        _write_report(opts.report, target.display, digest, result)
    return RebaseReport(target.display, digest, result, _layer_bytes_read(source, base_target, target))


def _write_report(path: Path, tag: str, digest: str, result: RebaseResult) -> None:
    """report.toml (REB-8, EXP-13)."""
    report = {
        "image": {
            "tags": [tag],
            "digest": digest,
            "manifest-size": len(result.image.raw_manifest),
        }
    }
    path.write_text(tomli_w.dumps(report))
