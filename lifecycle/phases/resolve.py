"""Detect's plan resolution: which group wins and what goes in plan.toml. Pure: no processes.

Input is an order, a lookup of buildpack descriptors and a callable that runs one `bin/detect`
(however the caller runs it). Output is the winning group (group.toml) and the plan (plan.toml),
or `DetectFailed` with exit 20 or 21.

- DET-13: system.toml `pre`/`post` buildpacks wrap every group, unless the ID is already in it.
- DET-1: composites expand depth-first, left to right, into candidate groups, lazily.
- DET-2: an optional composite is tried with each of its groups, then without it; an optional
  buildpack that fails or errors is dropped.
- DET-3: a repeated ID in an expanded group is skipped; each id@version is detected at most once.
- DET-6: a group passes when a buildpack passed and its plan resolves; the first one wins.
- DET-8/9: trials pick one alternative per buildpack (top-level pair, then each `or`); a trial
  drops optional buildpacks that break a rule until stable (only on their last alternative).
  Trials are walked in that order but a start that no ending can save is skipped whole, so
  many buildpacks with `or` alternatives stay fast; a walk past `MAX_TRIAL_STEPS` stops with
  an error (exit 22) rather than running on for hours.
- DET-10: one plan entry per required name; its providers are every provider before its last require.
- DET-15: when every group fails, exit 21 if any buildpack errored, else 20.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from lifecycle.cnb.buildpack import BuildpackDescriptor
from lifecycle.cnb.order import GroupElement, OrderEntry, OrderGroup, SystemToml
from lifecycle.cnb.plan import DetectPlan, PlanEntry, PlanProvider, PlanSections, PlanToml, Require
from lifecycle.errors import ConfigError, DetectFailed, ExitCode, PybuildError

__all__ = [
    "MAX_TRIAL_STEPS",
    "Candidate",
    "DescriptorLookup",
    "DetectFunction",
    "DetectResult",
    "DetectStatus",
    "Resolution",
    "apply_system",
    "expand_order",
    "resolve",
]


MAX_TRIAL_STEPS = 100_000
"""The most alternatives one group's trial walk may try before detect gives up (DET-8)."""


class DetectStatus(Enum):
    """How one `bin/detect` ended (DET-5), or that it was not run (DET-12)."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


@dataclass(frozen=True)
class DetectResult:
    """The outcome of one buildpack's detect and, when it passed, its parsed plan (DET-7).

    A target mismatch (DET-11) or an invalid plan file is an ERROR; a buildpack whose
    `exec-env` excludes the current one is a SKIP (DET-12).
    """

    status: DetectStatus
    plan: DetectPlan = field(default_factory=DetectPlan)
    extension: bool = False  # an image extension's result: it alone never passes a group (DET-6)


@dataclass(frozen=True)
class Candidate:
    """A buildpack in an expanded group: how the order refers to it, and what it is."""

    entry: OrderEntry
    descriptor: BuildpackDescriptor


@dataclass(frozen=True)
class Resolution:
    """The group that passed (group.toml), its plan (plan.toml), and every id@version it considered."""

    group: tuple[GroupElement, ...]
    plan: PlanToml
    considered: tuple[str, ...]


DescriptorLookup = Callable[[OrderEntry], BuildpackDescriptor]
"""Find the buildpack an order entry names (id@version)."""

DetectFunction = Callable[[BuildpackDescriptor], DetectResult]
"""Run one buildpack's `bin/detect`."""


def resolve(
    order: Sequence[OrderGroup],
    lookup: DescriptorLookup,
    detect: DetectFunction,
    *,
    system: SystemToml | None = None,
) -> Resolution:
    """The first group of `order` that passes detection (DET-6), or DetectFailed (DET-15)."""
    groups = apply_system(order, system) if system is not None else tuple(order)
    cached = _CachedDetect(detect)
    for candidates in expand_order(groups, lookup):
        resolution = _try_group(candidates, cached)
        if resolution is not None:
            return resolution
    raise _no_group_passed(cached)


