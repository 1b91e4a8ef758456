"""Plan resolution for detect: DET-1, 2, 3, 6, 8, 9, 10, 12, 13, 14, 15.

Buildpacks are named by letter; an order group is written as `"E O? F"` (`?` marks optional,
`X@2` picks version 2). Every buildpack passes with an empty plan unless a case says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from lifecycle.api import ApiVersion
from lifecycle.cnb import (
    BuildpackDescriptor,
    BuildpackInfo,
    DetectPlan,
    GroupElement,
    OrderEntry,
    OrderGroup,
    PlanEntry,
    PlanProvider,
    PlanSections,
    PlanToml,
    Provide,
    Require,
    SystemBuildpacks,
    SystemOrder,
    SystemToml,
)
from lifecycle.errors import ConfigError, DetectFailed, ExitCode
from lifecycle.phases.resolve import (
    DetectResult,
    DetectStatus,
    Resolution,
    apply_system,
    expand_order,
    resolve,
)

PASS, FAIL, ERROR, SKIP = DetectStatus.PASS, DetectStatus.FAIL, DetectStatus.ERROR, DetectStatus.SKIP


def entries(group: str) -> tuple[OrderEntry, ...]:
    """`"A B?@2"`-style text as order entries."""
    parsed = []
    for word in group.split():
        optional = "?" in word
        name, _, version = word.replace("?", "").partition("@")
        parsed.append(OrderEntry(id=name, version=version or "1", optional=optional))
    return tuple(parsed)


def order(*groups: str) -> tuple[OrderGroup, ...]:
    return tuple(OrderGroup(group=entries(group)) for group in groups)


def descriptor(ref: str, *groups: str, homepage: str | None = None) -> BuildpackDescriptor:
    name, _, version = ref.partition("@")
    info = BuildpackInfo(id=name, version=version or "1", homepage=homepage)
    return BuildpackDescriptor(api=ApiVersion(0, 12), buildpack=info, order=order(*groups))


def sections(requires: str = "", provides: str = "") -> PlanSections:
    return PlanSections(
        requires=tuple(Require(name=name) for name in requires.split()),
        provides=tuple(Provide(name=name) for name in provides.split()),
    )


def plan(requires: str = "", provides: str = "", *alternatives: PlanSections) -> DetectPlan:
    top = sections(requires, provides)
    return DetectPlan(requires=top.requires, provides=top.provides, or_=alternatives)


@dataclass
class Catalogue:
    """Buildpacks by id@version (declared ones, else a plain one made on demand) and a recording detect."""

    declared: Mapping[str, BuildpackDescriptor] = field(default_factory=dict)
    outcomes: Mapping[str, DetectStatus | DetectResult] = field(default_factory=dict)
    detected: list[str] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)

    def lookup(self, entry: OrderEntry) -> BuildpackDescriptor:
        self.looked_up.append(entry.ref)
        return self.declared.get(entry.ref) or descriptor(entry.ref)

    def detect(self, found: BuildpackDescriptor) -> DetectResult:
        self.detected.append(found.ref)
        outcome = self.outcomes.get(found.buildpack.id, PASS)
        return outcome if isinstance(outcome, DetectResult) else DetectResult(outcome)

    def resolve(self, groups: Sequence[OrderGroup], system: SystemToml | None = None) -> Resolution:
        return resolve(groups, self.lookup, self.detect, system=system)


def declare(*descriptors: BuildpackDescriptor) -> dict[str, BuildpackDescriptor]:
    return {found.ref: found for found in descriptors}


def passes(result: Resolution) -> list[str]:
    return [element.id for element in result.group]


O_EXAMPLE = declare(descriptor("O", "A B", "C D"))


@dataclass(frozen=True)
class Case:
    spec: str
    groups: tuple[str, ...]
    winner: str
    declared: Mapping[str, BuildpackDescriptor] = field(default_factory=dict)
    outcomes: Mapping[str, DetectStatus | DetectResult] = field(default_factory=dict)


WINNING_GROUP_CASES = [
    Case("DET-1 [E,O,F] first expansion wins", ("E O F",), "E A B F", O_EXAMPLE),
    Case("DET-1 [E,O,F] falls through to E,C,D,F", ("E O F",), "E C D F", O_EXAMPLE, {"A": FAIL}),
    Case(
        "DET-1 two composites in sequence: cross product, last varies fastest",
        ("P Q",),
        "A2 Q2",
        declare(descriptor("P", "A1", "A2"), descriptor("Q", "Q1", "Q2")),
        {"A1": FAIL, "Q1": FAIL},
    ),
    Case(
        "DET-1 nested composites expand depth-first",
        ("O",),
        "B C",
        declare(descriptor("O", "P C"), descriptor("P", "A", "B")),
        {"A": FAIL},
    ),
    Case("DET-2 failing optional buildpack is dropped", ("A B? C",), "A C", outcomes={"B": FAIL}),
    Case("DET-2 erroring optional buildpack is dropped", ("A B? C",), "A C", outcomes={"B": ERROR}),
    Case(
        "DET-2 optional composite: tried with, then without",
        ("E O? F",),
        "E F",
        O_EXAMPLE,
        {"A": FAIL, "C": FAIL},
    ),
    Case(
        "DET-2 failing required composite fails the group",
        ("E O F", "G"),
        "G",
        O_EXAMPLE,
        {"A": FAIL, "C": FAIL},
    ),
    Case("DET-3 repeated ID skipped, first wins", ("A B A@2",), "A B"),
    Case("DET-3 repeated ID inside a composite skipped", ("A O",), "A B", declare(descriptor("O", "A@2 B"))),
    Case("DET-6 required failure moves to the next group", ("A B", "C"), "C", outcomes={"B": FAIL}),
    Case(
        "DET-6 a group of failed optionals does not pass",
        ("A? B?", "C"),
        "C",
        outcomes={"A": FAIL, "B": FAIL},
    ),
    Case("DET-12 skipped buildpack leaves the group", ("A B",), "A", outcomes={"B": SKIP}),
    Case("DET-12 all-skipped group moves on", ("A B", "C"), "C", outcomes={"A": SKIP, "B": SKIP}),
]


@pytest.mark.parametrize("case", WINNING_GROUP_CASES, ids=lambda case: case.spec)
def test_winning_group(case: Case) -> None:
    catalogue = Catalogue(declared=case.declared, outcomes=case.outcomes)
    assert passes(catalogue.resolve(order(*case.groups))) == case.winner.split()


def test_det1_expansion_of_the_spec_example_yields_both_groups_in_order() -> None:
    catalogue = Catalogue(declared=O_EXAMPLE)
    expanded = [[c.entry.id for c in group] for group in expand_order(order("E O F"), catalogue.lookup)]
    assert expanded == [["E", "A", "B", "F"], ["E", "C", "D", "F"]]


def test_det2_optional_composite_adds_a_group_without_it() -> None:
    catalogue = Catalogue(declared=O_EXAMPLE)
    expanded = [[c.entry.id for c in group] for group in expand_order(order("E O? F"), catalogue.lookup)]
    assert expanded == [["E", "A", "B", "F"], ["E", "C", "D", "F"], ["E", "F"]]


def test_det3_each_buildpack_detects_once_and_later_groups_never_run() -> None:
    catalogue = Catalogue(outcomes={"B": FAIL})
    resolution = catalogue.resolve(order("A B", "A C", "D"))
    assert passes(resolution) == ["A", "C"]
    assert catalogue.detected == ["A@1", "B@1", "C@1"]
    assert "D@1" not in catalogue.looked_up


def test_det3_same_id_different_version_is_a_different_detect() -> None:
    catalogue = Catalogue(outcomes={"B": FAIL})
    catalogue.resolve(order("A B", "A@2"))
    assert catalogue.detected == ["A@1", "B@1", "A@2"]


def test_det15_every_member_of_a_failing_group_runs_so_errors_count() -> None:
    catalogue = Catalogue(outcomes={"A": FAIL, "B": ERROR})
    with pytest.raises(DetectFailed) as caught:
        catalogue.resolve(order("A B"))
    assert catalogue.detected == ["A@1", "B@1"]
    assert caught.value.exit_code == ExitCode.DETECT_ERROR


@pytest.mark.parametrize(
    ("groups", "outcomes", "exit_code"),
    [
        (("A", "B"), {"A": FAIL, "B": FAIL}, 20),
        (("A", "B"), {"A": FAIL, "B": ERROR}, 21),
        (("A? B",), {"A": ERROR, "B": FAIL}, 21),
        (("A",), {"A": DetectResult(PASS, plan(provides="x"))}, 20),
        ((), {}, 20),
    ],
    ids=["all-failed", "one-errored", "optional-errored", "plan-unresolved", "empty-order"],
)
def test_det15_exit_20_without_errors_21_with(
    groups: tuple[str, ...], outcomes: Mapping[str, DetectStatus | DetectResult], exit_code: int
) -> None:
    with pytest.raises(DetectFailed) as caught:
        Catalogue(outcomes=outcomes).resolve(order(*groups))
    assert caught.value.exit_code == exit_code
    assert caught.value.errored is (exit_code == ExitCode.DETECT_ERROR)


def test_det15_message_names_the_errored_buildpacks() -> None:
    with pytest.raises(DetectFailed, match=r"errored: B@1"):
        Catalogue(outcomes={"B": ERROR}).resolve(order("A B"))


def resolved(outcomes: Mapping[str, DetectResult], group: str) -> Resolution:
    return Catalogue(outcomes=outcomes).resolve(order(group))


def test_det9_require_met_by_an_earlier_provider_resolves_with_one_plan_entry() -> None:
    resolution = resolved(
        {"A": DetectResult(PASS, plan(provides="node")), "B": DetectResult(PASS, plan("node"))}, "A B"
    )
    assert resolution.plan == PlanToml(
        entries=(PlanEntry(providers=(PlanProvider(id="A", version="1"),), requires=(Require(name="node"),)),)
    )


def test_det9_requires_before_provides_fails_the_trial() -> None:
    outcomes = {"A": DetectResult(PASS, plan("node")), "B": DetectResult(PASS, plan(provides="node"))}
    with pytest.raises(DetectFailed) as caught:
        resolved(outcomes, "A B")
    assert caught.value.exit_code == ExitCode.DETECT_FAIL


def test_det9_a_buildpack_may_provide_what_it_requires() -> None:
    resolution = resolved({"A": DetectResult(PASS, plan("node", "node"))}, "A")
    assert [entry.providers[0].id for entry in resolution.plan.entries] == ["A"]


def test_det9_provide_without_require_fails_a_required_buildpack() -> None:
    with pytest.raises(DetectFailed):
        resolved({"A": DetectResult(PASS, plan(provides="node")), "B": DetectResult(PASS)}, "A B")


def test_det9_provide_without_require_drops_an_optional_buildpack() -> None:
    resolution = resolved({"A": DetectResult(PASS, plan(provides="node"))}, "A? B")
    assert passes(resolution) == ["B"]
    assert resolution.considered == ("A@1", "B@1")


def test_det9_optional_removal_repeats_until_stable() -> None:
    outcomes = {
        "B": DetectResult(PASS, plan(provides="b")),
        "A": DetectResult(PASS, plan("b missing")),
        "C": DetectResult(PASS),
    }
    # A's require of "missing" drops A; then B's "b" has no requirer and B drops too.
    assert passes(resolved(outcomes, "B? A? C")) == ["C"]


def test_det9_optional_buildpack_is_removable_only_on_its_last_alternative() -> None:
    outcomes = {"A": DetectResult(PASS, plan("", "unused", sections())), "B": DetectResult(PASS)}
    # With its first alternative A breaks a rule but is not dropped: that trial fails, and the
    # second alternative keeps A in the group.
    assert passes(resolved(outcomes, "A? B")) == ["A", "B"]


def test_det8_trials_are_depth_first_last_buildpack_varying_fastest() -> None:
    outcomes = {
        "A": DetectResult(PASS, plan("", "p1", sections(provides="p2"))),
        "B": DetectResult(PASS, plan("p2", "", sections("p1"))),
    }
    # (A.top, B.top) fails; (A.top, B.or) resolves on p1, before (A.or, B.top) could on p2.
    assert [entry.requires[0].name for entry in resolved(outcomes, "A B").plan.entries] == ["p1"]


def test_det8_or_alternative_picked_when_the_top_level_pair_fails() -> None:
    outcomes = {
        "A": DetectResult(PASS, plan("", "node", sections(provides="yarn"))),
        "B": DetectResult(PASS, plan("yarn")),
    }
    resolution = resolved(outcomes, "A B")
    assert [entry.requires[0].name for entry in resolution.plan.entries] == ["yarn"]


def test_det10_entry_providers_are_all_providers_before_the_last_require() -> None:
    outcomes = {
        "A": DetectResult(PASS, plan(provides="x")),
        "B": DetectResult(PASS, DetectPlan(requires=(Require(name="x", metadata={"from": "B"}),))),
        "C": DetectResult(PASS, plan(provides="x")),
        "D": DetectResult(PASS, DetectPlan(requires=(Require(name="x", metadata={"from": "D"}),))),
    }
    (entry,) = resolved(outcomes, "A B C D").plan.entries
    assert [provider.id for provider in entry.providers] == ["A", "C"]
    assert [require.metadata for require in entry.requires] == [{"from": "B"}, {"from": "D"}]


def test_det10_entries_follow_first_mention_and_carry_versions() -> None:
    outcomes = {"A": DetectResult(PASS, plan("b a", "b a"))}
    resolution = Catalogue(outcomes=outcomes).resolve(order("A@3"))
    assert [(e.requires[0].name, e.providers[0].version) for e in resolution.plan.entries] == [
        ("b", "3"),
        ("a", "3"),
    ]


def test_det14_group_elements_carry_api_and_homepage_and_drop_optional() -> None:
    catalogue = Catalogue(declared=declare(descriptor("A", homepage="https://a.test")))
    resolution = catalogue.resolve(order("A? B"))
    assert resolution.group == (
        GroupElement(id="A", version="1", api=ApiVersion(0, 12), homepage="https://a.test"),
        GroupElement(id="B", version="1", api=ApiVersion(0, 12)),
    )


def system(pre: str = "", post: str = "") -> SystemToml:
    return SystemToml(
        system=SystemOrder(
            pre=SystemBuildpacks(buildpacks=entries(pre)), post=SystemBuildpacks(buildpacks=entries(post))
        )
    )


def test_det13_system_buildpacks_wrap_every_group_unless_already_present() -> None:
    wrapped = apply_system(order("A B", "S1 C"), system(pre="S1 S2?", post="P"))
    assert [[(e.id, e.optional) for e in g.group] for g in wrapped] == [
        [("S1", False), ("S2", True), ("A", False), ("B", False), ("P", False)],
        [("S2", True), ("S1", False), ("C", False), ("P", False)],
    ]


def test_det13_resolve_applies_system_toml() -> None:
    catalogue = Catalogue(outcomes={"S2": FAIL})
    assert passes(catalogue.resolve(order("A"), system(pre="S1 S2?", post="P"))) == ["S1", "A", "P"]


def test_composite_that_contains_itself_is_a_detect_error_not_a_hang() -> None:
    catalogue = Catalogue(declared=declare(descriptor("O", "A P"), descriptor("P", "O")))
    with pytest.raises(ConfigError) as caught:
        catalogue.resolve(order("O"))
    assert caught.value.exit_code == ExitCode.DETECT_OTHER
    assert 'composite buildpack "O@1" contains itself' in str(caught.value)
