"""API versions and feature flags (cnb-spec.md §1, GEN-1)."""

from __future__ import annotations

import pytest

from lifecycle.api import BUILDPACK_APIS, PLATFORM_APIS, ApiVersion, BuildpackFeatures, PlatformFeatures
from lifecycle.errors import ApiError, ConfigError, ExitCode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.12", ApiVersion(0, 12)),
        ("0.7", ApiVersion(0, 7)),
        ("1", ApiVersion(1, 0)),
        ("10.0", ApiVersion(10, 0)),
    ],
)
def test_parse_reads_major_and_minor(text: str, expected: ApiVersion) -> None:
    assert ApiVersion.parse(text) == expected


@pytest.mark.parametrize("text", ["", "0.", ".1", "0.1.2", "v0.12", "0.x", "00.1", " 0.1"])
def test_parse_rejects_anything_but_major_dot_minor(text: str) -> None:
    with pytest.raises(ValueError, match="is not an API version"):
        ApiVersion.parse(text)


def test_versions_order_numerically_not_as_strings() -> None:
    assert (
        ApiVersion.parse("0.9")
        < ApiVersion.parse("0.10")
        < ApiVersion.parse("0.12")
        < ApiVersion.parse("1.0")
    )
    assert str(ApiVersion.parse("0.10")) == "0.10"


def test_supported_ranges_are_those_of_the_lifecycle() -> None:
    assert (str(BUILDPACK_APIS), str(PLATFORM_APIS)) == ("0.7 - 0.12", "0.7 - 0.15")
    assert ApiVersion(0, 12) in BUILDPACK_APIS and ApiVersion(0, 13) not in BUILDPACK_APIS
    assert ApiVersion(0, 6) not in PLATFORM_APIS and ApiVersion(0, 15) in PLATFORM_APIS


@pytest.mark.parametrize("text", ["0.6", "0.13", "1.0", "junk"])
def test_gen1_unsupported_buildpack_api_exits_12(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        BuildpackFeatures.for_api(text)
    assert caught.value.exit_code == ExitCode.BUILDPACK_API == 12
    assert isinstance(caught.value, ConfigError)


def test_gen1_unsupported_platform_api_exits_11_and_names_the_range() -> None:
    with pytest.raises(ApiError) as caught:
        PlatformFeatures.for_api("0.16")
    assert caught.value.exit_code == ExitCode.PLATFORM_API == 11
    assert (
        str(caught.value)
        == 'failed to check platform API: platform API "0.16" is not supported (use 0.7 - 0.15)'
    )


def test_unset_platform_api_exits_11() -> None:
    with pytest.raises(ApiError) as caught:
        PLATFORM_APIS.check("")
    assert caught.value.exit_code == 11


@pytest.mark.parametrize(
    ("api", "positional_only", "command_array", "direct", "replace_args", "targets", "exec_env"),
    [
        ("0.7", True, False, True, False, False, False),
        ("0.8", False, False, True, False, False, False),
        ("0.9", False, True, False, True, False, False),
        ("0.10", False, True, False, True, True, False),
        ("0.11", False, True, False, True, True, False),
        ("0.12", False, True, False, True, True, True),
    ],
)
def test_buildpack_features_follow_spec_section_1(
    api: str,
    positional_only: bool,
    command_array: bool,
    direct: bool,
    replace_args: bool,
    targets: bool,
    exec_env: bool,
) -> None:
    features = BuildpackFeatures.for_api(api)
    assert features.api == ApiVersion.parse(api)
    assert (
        features.positional_args_only,
        features.command_is_array,
        features.direct_allowed,
        features.user_args_replace,
        features.targets,
        features.exec_env,
    ) == (positional_only, command_array, direct, replace_args, targets, exec_env)


def test_features_accept_a_parsed_version_and_check_it_too() -> None:
    assert BuildpackFeatures.for_api(ApiVersion(0, 9)).command_is_array
    with pytest.raises(ApiError):
        BuildpackFeatures.for_api(ApiVersion(0, 13))


@pytest.mark.parametrize(
    ("api", "legacy_bom", "command_array", "run_toml", "exec_env"),
    [
        ("0.8", True, False, False, False),
        ("0.9", False, False, False, False),
        ("0.10", False, True, False, False),
        ("0.12", False, True, True, False),
        ("0.15", False, True, True, True),
    ],
)
def test_platform_features_follow_spec_section_1(
    api: str, legacy_bom: bool, command_array: bool, run_toml: bool, exec_env: bool
) -> None:
    features = PlatformFeatures.for_api(api)
    assert (
        features.legacy_bom_label,
        features.command_is_array,
        features.run_toml_and_targets,
        features.exec_env_and_system,
    ) == (legacy_bom, command_array, run_toml, exec_env)


def test_features_are_frozen_values() -> None:
    features = BuildpackFeatures.for_api("0.12")
    assert features == BuildpackFeatures.for_api("0.12")
    with pytest.raises(AttributeError):
        features.exec_env = False  # type: ignore[misc]