def apply_system(order: Iterable[OrderGroup], system: SystemToml) -> tuple[OrderGroup, ...]:
    """Put system `pre` buildpacks in front of every group and `post` at the end (DET-13)."""
    return tuple(
        OrderGroup(group=(*_absent(system.pre, group), *group.group, *_absent(system.post, group)))
        for group in order
    )


def _absent(entries: Iterable[OrderEntry], group: OrderGroup) -> tuple[OrderEntry, ...]:
    present = {entry.id for entry in group.group}
    return tuple(entry for entry in entries if entry.id not in present)


def expand_order(order: Iterable[OrderGroup], lookup: DescriptorLookup) -> Iterator[tuple[Candidate, ...]]:
    """Candidate groups in trial order, composites expanded lazily (DET-1, DET-2, DET-3)."""
    for group in order:
        yield from _expand(group.group, (), lookup, frozenset())


def _expand(
    pending: tuple[OrderEntry, ...],
    done: tuple[Candidate, ...],
    lookup: DescriptorLookup,
    composites: frozenset[str],
) -> Iterator[tuple[Candidate, ...]]:
    """Walk `pending` after `done`; the first composite branches into one walk per group of its order."""
    for index, entry in enumerate(pending):
        if any(candidate.entry.id == entry.id for candidate in done):
            continue  # DET-3: the first occurrence of an ID wins
        descriptor = lookup(entry)
        if descriptor.is_composite:
            yield from _expand_composite(entry, descriptor, pending[index + 1 :], done, lookup, composites)
            return
        done = (*done, Candidate(entry, descriptor))
    yield done


def _expand_composite(
    entry: OrderEntry,
    descriptor: BuildpackDescriptor,
    rest: tuple[OrderEntry, ...],
    done: tuple[Candidate, ...],
    lookup: DescriptorLookup,
    composites: frozenset[str],
) -> Iterator[tuple[Candidate, ...]]:
    if entry.ref in composites:
        cause = f'composite buildpack "{entry.ref}" contains itself (remove the cycle from its [[order]])'
        raise ConfigError("expand order", cause, exit_code=ExitCode.DETECT_OTHER)
    inside = composites | {entry.ref}
    for group in descriptor.order:
        yield from _expand((*group.group, *rest), done, lookup, inside)
    if entry.optional:
        yield from _expand(rest, done, lookup, composites)


class _CachedDetect:
    """Runs each id@version's detect at most once (DET-3) and remembers what errored (DET-15)."""

    def __init__(self, detect: DetectFunction) -> None:
        self._detect = detect
        self.results: dict[str, DetectResult] = {}

    def __call__(self, candidate: Candidate) -> DetectResult:
        ref = candidate.entry.ref
        if ref not in self.results:
            self.results[ref] = self._detect(candidate.descriptor)
        return self.results[ref]

    def errored(self) -> list[str]:
        return [ref for ref, result in self.results.items() if result.status is DetectStatus.ERROR]


def _no_group_passed(cached: _CachedDetect) -> DetectFailed:
    errored = cached.errored()
    if errored:
        return DetectFailed(
            f"no buildpack group passed detection (errored: {', '.join(errored)})", errored=True
        )
    return DetectFailed("no buildpack group passed detection", errored=False)


def _try_group(candidates: tuple[Candidate, ...], detect: _CachedDetect) -> Resolution | None:
    """The group's resolution if every required buildpack passed and a trial resolves (DET-6)."""
    # Every member runs detect, even after a required one fails, so errors count (DET-15).
    outcomes = [(candidate, detect(candidate)) for candidate in candidates]
    ran = [(candidate, result) for candidate, result in outcomes if result.status is not DetectStatus.SKIP]
    if any(not c.entry.optional and r.status is not DetectStatus.PASS for c, r in ran):
        return None
    passed = [(candidate, result.plan) for candidate, result in ran if result.status is DetectStatus.PASS]
    if all(result.extension for _, result in ran if result.status is DetectStatus.PASS):
        return None  # DET-6: no buildpack passed (image extensions do not count)
    for trial in _trials(passed):
        resolved = _resolve_trial(trial)
        if resolved is not None:
            group = tuple(_group_element(option.candidate) for option in resolved)
            considered = tuple(candidate.entry.ref for candidate, _ in ran)
            return Resolution(group, _plan(resolved), considered)
    return None


