"""``/cnb/lifecycle/<phase>`` (argv[0] dispatch): an escaping OSError is one ``ERROR:`` line with the
phase's exit code (§5), as ``pybuild`` reports it; the launcher's is 82 (LCH-8)."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from lifecycle.cli import dispatch
from lifecycle.cli.output import Logger
from lifecycle.errors import ExitCode


@pytest.fixture(autouse=True)
def _logger_to_captured_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Logger`` binds ``sys.stderr`` when it is imported; give it the one pytest captures now."""
    monkeypatch.setattr(dispatch, "Logger", lambda **kw: Logger(**kw, err=sys.stderr))


def _full_disk(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/layers/.export-1/layer.tar")


@pytest.mark.parametrize(
    ("argv0", "code"),
    [
        ("/cnb/lifecycle/exporter", ExitCode.EXPORT),
        ("/cnb/lifecycle/restorer", ExitCode.RESTORE),
        ("/cnb/lifecycle/analyzer", ExitCode.ANALYZE),
        ("/cnb/process/web", ExitCode.LAUNCH),
    ],
)
def test_an_os_error_in_a_phase_is_one_line_with_the_phase_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv0: str, code: int
) -> None:
    monkeypatch.setattr(dispatch, "run_phase", _full_disk)
    monkeypatch.setattr(dispatch, "exec_launcher", _full_disk)
    with pytest.raises(SystemExit) as exited:
        dispatch.main([argv0, "-layers", "/layers"])
    assert exited.value.code == code
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("ERROR: failed to run the ")
    assert err[0].endswith("No space left on device: /layers/.export-1/layer.tar (free space and retry)")
