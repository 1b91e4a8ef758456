"""What ``pybuild build`` reads off its build and run images before it runs anything.

The build image's user (``CNB_USER_ID``/``CNB_GROUP_ID``) and env are what the buildpacks run
with; the run image's os, architecture and distro labels are the target they are told of; the
two must be for the same platform (ANA-4), the run image an extension switched to as well.
"""

from __future__ import annotations

import os

from lifecycle.errors import ConfigError, ExitCode
from lifecycle.execution.executor import TargetInfo
from lifecycle.oci.image import Image

__all__ = ["check_platform", "image_user", "sandbox_env", "target_info"]


def _env_int(image: Image, name: str, default: int) -> int:
    value = image.config.config.env_dict().get(name)
    return int(value) if value and value.isdigit() else default


def image_user(build_image: Image) -> tuple[int, int]:
    """The uid and gid the build image names, 1000 for either it does not."""
    return _env_int(build_image, "CNB_USER_ID", 1000), _env_int(build_image, "CNB_GROUP_ID", 1000)


def target_info(run_image: Image) -> TargetInfo:
    labels = run_image.labels
    return TargetInfo(
        os=run_image.config.os,
        arch=run_image.config.architecture,
        arch_variant=run_image.config.variant,
        distro_name=labels.get("io.buildpacks.base.distro.name"),
        distro_version=labels.get("io.buildpacks.base.distro.version"),
    )


def check_platform(build_image: Image, run_image: Image, run_name: str) -> None:
    """The app runs what the build image built: their os and architecture must agree (ANA-4)."""
    b, r = build_image.config, run_image.config
    if (b.os, b.architecture) != (r.os, r.architecture):
        raise ConfigError(
            "choose run image",
            f"{run_name} is {r.os}/{r.architecture} but the build image is {b.os}/{b.architecture} "
            "(use a run image for the same platform)",
            exit_code=ExitCode.ANALYZE,
        )


def sandbox_env(build_image: Image, executor: str) -> dict[str, str]:
    """The build image's env for sandboxed runs; this process's env for the host runner."""
    if executor == "host":
        return dict(os.environ)
    env = build_image.config.config.env_dict()
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/home/cnb")
    return env