@dataclass(frozen=True)
class _Option:
    """One buildpack with one of its plan alternatives, in a trial."""

    candidate: Candidate
    sections: PlanSections
    optional: bool
    requires: frozenset[str] = frozenset()
    provides: frozenset[str] = frozenset()


def _trials(passed: Sequence[tuple[Candidate, DetectPlan]]) -> Iterator[tuple[_Option, ...]]:
    """Combinations of alternatives, depth-first: the last buildpack varies fastest (DET-8).

    Only combinations that might resolve are yielded, still in that order, so the first that
    resolves is the one the full product would find: alternatives that break a rule in every
    trial are dropped first (`_viable`), and a start that breaks one whatever follows it is not
    extended (`_doomed`). Past `MAX_TRIAL_STEPS` alternatives tried, a `PybuildError` (exit 22).
    """
    columns = _viable([_options(candidate, plan) for candidate, plan in passed])
    if not all(columns):
        return
    later: list[frozenset[str]] = [frozenset()] * len(columns)
    for index in range(len(columns) - 2, -1, -1):
        later[index] = later[index + 1].union(*(option.requires for option in columns[index + 1]))
    steps = 0
    stack: list[tuple[_Option, ...]] = [()]
    while stack:
        prefix = stack.pop()
        if len(prefix) == len(columns):
            yield prefix
            continue
        depth = len(prefix)
        steps += len(columns[depth])
        if steps > MAX_TRIAL_STEPS:
            raise _too_many_trials(passed, MAX_TRIAL_STEPS)
        extended = [(*prefix, option) for option in columns[depth]]
        stack += reversed([trial for trial in extended if not _doomed(trial, later[depth])])


def _too_many_trials(passed: Sequence[tuple[Candidate, DetectPlan]], max_steps: int) -> PybuildError:
    counts = [(c.entry.ref, len(plan.alternatives())) for c, plan in passed]
    alternatives = ", ".join(f"{ref} ({count})" for ref, count in counts if count > 1)
    return PybuildError(
        "resolve build plan",
        f"gave up after trying {max_steps} plan alternatives of {alternatives} "
        "(give these buildpacks fewer [[or]] alternatives, or split the group)",
        exit_code=ExitCode.DETECT_OTHER,
    )


def _viable(columns: list[list[_Option]]) -> list[list[_Option]]:
    """Each buildpack's alternatives less those that break a rule in any trial (DET-9).

    An option may not be dropped from a trial (not `optional`) and needs a name that no
    alternative up to it provides, or provides one that no alternative from it on requires:
    every trial with it fails. Dropping it may doom others; repeated until none is.
    """
    while True:
        provided: set[str] = set()
        up_to: list[frozenset[str]] = []
        for column in columns:
            up_to.append(frozenset(provided))
            provided.update(*(option.provides for option in column))
        required: set[str] = set()
        from_on: list[frozenset[str]] = [frozenset()] * len(columns)
        for index in range(len(columns) - 1, -1, -1):
            from_on[index] = frozenset(required)
            required.update(*(option.requires for option in columns[index]))
        kept = [
            [
                option
                for option in column
                if option.optional
                or (
                    option.requires <= up_to[index] | option.provides
                    and option.provides <= from_on[index] | option.requires
                )
            ]
            for index, column in enumerate(columns)
        ]
        if kept == columns:
            return columns
        columns = kept


