"""The launch plan file: `LaunchPlan` to the bytes `launcher.sh` sources, and back.

The file sits at `<layers>/config/launch-plan.sh` in the config layer (EXP-2). It is data
written as sh: one record per line, each a call of a verb that the launcher defines, every
value single-quoted verbatim (a value may hold quotes, newlines and `$`; a quoted value
spans lines when it holds a newline). Format 1 has these records, in this order:

    cnb_plan 1
    cnb_process TYPE direct|shell default|- replace|append WORKING_DIR EXEC_ENVS BUILDPACK_ID API
    cnb_command TYPE WORD...
    cnb_args TYPE WORD...
    cnb_layer BUILDPACK_ID LAYER PATH bin|- lib|-
    cnb_env BUILDPACK_ID LAYER PROCESS_TYPE override|default|prepend|append NAME VALUE DELIM
    cnb_exec_d BUILDPACK_ID LAYER PROCESS_TYPE PATH
    cnb_profile_d BUILDPACK_ID LAYER PROCESS_TYPE PATH

Processes are sorted by type. Layer records come per buildpack group: all its `cnb_layer`
records (the launcher prepends bin/lib on them), then all its `cnb_env` records, so LCH-5
order is the file order. All exec.d records follow all env records (LCH-6), then profile.d
(LCH-7). An empty PROCESS_TYPE means every process; an empty WORKING_DIR means the app
dir; EXEC_ENVS is `*` for "any" or a space-separated list. The launcher reads only the
values it needs; the buildpack and layer fields let `parse_plan` rebuild the model, which
the exporter needs for a reused launch layer whose files are not on the host (EXP-3).

Env files that a shell cannot apply (a name that is not a shell identifier, a NUL byte)
are left out with a warning on the `lifecycle.launcher` logger; see `env_op_problem`.
Output is deterministic: the same plan gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lifecycle.launcher.plan import (
    EnvAction,
    EnvOp,
    LaunchLayer,
    LaunchPlan,
    LaunchPlanError,
    LayerScript,
    Process,
    by_buildpack,
    usable_env,
)

__all__ = ["PLAN_FORMAT", "parse_plan", "render_plan"]

PLAN_FORMAT = 1
_HEADER = (
    "# pybuild launch plan, sourced by /cnb/lifecycle/launcher. Data only: each line calls a\n"
    "# verb the launcher defines, with values single-quoted verbatim.\n"
)
_TOKEN = re.compile(r"[ \t]+|\n|#[^\n]*|(?:'[^']*'|\\'|[A-Za-z0-9_-])+")
_QUOTED = re.compile(r"'([^']*)'|\\(')")
_ENV_ACTIONS: dict[str, EnvAction] = {
    "override": "override",
    "default": "default",
    "prepend": "prepend",
    "append": "append",
}


def render_plan(plan: LaunchPlan) -> bytes:
    """The plan file's bytes; values that are not UTF-8 pass through as their original bytes."""
    records = [f"cnb_plan {PLAN_FORMAT}"]
    for process in sorted(plan.processes, key=lambda p: p.type):
        records.extend(_process_records(process))
    for group in by_buildpack(plan.layers):
        records.extend(_layer_record(layer) for layer in group)
        records.extend(_env_record(layer, op) for layer in group for op in usable_env(layer))
    for verb in ("cnb_exec_d", "cnb_profile_d"):
        for layer in plan.layers:
            scripts = layer.exec_d if verb == "cnb_exec_d" else layer.profile_d
            records.extend(_record(verb, *_owner(layer), _scope(s.process_type), s.path) for s in scripts)
    return (_HEADER + "\n".join(records) + "\n").encode("utf-8", "surrogateescape")


def parse_plan(data: bytes) -> LaunchPlan:
    """Read a plan file written by `render_plan` back into the model."""
    reader = _PlanReader()
    for record in _records(data.decode("utf-8", "surrogateescape")):
        reader.read(record)
    return reader.plan()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _record(verb: str, *values: str) -> str:
    return " ".join([verb, *(_quote(v) for v in values)])


def _scope(process_type: str | None) -> str:
    return process_type or ""


def _owner(layer: LaunchLayer) -> tuple[str, str]:
    return layer.buildpack_id, layer.name


def _process_records(process: Process) -> Iterator[str]:
    kind = "direct" if process.direct else "shell"
    default = "default" if process.default else "-"
    args_mode = "replace" if process.user_args_replace else "append"
    exec_env = "*" if process.exec_env is None else " ".join(process.exec_env)
    yield " ".join(
        [
            f"cnb_process {_quote(process.type)} {kind} {default} {args_mode}",
            _quote(process.working_dir or ""),
            _quote(exec_env),
            _quote(process.buildpack_id),
            _quote(process.buildpack_api),
        ]
    )
    yield _record("cnb_command", process.type, *process.command)
    if process.args:
        yield _record("cnb_args", process.type, *process.args)


def _layer_record(layer: LaunchLayer) -> str:
    flags = f"{'bin' if layer.has_bin else '-'} {'lib' if layer.has_lib else '-'}"
    return f"{_record('cnb_layer', *_owner(layer), layer.path)} {flags}"


def _env_record(layer: LaunchLayer, op: EnvOp) -> str:
    head = _record("cnb_env", *_owner(layer), _scope(op.process_type))
    return f"{head} {op.action} {_quote(op.name)} {_quote(op.value)} {_quote(op.delim)}"


