"""``pybuild autoupdate``: rebase every app image of a fleet whose run image moved.

For each image with CNB metadata, the run image named in its label is
resolved to its current digest; if it changed, the image is rebased (manifest
only) and its tag moved with compare-and-swap, so an image rebased from a
stale read never lands. One image failing never stops the rest. Images opt out
with the label ``io.pybuild.autoupdate=false`` or per repository in a policy
file (Cloud Run's ``--clear-base-image``).
"""

from __future__ import annotations

import datetime
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lifecycle.backends.base import SwapsTags, repository_of
from lifecycle.errors import ConfigError, PybuildError
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.phases.rebase import RebaseInputs, Rebaser
from lifecycle.platform.rebase import find_run_image, run_image_candidates
from lifecycle.platform.targets import open_target

__all__ = ["OPT_OUT_LABEL", "Outcome", "Policy", "autoupdate", "load_policy"]

OPT_OUT_LABEL = "io.pybuild.autoupdate"
PREVIOUS_BASE = "io.pybuild.rebase.previous-base"
REBASED_AT = "io.pybuild.rebase.time"


@dataclass(frozen=True)
class Policy:
    """Which images may be rebased: repositories opted out, and whether force is allowed."""

    opted_out: frozenset[str] = frozenset()
    force: bool = False


def load_policy(path: Path | None) -> Policy:
    """A TOML policy: ``[[repository]] name = "..." autoupdate = false`` entries, ``force = bool``."""
    if path is None:
        return Policy()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("read autoupdate policy", f"{path}: {exc}") from None
    entries = raw.get("repository", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise ConfigError(
            "read autoupdate policy", f"{path}: repository must be a list of tables with a name"
        )
    out = frozenset(str(e["name"]) for e in entries if e.get("autoupdate") is False)
    return Policy(opted_out=out, force=bool(raw.get("force", False)))


@dataclass
class Outcome:
    image: str
    action: str  # rebased | would-rebase | up-to-date | skipped | ignored | conflict | failed
    old_base: str = ""
    new_base: str = ""
    reason: str = ""
    seconds: float = 0.0
    digest: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _Run:
    policy: Policy
    dry_run: bool
    now: Callable[[], str] = field(default=lambda: _utc_now())
    # One resolution of each run image per pass: a fleet shares a handful of bases.
    _bases: dict[tuple[str, ...], tuple[str, Image]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _base(self, app: Image) -> tuple[str, Image]:
        key = tuple(run_image_candidates(app))
        with self._lock:
            if key not in self._bases:
                name, _, base = find_run_image(app)
                self._bases[key] = (name, base)
            return self._bases[key]

    def update(self, ref: str) -> Outcome:
        started = time.monotonic()
        try:
            outcome = self._update(ref)
        except PybuildError as exc:
            outcome = Outcome(ref, "failed", reason=str(exc))
        outcome.seconds = round(time.monotonic() - started, 4)
        return outcome

    def _update(self, ref: str) -> Outcome:
        target = open_target(ref)
        app = target.store.image(target.name)
        if app.labels.get(OPT_OUT_LABEL) == "false":
            return Outcome(ref, "skipped", reason=f"opted out ({OPT_OUT_LABEL}=false)")
        if repository_of(target.name) in self.policy.opted_out:
            return Outcome(ref, "skipped", reason="opted out by policy")
        if "io.buildpacks.lifecycle.metadata" not in app.labels:
            return Outcome(ref, "ignored", reason="no CNB metadata (not an app image)")
        name, base = self._base(app)
        inputs = RebaseInputs(app, base, name, force=self.policy.force)
        result = Rebaser(inputs).rebase()
        outcome = Outcome(
            ref, "up-to-date", result.old_base_digest, result.new_base_digest, digest=app.digest
        )
        if result.up_to_date or self.dry_run:
            outcome.action = "up-to-date" if result.up_to_date else "would-rebase"
            return outcome
        audited = mutate.set_annotations(
            result.image, {PREVIOUS_BASE: result.old_base_digest, REBASED_AT: self.now()}
        )
        if not _swap(target.store, audited, target.name, app.digest):
            return Outcome(ref, "conflict", reason="the tag moved while rebasing; the next run retries")
        outcome.action, outcome.digest = "rebased", audited.digest
        return outcome


def _swap(store: object, image: Image, tag: str, expected: str) -> bool:
    if isinstance(store, SwapsTags):
        return store.write_if(image, tag, expected)
    if store.resolve(tag) != expected:  # type: ignore[attr-defined]
        return False
    store.write(image, [tag])  # type: ignore[attr-defined]
    return True


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def autoupdate(
    refs: Iterable[str], policy: Policy, *, dry_run: bool = False, concurrency: int = 4
) -> list[Outcome]:
    """Rebase each image whose base moved; outcomes in the order of ``refs``."""
    run = _Run(policy, dry_run)
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(pool.map(run.update, refs))
