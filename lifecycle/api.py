"""API versions and the behaviour each one switches on (cnb-spec.md §1, GEN-1).

An `ApiVersion` is parsed once from a buildpack's `api` or from `CNB_PLATFORM_API`;
code then branches on a `BuildpackFeatures` or `PlatformFeatures` value, never on
version numbers, so each version rule lives here and only here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifecycle.errors import ApiError, ExitCode

__all__ = [
    "BUILDPACK_APIS",
    "PLATFORM_APIS",
    "ApiRange",
    "ApiVersion",
    "BuildpackFeatures",
    "PlatformFeatures",
]

_VERSION = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?")


@dataclass(frozen=True, order=True)
class ApiVersion:
    """A CNB API version such as ``0.12``: ordered by (major, minor)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ApiVersion:
        """Parse ``X.Y`` (or ``X``, meaning ``X.0``); raise ValueError for anything else."""
        match = _VERSION.fullmatch(text)
        if match is None:
            raise ValueError(f'"{text}" is not an API version (write it as MAJOR.MINOR, e.g. "0.12")')
        return cls(int(match[1]), int(match[2] or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class ApiRange:
    """The inclusive range of one API this lifecycle supports, and the exit code for a miss."""

    kind: str
    low: ApiVersion
    high: ApiVersion
    exit_code: int

    def __contains__(self, version: object) -> bool:
        return isinstance(version, ApiVersion) and self.low <= version <= self.high

    def __str__(self) -> str:
        return f"{self.low} - {self.high}"

    def check(self, text: str) -> ApiVersion:
        """Parse `text` and require it in range, else ApiError with this range's exit code (GEN-1)."""
        try:
            version = ApiVersion.parse(text)
        except ValueError as exc:
            raise ApiError(f"check {self.kind} API", exc, exit_code=self.exit_code) from None
        if version not in self:
            cause = f'{self.kind} API "{text}" is not supported (use {self})'
            raise ApiError(f"check {self.kind} API", cause, exit_code=self.exit_code)
        return version


BUILDPACK_APIS = ApiRange("buildpack", ApiVersion(0, 7), ApiVersion(0, 12), ExitCode.BUILDPACK_API)
PLATFORM_APIS = ApiRange("platform", ApiVersion(0, 7), ApiVersion(0, 15), ExitCode.PLATFORM_API)


@dataclass(frozen=True)
class BuildpackFeatures:
    """What a buildpack's `api` switches on (cnb-spec.md §1); build one with `for_api`."""

    api: ApiVersion
    # Below 0.8 a buildpack gets positional arguments only: no CNB_PLATFORM_DIR,
    # CNB_LAYERS_DIR or plan-path variables.
    positional_args_only: bool
    # launch.toml `command`: a string below 0.9, an array from 0.9 (BLD-10).
    command_is_array: bool
    # launch.toml `direct`: allowed below 0.9, an error from 0.9.
    direct_allowed: bool
    # User arguments replace a process's `args` from 0.9, and are appended below (LCH-3).
    user_args_replace: bool
    # From 0.10 CNB_TARGET_* is set and `[[targets]]` replaces `[[stacks]]` (DET-11).
    targets: bool
    # From 0.12 CNB_EXEC_ENV is set and `exec-env` is read (DET-12).
    exec_env: bool

    @classmethod
    def for_api(cls, api: ApiVersion | str) -> BuildpackFeatures:
        """Features of a supported buildpack API; an unsupported one raises ApiError (exit 12)."""
        version = BUILDPACK_APIS.check(api) if isinstance(api, str) else _require(BUILDPACK_APIS, api)
        before_0_9 = version < ApiVersion(0, 9)
        return cls(
            api=version,
            positional_args_only=version < ApiVersion(0, 8),
            command_is_array=not before_0_9,
            direct_allowed=before_0_9,
            user_args_replace=not before_0_9,
            targets=version >= ApiVersion(0, 10),
            exec_env=version >= ApiVersion(0, 12),
        )


@dataclass(frozen=True)
class PlatformFeatures:
    """What the Platform API (`CNB_PLATFORM_API`) switches on (cnb-spec.md §1)."""

    api: ApiVersion
    # Below 0.9 the build metadata label still carries the legacy `bom`.
    legacy_bom_label: bool
    # Below 0.10 a process `command` in the build metadata label is a string.
    command_is_array: bool
    # From 0.12: run.toml, `[[targets]]` checks and `io.buildpacks.rebasable`.
    run_toml_and_targets: bool
    # From 0.15: exec-env (`io.buildpacks.exec-env`, CNB_EXEC_ENV) and system.toml.
    exec_env_and_system: bool

    @classmethod
    def for_api(cls, api: ApiVersion | str) -> PlatformFeatures:
        """Features of a supported Platform API; an unsupported one raises ApiError (exit 11)."""
        version = PLATFORM_APIS.check(api) if isinstance(api, str) else _require(PLATFORM_APIS, api)
        return cls(
            api=version,
            legacy_bom_label=version < ApiVersion(0, 9),
            command_is_array=version >= ApiVersion(0, 10),
            run_toml_and_targets=version >= ApiVersion(0, 12),
            exec_env_and_system=version >= ApiVersion(0, 15),
        )


def _require(supported: ApiRange, version: ApiVersion) -> ApiVersion:
    """Check an already-parsed version against `supported` (same error as `ApiRange.check`)."""
    return supported.check(str(version))
