"""Reference-lifecycle flags and ``CNB_*`` env -> typed phase inputs (GEN-1, GEN-2, §4).

The one place that reads a phase command's arguments and environment. Flags are spelled as
the Go lifecycle spells them (``-layers DIR``, ``-layers=DIR``; ``--layers`` works too);
each falls back to its ``CNB_*`` variable, then to the spec's default (GEN-2: flags, then
env, then defaults). ``CNB_PLATFORM_API`` is required and must be 0.12 - 0.15 (exit 11);
what a Platform API version switches on is decided here, once, as ``PhaseInputs`` fields.
``-insecure-registry`` may be given more than once (``CNB_INSECURE_REGISTRIES``: a comma-separated
list). ``-log-level`` is one of ``LOG_LEVELS``, and ``-layout`` needs ``-layout-dir`` (else exit 3).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.api import ApiRange, ApiVersion, PlatformFeatures
from lifecycle.errors import ConfigError, ExitCode

__all__ = [
    "FLAGS",
    "LOG_LEVELS",
    "PHASES",
    "PHASE_PLATFORM_APIS",
    "Flag",
    "PhaseInputs",
    "check_platform_api",
    "parse_phase_args",
]

PHASE_PLATFORM_APIS = ApiRange("platform", ApiVersion(0, 12), ApiVersion(0, 15), ExitCode.PLATFORM_API)
PHASES = ("analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser", "launcher")
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off", ""})
LOG_LEVELS = ("debug", "info", "warn", "error")
_ANA, _DET, _RES, _BLD, _EXP, _CRE, _REB = PHASES[:7]


@dataclass(frozen=True)
class Flag:
    """One reference-lifecycle flag: its ``CNB_*`` fallback and the phases that take it."""

    name: str
    env: str | None
    phases: frozenset[str]
    boolean: bool = False
    repeated: bool = False  # -insecure-registry A -insecure-registry B

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


def _flag(name: str, env: str | None, phases: str, boolean: bool = False, repeated: bool = False) -> Flag:
    return Flag(name, env, frozenset(phases.split()), boolean, repeated)


_ALL = " ".join(PHASES[:7])
_BUILDING = f"{_ANA} {_DET} {_RES} {_BLD} {_EXP} {_CRE}"
FLAGS: tuple[Flag, ...] = (
    _flag("app", "CNB_APP_DIR", f"{_DET} {_BLD} {_EXP} {_CRE}"),
    _flag("layers", "CNB_LAYERS_DIR", _ALL),
    _flag("platform", "CNB_PLATFORM_DIR", f"{_DET} {_BLD} {_CRE}"),
    _flag("buildpacks", "CNB_BUILDPACKS_DIR", f"{_DET} {_RES} {_BLD} {_EXP} {_CRE}"),
    _flag("build-config", "CNB_BUILD_CONFIG_DIR", f"{_BLD} {_CRE}"),
    _flag("order", "CNB_ORDER_PATH", f"{_DET} {_CRE}"),
    _flag("system", "CNB_SYSTEM_PATH", f"{_DET} {_CRE}"),
    _flag("group", "CNB_GROUP_PATH", f"{_DET} {_RES} {_BLD} {_EXP}"),
    _flag("plan", "CNB_PLAN_PATH", f"{_DET} {_BLD}"),
    _flag("analyzed", "CNB_ANALYZED_PATH", f"{_ANA} {_DET} {_RES} {_EXP}"),
    _flag("run", "CNB_RUN_PATH", f"{_ANA} {_EXP} {_CRE}"),
    _flag("report", "CNB_REPORT_PATH", f"{_EXP} {_CRE} {_REB}"),
    _flag("run-image", "CNB_RUN_IMAGE", f"{_ANA} {_CRE} {_REB}"),
    _flag("previous-image", "CNB_PREVIOUS_IMAGE", f"{_ANA} {_CRE} {_REB}"),
    _flag("cache-dir", "CNB_CACHE_DIR", f"{_ANA} {_RES} {_EXP} {_CRE}"),
    _flag("cache-image", "CNB_CACHE_IMAGE", f"{_ANA} {_RES} {_EXP} {_CRE}"),
    _flag("launch-cache", "CNB_LAUNCH_CACHE_DIR", f"{_EXP} {_CRE}"),
    _flag("layout-dir", "CNB_LAYOUT_DIR", _BUILDING + f" {_REB}"),
    _flag("process-type", "CNB_PROCESS_TYPE", f"{_EXP} {_CRE}"),
    _flag("log-level", "CNB_LOG_LEVEL", _ALL),
    _flag(
        "insecure-registry",
        "CNB_INSECURE_REGISTRIES",
        f"{_ANA} {_RES} {_EXP} {_CRE} {_REB}",
        repeated=True,
    ),
    _flag("uid", "CNB_USER_ID", f"{_ANA} {_RES} {_EXP} {_CRE} {_REB}"),
    _flag("gid", "CNB_GROUP_ID", f"{_ANA} {_RES} {_EXP} {_CRE} {_REB}"),
    _flag("daemon", "CNB_USE_DAEMON", f"{_ANA} {_EXP} {_CRE} {_REB}", boolean=True),
    _flag("layout", "CNB_USE_LAYOUT", _BUILDING + f" {_REB}", boolean=True),
    _flag("skip-restore", "CNB_SKIP_RESTORE", f"{_RES} {_CRE}", boolean=True),
    _flag("skip-layers", "CNB_SKIP_LAYERS", f"{_ANA} {_RES} {_CRE}", boolean=True),
    _flag("force", "CNB_FORCE_REBASE", _REB, boolean=True),
)


@dataclass(frozen=True)
class PhaseInputs:
    """What a phase command was asked to do, every default applied (GEN-2)."""

    phase: str
    platform: PlatformFeatures
    app_dir: Path
    layers_dir: Path
    platform_dir: Path
    buildpacks_dir: Path
    build_config_dir: Path
    order_path: Path
    system_path: Path | None  # None below Platform 0.15: system.toml did not exist
    group_path: Path
    plan_path: Path
    analyzed_path: Path
    run_path: Path
    report_path: Path
    report_given: bool  # -report / CNB_REPORT_PATH: write it even where <layers> is missing
    images: tuple[str, ...]  # positional: the tag written first, then additional tags
    run_image: str | None = None
    previous_image: str | None = None
    cache_dir: Path | None = None
    cache_image: str | None = None
    launch_cache: Path | None = None
    layout_dir: Path | None = None
    process_type: str | None = None
    log_level: str = "info"  # one of LOG_LEVELS
    insecure_registries: tuple[str, ...] = ()  # hosts spoken to over plain HTTP
    uid: int = 1000
    gid: int = 1000
    daemon: bool = False
    layout: bool = False
    skip_restore: bool = False
    force: bool = False  # rebaser: -force
    exec_env: str = "production"
    launch_cache_without_image: bool = True  # RES: Platform >= 0.14 (lifecycle PR#1346)

    @property
    def platform_api(self) -> str:
        return str(self.platform.api)


def _bool(flag: Flag, text: str, source: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError("parse arguments", f"{source}={text!r} is not a boolean (use true or false)")


def _split_booleans(phase: str, args: Sequence[str]) -> tuple[list[str], dict[str, bool]]:
    """Go-style bool flags (``-daemon``, ``-daemon=false``) never take the next argument."""
    booleans = {f.name: f for f in FLAGS if f.boolean and phase in f.phases}
    rest: list[str] = []
    found: dict[str, bool] = {}
    for number, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[number:])
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name in booleans:
            found[booleans[name].dest] = _bool(booleans[name], value, arg) if eq else True
        else:
            rest.append(arg)
    return rest, found


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError("parse arguments", message)


def _parser(phase: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=phase, add_help=False, allow_abbrev=False)
    for flag in FLAGS:
        if phase in flag.phases and not flag.boolean:
            action = "append" if flag.repeated else "store"
            parser.add_argument(f"-{flag.name}", f"--{flag.name}", dest=flag.dest, action=action)
    parser.add_argument("images", nargs="*")
    return parser


def _platform(environ: Mapping[str, str]) -> PlatformFeatures:
    """GEN-1: CNB_PLATFORM_API is required, and only 0.12 - 0.15 is spoken here (exit 11)."""
    text = environ.get("CNB_PLATFORM_API")
    if not text:
        raise ConfigError(
            "check platform API",
            f"CNB_PLATFORM_API is not set (set it to {PHASE_PLATFORM_APIS})",
            exit_code=ExitCode.PLATFORM_API,
        )
    return PlatformFeatures.for_api(PHASE_PLATFORM_APIS.check(text))


def _int(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise ConfigError("parse arguments", f"{name}={text!r} is not a number")
    return int(text)


def _log_level(text: str | None) -> str:
    level = (text or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError("parse arguments", f"log level {text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _listed(given: object, raw_env: str | None) -> tuple[str, ...]:
    """A repeated flag's values (they replace the env's list, GEN-2), else the env's comma list."""
    values = given if isinstance(given, list) and given else (raw_env or "").split(",")
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def parse_phase_args(phase: str, args: Sequence[str], environ: Mapping[str, str]) -> PhaseInputs:
    """Flags, then ``CNB_*`` env, then defaults (GEN-2), for ``phase``."""
    platform = _platform(environ)
    if phase == "launcher":
        raise ConfigError("parse arguments", "the launcher takes no lifecycle flags")
    rest, booleans = _split_booleans(phase, args)
    given = vars(_parser(phase).parse_args(rest))

    def value(name: str) -> str | None:
        flag = next(f for f in FLAGS if f.name == name)
        if phase in flag.phases and given.get(flag.dest) is not None:
            return str(given[flag.dest])
        return environ.get(flag.env) if flag.env else None

    def switch(name: str) -> bool:
        flag = next(f for f in FLAGS if f.name == name)
        if flag.dest in booleans:
            return booleans[flag.dest]
        raw = environ.get(flag.env or "")
        return _bool(flag, raw, flag.env or name) if raw else False

    def path(name: str, default: Path) -> Path:
        raw = value(name)
        return Path(raw) if raw else default

    def optional_path(name: str) -> Path | None:
        raw = value(name)
        return Path(raw) if raw else None

    layers = path("layers", Path("/layers"))
    layout = switch("layout")
    if layout and not value("layout-dir"):
        raise ConfigError("parse arguments", "-layout needs -layout-dir (or CNB_LAYOUT_DIR)")
    local_order = layers / "order.toml"
    exec_env = environ.get("CNB_EXEC_ENV", "production") if platform.exec_env_and_system else "production"
    if "/" in exec_env or not exec_env:
        raise ConfigError("parse arguments", f"CNB_EXEC_ENV={exec_env!r} is not an exec env name")
    return PhaseInputs(
        phase=phase,
        platform=platform,
        app_dir=path("app", Path("/workspace")),
        layers_dir=layers,
        platform_dir=path("platform", Path("/platform")),
        buildpacks_dir=path("buildpacks", Path("/cnb/buildpacks")),
        build_config_dir=path("build-config", Path("/cnb/build-config")),
        order_path=path("order", local_order if local_order.is_file() else Path("/cnb/order.toml")),
        system_path=path("system", Path("/cnb/system.toml")) if platform.exec_env_and_system else None,
        group_path=path("group", layers / "group.toml"),
        plan_path=path("plan", layers / "plan.toml"),
        analyzed_path=path("analyzed", layers / "analyzed.toml"),
        run_path=path("run", Path("/cnb/run.toml")),
        report_path=path("report", layers / "report.toml"),
        report_given=value("report") is not None,
        images=tuple(given["images"]),
        run_image=value("run-image") or None,
        previous_image=value("previous-image") or None,
        cache_dir=optional_path("cache-dir"),
        cache_image=value("cache-image") or None,
        launch_cache=optional_path("launch-cache"),
        layout_dir=optional_path("layout-dir"),
        process_type=value("process-type") or None,
        log_level=_log_level(value("log-level")),
        insecure_registries=_listed(given.get("insecure_registry"), environ.get("CNB_INSECURE_REGISTRIES")),
        uid=_int(value("uid"), "uid", 1000),
        gid=_int(value("gid"), "gid", 1000),
        daemon=switch("daemon"),
        layout=layout,
        skip_restore=switch("skip-restore") or switch("skip-layers"),
        force=switch("force"),
        exec_env=exec_env,
        launch_cache_without_image=platform.api >= ApiVersion(0, 14),
    )


def check_platform_api(environ: Mapping[str, str]) -> PlatformFeatures:
    """For the launcher, which takes no flags but still requires the Platform API (LCH-1)."""
    return _platform(environ)
