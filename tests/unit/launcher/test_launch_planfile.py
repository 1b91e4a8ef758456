"""The plan file: deterministic bytes, verbatim values, LCH-5..LCH-7 record order, parse_plan inverse."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.launcher import (
    EnvOp,
    LaunchLayer,
    LaunchPlan,
    LaunchPlanError,
    LayerScript,
    Process,
    parse_plan,
    render_plan,
)

MakeProcess = Callable[..., Process]

NASTY = [
    "it's",
    "'\\''",
    "a\nb\n",
    "$(id)",
    "`id`",
    "\\",
    '"',
    "# not a comment",
    " ",
    "",
    "\t",
    "\udcff\udc80",
]
values = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12),
)
scopes = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._-]{1,6}", fullmatch=True))
env_ops = st.builds(
    EnvOp,
    name=st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
    action=st.sampled_from(["override", "default", "prepend", "append"]),
    value=values,
    delim=st.sampled_from(["", ":", " ", "'"]),
    process_type=scopes,
)
scripts = st.builds(LayerScript, path=values, process_type=scopes)


@st.composite
def plans(draw: st.DrawFn) -> LaunchPlan:
    types = draw(st.lists(st.from_regex(r"[A-Za-z0-9._-]{1,8}", fullmatch=True), unique=True, max_size=3))
    processes = [draw(_process(t, default=i == 0 and draw(st.booleans()))) for i, t in enumerate(types)]
    layers = []
    for buildpack_id in draw(st.lists(st.sampled_from(["a/x", "b", "c.d"]), unique=True, max_size=3)):
        for name in draw(st.lists(st.from_regex(r"[a-z]{1,4}", fullmatch=True), unique=True, max_size=2)):
            layers.append(
                LaunchLayer(
                    buildpack_id=buildpack_id,
                    name=name,
                    path=draw(values),
                    has_bin=draw(st.booleans()),
                    has_lib=draw(st.booleans()),
                    env=tuple(draw(st.lists(env_ops, max_size=3))),
                    exec_d=tuple(draw(st.lists(scripts, max_size=2))),
                    profile_d=tuple(draw(st.lists(scripts, max_size=2))),
                )
            )
    return LaunchPlan(processes=tuple(processes), layers=tuple(layers))


def _process(type_: str, default: bool) -> st.SearchStrategy[Process]:
    api = st.sampled_from(["0.7", "0.8", "0.9", "0.12"])
    return api.flatmap(
        lambda api: st.builds(
            Process,
            type=st.just(type_),
            command=st.lists(values.filter(bool), min_size=1, max_size=3).map(tuple),
            args=st.lists(values, max_size=3).map(tuple),
            direct=st.booleans() if api in ("0.7", "0.8") else st.just(True),
            default=st.just(default),
            working_dir=st.one_of(st.none(), values.filter(bool)),
            buildpack_api=st.just(api),
            buildpack_id=values,
            exec_env=st.one_of(st.none(), st.lists(st.sampled_from(["production", "test"])).map(tuple)),
        )
    )


@given(plans())
def test_parse_plan_inverts_render_plan(plan: LaunchPlan) -> None:
    canonical = LaunchPlan(processes=tuple(sorted(plan.processes, key=lambda p: p.type)), layers=plan.layers)
    assert parse_plan(render_plan(plan)) == canonical


@given(plans())
def test_same_plan_gives_same_bytes_whatever_the_process_order(plan: LaunchPlan) -> None:
    reordered = LaunchPlan(processes=plan.processes[::-1], layers=plan.layers)
    assert render_plan(plan) == render_plan(reordered)


def test_values_are_single_quoted_verbatim(make_process: MakeProcess) -> None:
    layer = LaunchLayer(
        buildpack_id="acme/node",
        name="rt",
        path="/layers/acme_node/rt",
        env=(EnvOp(name="MSG", action="override", value="it's $HOME\n`x`"),),
    )
    text = render_plan(LaunchPlan(processes=(make_process("web", "node", "it's"),), layers=(layer,))).decode()
    assert "cnb_command 'web' 'node' 'it'\\''s'\n" in text
    assert "cnb_env 'acme/node' 'rt' '' override 'MSG' 'it'\\''s $HOME\n`x`' ''\n" in text


def test_non_utf8_values_keep_their_bytes() -> None:
    raw = b"\xff\xfe-\xc3\xa9"
    layer = LaunchLayer(
        buildpack_id="b",
        name="l",
        path="/layers/b/l",
        env=(EnvOp(name="RAW", action="override", value=raw.decode("utf-8", "surrogateescape")),),
    )
    assert b"'RAW' '" + raw + b"'" in render_plan(LaunchPlan(layers=(layer,)))


def test_records_follow_lch_5_to_lch_7_order() -> None:
    def layer(bp: str, name: str) -> LaunchLayer:
        path = f"/layers/{bp}/{name}"
        return LaunchLayer(
            buildpack_id=bp,
            name=name,
            path=path,
            has_bin=True,
            env=(EnvOp(name=f"{bp}_{name}".upper(), action="override", value="v"),),
            exec_d=(LayerScript(path=f"{path}/exec.d/x"),),
            profile_d=(LayerScript(path=f"{path}/profile.d/x"),),
        )

    text = render_plan(LaunchPlan(layers=(layer("a", "one"), layer("a", "two"), layer("b", "one")))).decode()
    records = [line.split(" ")[0] + " " + " ".join(line.split(" ")[1:3]) for line in text.splitlines()[3:]]
    assert records == [
        "cnb_layer 'a' 'one'",
        "cnb_layer 'a' 'two'",
        "cnb_env 'a' 'one'",
        "cnb_env 'a' 'two'",
        "cnb_layer 'b' 'one'",
        "cnb_env 'b' 'one'",
        "cnb_exec_d 'a' 'one'",
        "cnb_exec_d 'a' 'two'",
        "cnb_exec_d 'b' 'one'",
        "cnb_profile_d 'a' 'one'",
        "cnb_profile_d 'a' 'two'",
        "cnb_profile_d 'b' 'one'",
    ]


def test_env_names_a_shell_cannot_hold_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    ops = (
        EnvOp(name="FOO-BAR", action="override", value="x"),
        EnvOp(name="NUL", action="override", value="a\0b"),
        EnvOp(name="GOOD", action="override", value="y"),
    )
    plan = LaunchPlan(layers=(LaunchLayer(buildpack_id="b", name="l", path="/l", env=ops),))
    with caplog.at_level(logging.WARNING, logger="lifecycle.launcher"):
        text = render_plan(plan).decode()
    assert "FOO-BAR" not in text and "'NUL'" not in text and "'GOOD' 'y'" in text
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "no 'cnb_plan'"),
        (b"cnb_plan 2\n", "format '2'"),
        (b"cnb_plan 1\nrm -rf x\n", "malformed record 'rm'"),
        (b"cnb_plan 1\ncnb_env 'b' 'l' '' override 'A' 'v' ''\n", "undeclared layer"),
        (b"cnb_plan 1\ncnb_command 'web' 'x'\n", "undeclared process"),
        (b"cnb_plan 1\ncnb_layer 'b' 'l' '/l' bin\n", "malformed record"),
        (b"cnb_plan 1; echo\n", "unexpected"),
        (
            b"cnb_plan 1\ncnb_layer 'b' 'l' '/l' - -\ncnb_env 'b' 'l' '' swap 'A' 'v' ''\n",
            "unknown env action",
        ),
    ],
)
def test_parse_plan_rejects_what_render_plan_never_writes(data: bytes, match: str) -> None:
    with pytest.raises(LaunchPlanError, match=match):
        parse_plan(data)