def _doomed(prefix: Sequence[_Option], later: frozenset[str]) -> bool:
    """Whether every trial that starts with ``prefix`` fails (DET-9), ``later`` being every name
    the buildpacks after it might require.

    The options of ``prefix`` that break a rule whatever follows (a require nobody before
    provides; a provide nobody after, nor any later alternative, requires) are dropped until
    stable, as `_resolve_trial` would drop them: one that may not be dropped dooms the prefix.
    """
    alive = list(prefix)
    while alive:
        broken: set[int] = set()
        provided: set[str] = set()
        for index, option in enumerate(alive):
            provided |= option.provides
            if not option.requires <= provided:
                broken.add(index)
        required = set(later)
        for index in range(len(alive) - 1, -1, -1):
            required |= alive[index].requires
            if not alive[index].provides <= required:
                broken.add(index)
        if not broken:
            return False
        if any(not alive[index].optional for index in broken):
            return True
        alive = [option for index, option in enumerate(alive) if index not in broken]
    return False


def _options(candidate: Candidate, plan: DetectPlan) -> list[_Option]:
    alternatives = plan.alternatives()
    last = len(alternatives) - 1
    # An optional buildpack may be dropped only while its last alternative is tried (DET-9 [L]).
    return [
        _Option(
            candidate,
            sections,
            candidate.entry.optional and index == last,
            frozenset(require.name for require in sections.requires),
            frozenset(provide.name for provide in sections.provides),
        )
        for index, sections in enumerate(alternatives)
    ]


@dataclass
class _Dependency:
    """What one name collects while a trial is read in group order."""

    providers: list[_Option] = field(default_factory=list)
    requires: list[Require] = field(default_factory=list)
    unmet_requires: list[_Option] = field(default_factory=list)
    unmet_provides: list[_Option] = field(default_factory=list)


def _dependencies(trial: Sequence[_Option]) -> dict[str, _Dependency]:
    """Names in order of first mention. A buildpack's provides count before its own requires."""
    dependencies: dict[str, _Dependency] = {}
    for option in trial:
        for provide in option.sections.provides:
            dependencies.setdefault(provide.name, _Dependency()).unmet_provides.append(option)
        for require in option.sections.requires:
            dependency = dependencies.setdefault(require.name, _Dependency())
            dependency.providers += dependency.unmet_provides
            dependency.unmet_provides = []
            if dependency.providers:
                dependency.requires.append(require)
            else:
                dependency.unmet_requires.append(option)
    return dependencies


def _resolve_trial(trial: tuple[_Option, ...]) -> tuple[_Option, ...] | None:
    """The trial's surviving options once rules hold, or None if it fails (DET-9)."""
    while trial:
        broken = _rule_breakers(trial)
        if not broken:
            return trial
        if any(not option.optional for option in broken):
            return None
        trial = tuple(option for option in trial if option not in broken)
    return None


def _rule_breakers(trial: Sequence[_Option]) -> list[_Option]:
    """Options with a require nobody earlier provides, or a provide nobody later requires."""
    broken: list[_Option] = []
    for dependency in _dependencies(trial).values():
        broken += [o for o in dependency.unmet_requires + dependency.unmet_provides if o not in broken]
    return broken


def _plan(trial: Sequence[_Option]) -> PlanToml:
    """plan.toml for a resolved trial: one entry per name, every one of them required (DET-10)."""
    entries = [
        PlanEntry(
            providers=tuple(_provider(option.candidate) for option in dependency.providers),
            requires=tuple(dependency.requires),
        )
        for dependency in _dependencies(trial).values()
    ]
    return PlanToml(entries=tuple(entries))


def _provider(candidate: Candidate) -> PlanProvider:
    return PlanProvider(id=candidate.entry.id, version=candidate.entry.version)


def _group_element(candidate: Candidate) -> GroupElement:
    """A group.toml entry: no `optional`; `api` and `homepage` from buildpack.toml (DET-14)."""
    info = candidate.descriptor.buildpack
    return GroupElement(
        id=candidate.entry.id,
        version=candidate.entry.version,
        api=candidate.descriptor.api,
        homepage=info.homepage,
    )
