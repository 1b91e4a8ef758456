"""``pybuild rebase`` never undoes a build that landed on the tag while it ran (REB-1, compare and swap).

The tag is resolved before the app is read and swapped only if it still names that digest; a
rebase that read the app from the tag starts once more from the new build, else it fails (72).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.images import random_image, random_layer

from lifecycle.backends.base import ImageStore, SwapsTags
from lifecycle.backends.layout import Layout
from lifecycle.backends.memory import MemoryStore
from lifecycle.cnb.labels import LIFECYCLE_METADATA_LABEL, LayerSha, LifecycleMetadata, RunImageForRebase
from lifecycle.errors import ExitCode
from lifecycle.oci import mutate
from lifecycle.oci.image import Image
from lifecycle.phases import rebase as rebase_phase
from lifecycle.platform import rebase as platform_rebase
from lifecycle.platform.rebase import RebaseOptions, rebase
from lifecycle.platform.targets import Target

DISTRO = {"io.buildpacks.base.distro.name": "debian", "io.buildpacks.base.distro.version": "12"}
APP = "app:latest"


def _base(seed: int) -> Image:
    return mutate.set_labels(random_image(layers=2, seed=seed), {**DISTRO, "io.buildpacks.base.id": "base"})


def _app_on(run: Image, seed: int) -> Image:
    layers = [random_layer(seed=seed)]
    meta = LifecycleMetadata(
        app=tuple(LayerSha(sha=layer.diff_id) for layer in layers),
        run_image=RunImageForRebase(
            top_layer=run.diff_ids[-1], reference=f"acme/run@{run.digest}", image="acme/run:1"
        ),
    )
    image = mutate.append_layers(run, layers)
    image = mutate.set_labels(image, {LIFECYCLE_METADATA_LABEL: meta.model_dump_json(by_alias=True)})
    return mutate.edit_config(image, lambda c: c.model_copy(update={"env": ["CNB_PLATFORM_API=0.15"]}))


@pytest.fixture(params=["compare-and-swap", "read-then-write"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageStore:
    """A layout (atomic ``write_if``) and a store without it (a read right before the write)."""
    chosen: ImageStore = (
        Layout(tmp_path / "layout", create=True) if request.param == "compare-and-swap" else MemoryStore()
    )
    assert isinstance(chosen, SwapsTags) == (request.param == "compare-and-swap")
    old, new = _base(1), _base(2)
    chosen.write(old, ["acme/run:1"])
    chosen.write(new, ["acme/run:2"])
    chosen.write(_app_on(old, 10), [APP])
    chosen.write(_app_on(old, 11), ["app:previous"])
    monkeypatch.setattr(
        platform_rebase, "open_target", lambda ref, **kw: Target(chosen, _tag(ref), ref, "test")
    )
    return chosen


def _tag(ref: str) -> str:
    return ref if ":" in ref else f"{ref}:latest"


def _land_builds(monkeypatch: pytest.MonkeyPatch, store: ImageStore, times: int) -> list[Image]:
    """The first ``times`` rebases each see a new build land on the tag before they write."""
    original: Callable[[rebase_phase.Rebaser], rebase_phase.RebaseResult] = rebase_phase.Rebaser.rebase
    landed: list[Image] = []

    def rebase_while_a_build_lands(self: rebase_phase.Rebaser) -> rebase_phase.RebaseResult:
        result = original(self)
        if len(landed) < times:
            landed.append(_app_on(store.image("acme/run:1"), 20 + len(landed)))
            store.write(landed[-1], [APP])
        return result

    monkeypatch.setattr(rebase_phase.Rebaser, "rebase", rebase_while_a_build_lands)
    return landed


def test_with_no_build_landing_the_rebase_writes(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _land_builds(monkeypatch, store, times=0)
    report = rebase(RebaseOptions("app", run_image="acme/run:2"))
    assert store.resolve(APP) == report.digest
    assert store.image(APP).diff_ids[:2] == store.image("acme/run:2").diff_ids


def test_a_build_landing_once_is_rebased_instead(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    landed = _land_builds(monkeypatch, store, times=1)
    report = rebase(RebaseOptions("app", run_image="acme/run:2"))
    result = store.image(APP)
    assert report.digest == result.digest == store.resolve(APP)
    assert result.diff_ids[:2] == store.image("acme/run:2").diff_ids
    assert result.diff_ids[-1] == landed[0].diff_ids[-1], "the app layer is the landed build's"


def test_a_build_landing_on_every_try_is_left_in_place(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed = _land_builds(monkeypatch, store, times=5)
    with pytest.raises(
        rebase_phase.RebaseFailed, match=r"the tag moved to sha256:\w+ while rebasing"
    ) as raised:
        rebase(RebaseOptions("app", run_image="acme/run:2"))
    assert raised.value.exit_code == ExitCode.REBASE
    assert "\n" not in str(raised.value)
    assert len(landed) == 2, "one retry, then a refusal"
    assert store.resolve(APP) == landed[-1].digest


def test_with_a_previous_image_there_is_no_retry(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    landed = _land_builds(monkeypatch, store, times=5)
    with pytest.raises(rebase_phase.RebaseFailed, match="moved"):
        rebase(RebaseOptions("app", run_image="acme/run:2", previous_image="app:previous"))
    assert len(landed) == 1
    assert store.resolve(APP) == landed[0].digest
