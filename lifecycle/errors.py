"""Typed errors shared by every layer, and the CNB exit codes they map to.

A domain error names the action that failed and chains its cause; only
`lifecycle.cli` turns one into ``ERROR: failed to <action>: <cause>`` and an
exit code (cnb-spec.md §5).
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "BlobNotFound",
    "ConfigError",
    "DetectFailed",
    "DigestMismatch",
    "ExitCode",
    "ExtendError",
    "ImageError",
    "ImageNotFound",
    "PybuildError",
    "StackError",
    "StoreCorrupt",
]


class ExitCode:
    """CNB exit codes (cnb-spec.md §5)."""

    FAILED = 1
    BAD_ARGS = 3
    PLATFORM_API = 11
    BUILDPACK_API = 12
    DETECT_FAIL = 20
    DETECT_ERROR = 21
    DETECT_OTHER = 22
    ANALYZE = 32
    RESTORE = 42
    BUILD_BUILDPACK = 51
    BUILD_OTHER = 52
    EXPORT = 62
    REBASE = 72
    LAUNCH = 82
    GENERATE_EXTENSION = 91
    GENERATE_OTHER = 92
    EXTEND = 102


class PybuildError(Exception):
    """An error a user can act on: what we tried, why it failed, how to exit."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, action: str, cause: str | BaseException, *, exit_code: int | None = None) -> None:
        self.action = action
        self.cause = cause
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(f"failed to {action}: {cause}")


class ImageError(PybuildError):
    """Reading or writing an image failed."""


class ImageNotFound(ImageError):
    """No image answers to a reference."""


class BlobNotFound(ImageError):
    """A manifest names a blob the backend does not have."""


class DigestMismatch(ImageError):
    """Bytes do not hash to the digest that names them."""


class StoreCorrupt(ImageError):
    """A store or layout file cannot be parsed."""


class ConfigError(PybuildError):
    """A user-supplied file or flag is malformed."""

    exit_code = ExitCode.BAD_ARGS


class StackError(PybuildError):
    """A stack definition is malformed or a stack image cannot be made."""


class ApiError(ConfigError):
    """An API version is malformed or outside the supported range (GEN-1).

    The exit code says whose API it is: 12 for a buildpack's, 11 for the platform's.
    """


class ExtendError(PybuildError):
    """A Dockerfile from an image extension cannot be read or applied: 102, or 92 at generate time."""

    exit_code = ExitCode.EXTEND


class DetectFailed(PybuildError):
    """No group passed detection (DET-15): 20 when nothing errored, 21 when a buildpack did."""

    exit_code = ExitCode.DETECT_FAIL

    def __init__(self, cause: str, *, errored: bool) -> None:
        self.errored = errored
        code = ExitCode.DETECT_ERROR if errored else ExitCode.DETECT_FAIL
        super().__init__("detect", cause, exit_code=code)
