"""``pybuild lifecycle <phase>``: the reference lifecycle's phase commands, for platforms.

analyzer, detector, restorer, builder, exporter, creator, rebaser and launcher take the Go
lifecycle's single-dash flags and ``CNB_*`` variables (GEN-2, §4), parsed only by
``lifecycle.platform.phase_inputs``; the phases are the ones ``pybuild build`` runs. A
phase's generic failure exits with its code (§5: 32, 42, 52, 62, 72); specific codes
(11, 12, 20, 21, 51 ...) pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from lifecycle.errors import ExitCode, PybuildError
from lifecycle.platform.phase_inputs import PhaseInputs, check_platform_api, parse_phase_args

__all__ = ["PHASE_EXIT_CODES", "lifecycle", "run_phase"]

PHASE_EXIT_CODES = {
    "analyzer": ExitCode.ANALYZE,
    "detector": ExitCode.DETECT_OTHER,
    "restorer": ExitCode.RESTORE,
    "builder": ExitCode.BUILD_OTHER,
    "exporter": ExitCode.EXPORT,
    "creator": ExitCode.FAILED,
    "rebaser": ExitCode.REBASE,
}
_GENERIC = (ExitCode.FAILED, ExitCode.BAD_ARGS)
_RAW = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _runner(phase: str) -> Callable[[PhaseInputs], object]:
    from lifecycle.platform import phase_build, phase_export  # the phases load only when one runs

    runners: dict[str, Callable[[PhaseInputs], object]] = {
        "analyzer": phase_build.run_analyzer,
        "detector": phase_build.run_detector,
        "restorer": phase_build.run_restorer,
        "builder": phase_build.run_builder,
        "exporter": phase_export.run_exporter,
        "creator": phase_export.run_creator,
        "rebaser": phase_export.run_rebaser,
    }
    return runners[phase]


def run_phase(phase: str, args: list[str]) -> None:
    """Parse (exit 3 or 11 on bad input), then run; generic phase errors get the phase's code."""
    inputs = parse_phase_args(phase, args, os.environ)
    runner = _runner(phase)
    from lifecycle.platform.phase_build import run_command

    try:
        run_command(inputs, runner)
    except PybuildError as exc:
        if exc.exit_code in _GENERIC and phase in PHASE_EXIT_CODES:
            exc.exit_code = PHASE_EXIT_CODES[phase]
        raise


@click.group(name="lifecycle")
def lifecycle() -> None:
    """The CNB lifecycle's phase commands (analyzer ... launcher), for CI systems and clusters."""


def _phase_command(phase: str) -> click.Command:
    @click.command(name=phase, context_settings=_RAW, add_help_option=False)
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        run_phase(phase, list(args))

    command.help = f"The lifecycle {phase}: reference-lifecycle flags and CNB_* env (cnb-spec GEN-2)."
    return command


@click.command(name="launcher", context_settings=_RAW, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def launcher(args: tuple[str, ...]) -> None:
    """The launcher: CNB_PROCESS_TYPE, a process-type argv[0], or a command (LCH-2)."""
    exec_launcher("launcher", list(args))


def exec_launcher(argv0: str, args: list[str]) -> None:
    """LCH-1: the Platform API first (11), then exec the sh launcher: its exit code is the process's."""
    check_platform_api(os.environ)
    from lifecycle.platform.phase_export import launcher_argv

    argv = launcher_argv(argv0, args)
    os.execv(argv[0], argv)


for _phase in ("analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"):
    lifecycle.add_command(_phase_command(_phase))
lifecycle.add_command(launcher)
