"""Trial search for detect (DET-8, DET-9): many buildpacks with `[[or]]` alternatives stay tractable.

The full product of alternatives grows as alternatives^buildpacks; the search skips whole
branches that cannot resolve yet must still pick the trial the full product picks first.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import BuildpackDescriptor, BuildpackInfo, DetectPlan, OrderEntry, OrderGroup, PlanSections
from lifecycle.cnb.plan import Provide, Require
from lifecycle.errors import ExitCode, PybuildError
from lifecycle.phases import resolve as resolve_module
from lifecycle.phases.resolve import Candidate, DetectResult, DetectStatus, Resolution, resolve


def _sections(requires: Sequence[str] = (), provides: Sequence[str] = ()) -> PlanSections:
    return PlanSections(
        requires=tuple(Require(name=name) for name in requires),
        provides=tuple(Provide(name=name) for name in provides),
    )


def _plan(*alternatives: PlanSections) -> DetectPlan:
    top, *rest = alternatives
    return DetectPlan(requires=top.requires, provides=top.provides, or_=tuple(rest))


def _descriptor(name: str) -> BuildpackDescriptor:
    return BuildpackDescriptor(api=ApiVersion(0, 10), buildpack=BuildpackInfo(id=name, version="1"))


def _resolve(plans: dict[str, DetectPlan], optional: frozenset[str] = frozenset()) -> Resolution:
    """One group of ``plans`` (in order), every buildpack passing with its plan."""
    group = OrderGroup(
        group=tuple(OrderEntry(id=name, version="1", optional=name in optional) for name in plans)
    )
    return resolve(
        [group],
        lambda entry: _descriptor(entry.id),
        lambda descriptor: DetectResult(DetectStatus.PASS, plans[descriptor.buildpack.id]),
    )


def test_forty_buildpacks_whose_last_trial_is_the_only_one_that_resolves() -> None:
    """DET-8: 3^40 trials in full; the only one that resolves is the very last of them."""
    plans = {
        f"bp{i:02}": _plan(
            _sections(requires=[f"never-{i}"]),  # nobody provides it
            _sections(provides=[f"orphan-{i}"]),  # nobody requires it
            _sections(requires=[f"dep-{i}"], provides=[f"dep-{i}"]),
        )
        for i in range(40)
    }
    resolution = _resolve(plans)
    assert [element.id for element in resolution.group] == list(plans)
    assert [entry.requires[0].name for entry in resolution.plan.entries] == [f"dep-{i}" for i in range(40)]


def test_thirty_optional_buildpacks_that_all_drop_out() -> None:
    """DET-9: an optional buildpack is dropped only on its last alternative; 2^30 trials in full."""
    plans = {
        f"opt{i:02}": _plan(_sections(requires=[f"first-{i}"]), _sections(requires=[f"last-{i}"]))
        for i in range(30)
    }
    plans["web"] = _plan(_sections(requires=["web"], provides=["web"]))
    resolution = _resolve(plans, optional=frozenset(name for name in plans if name != "web"))
    assert [element.id for element in resolution.group] == ["web"]


def test_a_chain_across_forty_buildpacks_picks_the_first_alternative_that_links() -> None:
    """Each buildpack provides for the next only on its third alternative; the first two fail later."""
    plans = {}
    for i in range(40):
        need = [f"link-{i - 1}"] if i else []
        plans[f"bp{i:02}"] = _plan(
            _sections(requires=need, provides=[f"dead-end-{i}"]),
            _sections(requires=need, provides=[f"cul-de-sac-{i}"]),
            _sections(requires=need, provides=[f"link-{i}"]),
        )
    plans["last"] = _plan(_sections(requires=["link-39"]))
    resolution = _resolve(plans)
    assert len(resolution.group) == 41
    assert [entry.requires[0].name for entry in resolution.plan.entries] == [f"link-{i}" for i in range(40)]


def test_a_search_that_would_not_end_stops_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trial fails only at the last buildpack, which needs both of the first one's alternatives."""
    monkeypatch.setattr(resolve_module, "MAX_TRIAL_STEPS", 2_000)
    plans = {"first": _plan(_sections(provides=["p"]), _sections(provides=["q"]))}
    for i in range(40):
        plans[f"mid{i:02}"] = _plan(
            _sections(requires=[f"a-{i}"], provides=[f"a-{i}"]),
            _sections(requires=[f"b-{i}"], provides=[f"b-{i}"]),
        )
    plans["last"] = _plan(_sections(requires=["p", "q"]))
    with pytest.raises(
        PybuildError, match=r"gave up after trying 2000 plan alternatives of first@1 \(2\)"
    ) as info:
        _resolve(plans)
    assert info.value.exit_code == ExitCode.DETECT_OTHER
    assert "\n" not in str(info.value) and "fewer [[or]] alternatives" in str(info.value)


def _first_by_full_product(passed: list[tuple[Candidate, DetectPlan]]) -> tuple[object, ...] | None:
    """The first trial that resolves, the way DET-8 defines it: every combination, in order."""
    columns = [resolve_module._options(candidate, plan) for candidate, plan in passed]
    for trial in itertools.product(*columns):
        resolved = resolve_module._resolve_trial(trial)
        if resolved is not None:
            return resolved
    return None


def _first_by_search(passed: list[tuple[Candidate, DetectPlan]]) -> tuple[object, ...] | None:
    for trial in resolve_module._trials(passed):
        resolved = resolve_module._resolve_trial(trial)
        if resolved is not None:
            return resolved
    return None


@pytest.mark.parametrize("seed", range(8))
def test_the_search_picks_the_same_trial_as_the_full_product(seed: int) -> None:
    """Random small groups (optional members, shared names): the pruned search agrees every time."""
    rng = random.Random(seed)
    names = ["a", "b", "c", "d"]
    agreed = resolved = 0
    for _ in range(250):
        passed = []
        for index in range(rng.randint(1, 5)):
            alternatives = [
                _sections(
                    requires=rng.sample(names, rng.randint(0, 2)),
                    provides=rng.sample(names, rng.randint(0, 2)),
                )
                for _ in range(rng.randint(1, 3))
            ]
            entry = OrderEntry(id=f"bp{index}", version="1", optional=rng.random() < 0.4)
            passed.append((Candidate(entry, _descriptor(entry.id)), _plan(*alternatives)))
        expected = _first_by_full_product(passed)
        assert _first_by_search(passed) == expected
        agreed += 1
        resolved += expected is not None
    assert agreed == 250 and 0 < resolved < 250  # both outcomes were exercised
