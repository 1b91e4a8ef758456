"""Property tests for detect's plan resolution and for layer extraction with random tar entries.

Plan resolution: any order, composites (cycles included), detect outcomes and plans end in a
Resolution or ``DetectFailed``/``ConfigError``, and a Resolution obeys DET-3/6/10. Layer
extraction: any sequence of entries (names with ``..``, whiteouts, links to anywhere) ends in
a rootfs or an ``ImageError``, and nothing outside the target changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lifecycle.api import ApiVersion
from lifecycle.cnb import (
    BuildpackDescriptor,
    BuildpackInfo,
    DetectPlan,
    OrderEntry,
    OrderGroup,
    PlanSections,
    Provide,
    Require,
    SystemBuildpacks,
    SystemOrder,
    SystemToml,
)
from lifecycle.errors import ConfigError, DetectFailed, ImageError
from lifecycle.execution.rootfs import extract_rootfs
from lifecycle.phases.cache import CacheError
from lifecycle.phases.cache_extract import extract_layer
from lifecycle.phases.resolve import DetectResult, DetectStatus, resolve

from .figures import record
from .hostile import CACHE_PREFIX, DIR, Entry, Jail, memory_layer, tar_bytes
from .strategies import FUZZ

IDS = "ABCDEF"
NAMES = "xyz"

_entries = st.builds(OrderEntry, id=st.sampled_from(IDS), version=st.just("1"), optional=st.booleans())
_groups = st.lists(_entries, min_size=1, max_size=4).map(lambda e: OrderGroup(group=tuple(e)))
_orders = st.lists(_groups, min_size=1, max_size=3).map(tuple)
_sections = st.builds(
    PlanSections,
    requires=st.lists(st.sampled_from(NAMES), max_size=2).map(lambda n: tuple(Require(name=x) for x in n)),
    provides=st.lists(st.sampled_from(NAMES), max_size=2).map(lambda n: tuple(Provide(name=x) for x in n)),
)
_plans = st.builds(
    lambda top, alternatives: DetectPlan(
        requires=top.requires, provides=top.provides, or_=tuple(alternatives)
    ),
    _sections,
    st.lists(_sections, max_size=2),
)
_results = st.builds(DetectResult, status=st.sampled_from(list(DetectStatus)), plan=_plans)


@FUZZ
@given(
    order=_orders,
    composites=st.dictionaries(st.sampled_from(IDS), _orders, max_size=3),
    results=st.dictionaries(st.sampled_from(IDS), _results),
    pre=st.lists(_entries, max_size=2),
    post=st.lists(_entries, max_size=2),
)
def test_plan_resolution_ends_in_a_resolution_or_a_typed_error(
    order: tuple[OrderGroup, ...],
    composites: dict[str, tuple[OrderGroup, ...]],
    results: dict[str, DetectResult],
    pre: list[OrderEntry],
    post: list[OrderEntry],
) -> None:
    record("fuzz", "plan_inputs", 1)
    detected: list[str] = []

    def lookup(entry: OrderEntry) -> BuildpackDescriptor:
        info = BuildpackInfo(id=entry.id, version=entry.version or "1")
        return BuildpackDescriptor(api=ApiVersion(0, 12), buildpack=info, order=composites.get(entry.id, ()))

    def detect(found: BuildpackDescriptor) -> DetectResult:
        detected.append(found.ref)
        return results.get(found.buildpack.id, DetectResult(DetectStatus.PASS))

    system = SystemToml(
        system=SystemOrder(
            pre=SystemBuildpacks(buildpacks=tuple(pre)), post=SystemBuildpacks(buildpacks=tuple(post))
        )
    )
    try:
        resolution = resolve(order, lookup, detect, system=system)
    except (DetectFailed, ConfigError):
        return
    ids = [element.id for element in resolution.group]
    assert len(ids) == len(set(ids)), "DET-3: an ID twice in the group"
    assert all(results.get(i, DetectResult(DetectStatus.PASS)).status is DetectStatus.PASS for i in ids)
    assert len(detected) == len(set(detected)), "DET-3: a buildpack detected twice"
    for entry in resolution.plan.entries:
        assert entry.providers and entry.requires, "DET-10: every plan entry is provided and required"
        assert {p.id for p in entry.providers} <= set(ids)


_components = st.sampled_from(
    ["a", "b", "..", ".", "", "etc", ".wh.a", ".wh..wh..opq", ".wh.", ".wh..", "{victim}"]
)
_paths = st.lists(_components, min_size=1, max_size=4).map("/".join)
_links = st.one_of(_paths, st.sampled_from(["{victim}", "{victim}/keep.txt", "/", "../../..", "/etc"]))
_tar_entries = st.builds(
    Entry,
    name=_paths,
    kind=st.sampled_from([b"0", b"5", b"2", b"1", b"3", b"6"]),
    data=st.binary(max_size=16),
    link=_links,
    mode=st.sampled_from([0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o000]),
)


@FUZZ
@given(st.lists(st.lists(_tar_entries, min_size=1, max_size=8), min_size=1, max_size=3))
def test_random_layers_extract_or_fail_typed_and_never_write_outside(layers: list[list[Entry]]) -> None:
    record("fuzz", "layer_inputs", 1)
    with tempfile.TemporaryDirectory(prefix="fuzz-layers-") as scratch:
        jail = Jail(Path(scratch)).arm()
        handles = [memory_layer(tar_bytes(entries, jail.victim)) for entries in layers]
        try:
            extract_rootfs(handles, jail.target("root"))
        except ImageError as exc:
            assert "\n" not in str(exc)
        jail.check()


@FUZZ
@given(st.lists(_tar_entries, min_size=1, max_size=10))
def test_random_cache_tars_restore_or_fail_typed_and_never_write_outside(entries: list[Entry]) -> None:
    record("fuzz", "layer_inputs", 1)
    with tempfile.TemporaryDirectory(prefix="fuzz-cache-") as scratch:
        jail = Jail(Path(scratch)).arm()
        prefix_dirs = [Entry(CACHE_PREFIX.rsplit("/", n)[0], DIR, raw=True) for n in (2, 1, 0)]
        raw = tar_bytes([*prefix_dirs, *entries], jail.victim, prefix=CACHE_PREFIX)
        diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        with contextlib.suppress(CacheError):
            extract_layer(io.BytesIO(raw), "/" + CACHE_PREFIX, jail.target("layer"), diff_id)
        jail.check()
