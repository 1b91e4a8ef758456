"""``pybuild rebase``: resolve the app, its run image and the new base; write the result.

The run image comes from ``--run-image``, else from the label (``runImage.image``,
then its mirrors, then ``stack.runImage``), resolved to its *current* digest
(REB-1). The tag moves only after the whole rebased image is stored, and only if it still names
the image the rebase read: a build that lands on the tag meanwhile is never undone. Then the
rebase starts once more from the new image (when it read the app from that tag), else it fails
with the rebase exit code (72). The swap is atomic on the local store and OCI layouts; on a
registry and the Docker daemon, which have no conditional write, the tag is read again just
before it is written, so only a write landing inside that last round trip can still be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomli_w

from lifecycle.backends.base import BlobStats, ImageStore, SwapsTags
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


@dataclass(frozen=True)
class _Plan:
    """One attempt: what to point the tag at (None: leave it as it is), and what was read."""

    image: Image | None
    digest: str
    result: RebaseResult | None
    read_from: tuple[Target, ...]


def rebase(opts: RebaseOptions) -> RebaseReport:
    target = open_target(opts.image, publish=opts.publish)
    # Reading the app from the tag itself, a retry rebases whatever landed there; reading it
    # from --previous-image, a retry would only rebase the same app over the newer build.
    retries = 0 if opts.previous_image else 1
    while True:
        expected = target.store.resolve(target.name)  # before the app is read: a move is seen
        plan = _plan(opts)
        digest = plan.digest if plan.image is None else _swap(target.store, plan.image, target.name, expected)
        if digest is not None:
            break
        if retries == 0:
            now = target.store.resolve(target.name)
            raise RebaseFailed(
                f"write {target.display}",
                f"the tag moved to {now or 'nothing'} while rebasing (it named {expected or 'nothing'}); "
                "it was left as it is, run the rebase again to rebase the new image",
            )
        retries -= 1
    if opts.report and plan.result is not None:
        _write_report(opts.report, target.display, digest, plan.result)
    return RebaseReport(target.display, digest, plan.result, _layer_bytes_read(*plan.read_from, target))


def _plan(opts: RebaseOptions) -> _Plan:
    source, app = _open_image(opts.previous_image or opts.image, "read app image", opts.publish)
    if opts.base_image:
        base_target, base = _open_image(opts.base_image, "read base image")
        image = adopt(app, base, opts.base_image, force=opts.force)
        return _Plan(image, image.digest, None, (source, base_target))
    if opts.run_image:
        name = opts.run_image
        base_target, base = _open_image(name, "read run image")
    else:
        name, base_target, base = find_run_image(app)
    result = Rebaser(RebaseInputs(app, base, name, opts.force, bool(opts.run_image))).rebase()
    if not result.up_to_date:
        return _Plan(result.image, result.image.digest, result, (source, base_target))
    return _Plan(app if opts.previous_image else None, app.digest, result, (source, base_target))


def _swap(store: ImageStore, image: Image, tag: str, expected: str | None) -> str | None:
    """Point ``tag`` at ``image`` only if it still names ``expected`` (what ``resolve`` gave).

    The digest the store reports for the write, or None when the tag had moved.
    """
    if isinstance(store, SwapsTags):
        return image.digest if store.write_if(image, tag, expected) else None
    if store.resolve(tag) != expected:
        return None
    return store.write(image, [tag])


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
