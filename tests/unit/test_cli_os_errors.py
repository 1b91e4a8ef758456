"""An OSError that escapes a command: one ``ERROR:`` line with the path and a hint, a CNB exit code (§5)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from lifecycle.cli import main as cli_main
from lifecycle.cli.output import Logger
from lifecycle.errors import ExitCode


@pytest.fixture(autouse=True)
def _logger_to_captured_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Logger`` binds ``sys.stderr`` when it is imported; give it the one pytest captures now."""
    monkeypatch.setattr(cli_main, "Logger", lambda **kw: Logger(**kw, err=sys.stderr))


def _raising(exc: OSError) -> object:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


def _run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], exc: OSError
) -> tuple[int, list[str]]:
    monkeypatch.setattr(cli_main.cli, "main", _raising(exc))
    with pytest.raises(SystemExit) as exited:
        cli_main.main(argv)
    return int(exited.value.code or 0), capsys.readouterr().err.splitlines()


def _full_disk(path: str | None = "/home/u/.local/share/pybuild/tmp/.layer-1") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_a_full_disk_is_one_line_with_the_path_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(monkeypatch, capsys, ["build", "app", "--path", "."], _full_disk())
    assert err == [
        "ERROR: failed to build: No space left on device: "
        "/home/u/.local/share/pybuild/tmp/.layer-1 (free space and retry)"
    ]
    assert code == ExitCode.FAILED


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["rebase", "app"], ExitCode.REBASE),
        (["-q", "lifecycle", "exporter", "-app", "/workspace"], ExitCode.EXPORT),
        (["lifecycle", "restorer"], ExitCode.RESTORE),
        (["images"], ExitCode.FAILED),
    ],
)
def test_the_exit_code_is_the_failing_commands_cnb_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    exit_code, err = _run(monkeypatch, capsys, argv, _full_disk(None))
    assert exit_code == code
    assert len(err) == 1 and err[0].startswith("ERROR: failed to ") and "No space left on device" in err[0]


def test_the_traceback_is_shown_only_with_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, quiet = _run(monkeypatch, capsys, ["build", "app"], _full_disk())
    assert not any("Traceback" in line for line in quiet)
    _, verbose = _run(monkeypatch, capsys, ["build", "app", "-v"], _full_disk())
    assert verbose[0].startswith("Traceback") and verbose[-1].startswith("ERROR: failed to build:")
    _, after_dashdash = _run(monkeypatch, capsys, ["run", "app", "--", "-v"], _full_disk())
    assert not any("Traceback" in line for line in after_dashdash), "-v after -- belongs to the app"


def test_a_rename_names_both_paths_and_other_errors_have_no_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a/tmp", None, "/b/blob")
    _, err = _run(monkeypatch, capsys, ["images"], exc)
    assert err == ["ERROR: failed to run pybuild images: Invalid cross-device link: /a/tmp -> /b/blob"]


def test_a_real_command_on_an_unusable_home_fails_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("PYBUILD_HOME", str(tmp_path / "file" / "home"))
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["images"])
    err = capsys.readouterr().err.splitlines()
    assert exited.value.code == ExitCode.FAILED
    assert err == [
        f"ERROR: failed to run pybuild images: Not a directory: {tmp_path}/file/home/store/blobs/sha256"
    ]
