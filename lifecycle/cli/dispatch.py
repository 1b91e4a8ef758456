"""argv[0] dispatch: ``/cnb/lifecycle/<phase>`` links to one console script.

``detector``, ``builder`` ... run ``pybuild lifecycle <phase>`` with the rest of argv as is;
any other name (``/cnb/process/<type>``, ``launcher``) is the launcher, which picks the
process type from that name (LCH-2). Errors print one line and exit with the CNB code (§5), an
``OSError`` too (as ``pybuild`` reports it; ``-log-level debug`` adds the traceback).
"""

from __future__ import annotations

import os
import sys

from lifecycle.cli.lifecycle import exec_launcher, run_phase
from lifecycle.cli.output import Logger
from lifecycle.errors import ExitCode, PybuildError

__all__ = ["main", "phase_for"]

_PHASES = frozenset({"analyzer", "detector", "restorer", "builder", "exporter", "creator", "rebaser"})


def phase_for(argv0: str) -> str:
    """The phase an ``argv[0]`` names; anything else is the launcher."""
    name = os.path.basename(argv0)
    return name if name in _PHASES else "launcher"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv if argv is None else argv
    phase = phase_for(args[0])
    try:
        if phase == "launcher":
            exec_launcher(args[0], args[1:])
        else:
            run_phase(phase, args[1:])
    except PybuildError as exc:
        Logger().error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # a full disk, a permission denied: one line, the phase's exit code
        from lifecycle.cli.main import os_error_exit

        message, code = os_error_exit(exc, ["lifecycle", phase])
        Logger().error(message)
        sys.exit(ExitCode.LAUNCH if phase == "launcher" else code)  # LCH-8: before the exec
    sys.exit(0)


if __name__ == "__main__":
    main()