def _records(text: str) -> Iterator[list[str]]:
    record: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise LaunchPlanError("read launch plan", f"unexpected {text[pos]!r} at offset {pos}")
        token, pos = match.group(), match.end()
        if token == "\n" and record:
            yield record
            record = []
        elif token[0] not in " \t\n#":
            record.append(_QUOTED.sub(lambda m: m[1] if m[1] is not None else m[2], token))
    if record:
        yield record


@dataclass
class _ProcessDraft:
    type: str
    direct: bool
    default: bool
    working_dir: str | None
    exec_env: tuple[str, ...] | None
    buildpack_id: str
    buildpack_api: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    def freeze(self) -> Process:
        return Process(**vars(self))


@dataclass
class _LayerDraft:
    buildpack_id: str
    name: str
    path: str
    has_bin: bool
    has_lib: bool
    env: list[EnvOp] = field(default_factory=list)
    exec_d: list[LayerScript] = field(default_factory=list)
    profile_d: list[LayerScript] = field(default_factory=list)

    def freeze(self) -> LaunchLayer:
        lists = {"env": tuple(self.env), "exec_d": tuple(self.exec_d), "profile_d": tuple(self.profile_d)}
        return LaunchLayer(**{**vars(self), **lists})


class _PlanReader:
    """Collects records in file order; processes and layers keep their first-seen order."""

    def __init__(self) -> None:
        self.processes: dict[str, _ProcessDraft] = {}
        self.layers: dict[tuple[str, str], _LayerDraft] = {}
        self.format_seen = False
        self.handlers: dict[str, tuple[int, Callable[..., None]]] = {
            "cnb_plan": (1, self._read_plan),
            "cnb_process": (8, self._read_process),
            "cnb_command": (-1, self._read_command),
            "cnb_args": (-1, self._read_args),
            "cnb_layer": (5, self._read_layer),
            "cnb_env": (7, self._read_env),
            "cnb_exec_d": (4, self._read_exec_d),
            "cnb_profile_d": (4, self._read_profile_d),
        }

    def read(self, record: list[str]) -> None:
        arity, handler = self.handlers.get(record[0], (0, None))
        values = record[1:]
        if handler is None or (arity >= 0 and len(values) != arity) or not values:
            raise LaunchPlanError(
                "read launch plan", f"malformed record {record[0]!r} with {len(values)} values"
            )
        handler(*values)

    def plan(self) -> LaunchPlan:
        if not self.format_seen:
            raise LaunchPlanError("read launch plan", "no 'cnb_plan' record: not a pybuild launch plan")
        return LaunchPlan(
            processes=tuple(d.freeze() for d in self.processes.values()),
            layers=tuple(d.freeze() for d in self.layers.values()),
        )

    def _process(self, process_type: str) -> _ProcessDraft:
        if process_type not in self.processes:
            raise LaunchPlanError(
                "read launch plan", f"command or args of undeclared process {process_type!r}"
            )
        return self.processes[process_type]

    def _layer(self, buildpack_id: str, name: str) -> _LayerDraft:
        if (buildpack_id, name) not in self.layers:
            raise LaunchPlanError("read launch plan", f"record of undeclared layer {buildpack_id}/{name}")
        return self.layers[buildpack_id, name]

    def _read_plan(self, version: str) -> None:
        if version != str(PLAN_FORMAT):
            raise LaunchPlanError("read launch plan", f"format {version!r}, expected {PLAN_FORMAT}")
        self.format_seen = True

    def _read_process(self, *values: str) -> None:
        type_, kind, default, _args_mode, working_dir, exec_env, buildpack_id, api = values
        self.processes[type_] = _ProcessDraft(
            type=type_,
            direct=kind == "direct",
            default=default == "default",
            working_dir=working_dir or None,
            exec_env=None if exec_env == "*" else tuple(exec_env.split()),
            buildpack_id=buildpack_id,
            buildpack_api=api,
        )

    def _read_command(self, process_type: str, *words: str) -> None:
        self._process(process_type).command = words

    def _read_args(self, process_type: str, *words: str) -> None:
        self._process(process_type).args = words

    def _read_layer(self, buildpack_id: str, name: str, path: str, bin_: str, lib: str) -> None:
        self.layers[buildpack_id, name] = _LayerDraft(buildpack_id, name, path, bin_ == "bin", lib == "lib")

    def _read_env(self, buildpack_id: str, layer: str, scope: str, *op: str) -> None:
        action, name, value, delim = op
        if action not in _ENV_ACTIONS:
            raise LaunchPlanError("read launch plan", f"unknown env action {action!r}")
        env_op = EnvOp(
            name=name, action=_ENV_ACTIONS[action], value=value, delim=delim, process_type=scope or None
        )
        self._layer(buildpack_id, layer).env.append(env_op)

    def _read_exec_d(self, buildpack_id: str, layer: str, scope: str, path: str) -> None:
        self._layer(buildpack_id, layer).exec_d.append(LayerScript(path=path, process_type=scope or None))

    def _read_profile_d(self, buildpack_id: str, layer: str, scope: str, path: str) -> None:
        self._layer(buildpack_id, layer).profile_d.append(LayerScript(path=path, process_type=scope or None))
