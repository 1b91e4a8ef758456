"""Stack images made from real Debian packages and checked with real tools: skopeo, umoci, bubblewrap.

tiny is built in seconds, so it is built several times. bookworm (mmdebstrap) is one test that reports
its timings: built cold, rebuilt from its cached tarballs, and the run image's mmdebstrap run once more.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from support.homes import use_stack_cache
from support.tools import Tool, require_tool

from lifecycle.backends.store import LocalStore
from lifecycle.platform.stack_mmdebstrap import Bootstrap, bootstrap
from lifecycle.platform.stacks import Role, StackResult, build_stack, load_stack

STACKS = Path(__file__).parents[2] / "stacks"
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def skopeo() -> Tool:
    return Tool(require_tool("skopeo", "skopeo"))


@pytest.fixture(scope="module")
def umoci() -> Tool:
    return Tool(require_tool("umoci", "umoci"))


@pytest.fixture(scope="module")
def bwrap() -> Tool:
    return Tool(require_tool("bwrap", "bubblewrap"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, StackResult]:
    require_tool("apt-get", "apt")
    store = LocalStore(tmp_path_factory.mktemp("tiny-home"))
    return store, build_stack(STACKS / "tiny", store, force=True)


def unpack(umoci: Tool, store: LocalStore, tag: str, dest: Path) -> Path:
    """The image's root filesystem, as umoci lays it out (``--rootless`` when not root)."""
    umoci(
        "unpack",
        *([] if ROOT else ["--rootless"]),
        "--image",
        f"{store.layout.root}:{tag}",
        dest,
        timeout=300,
    )
    return dest / "rootfs"


def sandbox(bwrap: Tool, rootfs: Path, *command: str) -> str:
    """Run ``command`` with ``rootfs`` as ``/``; bwrap needs its mount points to exist in the image."""
    userns = [] if ROOT else ["--unshare-user"]
    return str(bwrap(*userns, "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", *command).stdout)


def test_tiny_built_twice_in_two_homes_has_identical_digests(
    tiny: tuple[LocalStore, StackResult], tmp_path: Path
) -> None:
    _, first = tiny
    second = build_stack(STACKS / "tiny", LocalStore(tmp_path / "home"), force=True)
    assert second.digests == first.digests
    assert len(set(first.digests.values())) == 3  # build, run (= run-1), run-2


def test_skopeo_reads_the_base_labels_of_the_tiny_run_image(
    tiny: tuple[LocalStore, StackResult], skopeo: Tool
) -> None:
    store, result = tiny
    inspected = json.loads(skopeo("inspect", f"oci:{store.layout.root}:pybuild/run:tiny").stdout)
    labels = inspected["Labels"]
    assert inspected["Digest"] == result.digests["pybuild/run:tiny"]
    assert inspected["Os"] == "linux" and inspected["Architecture"]
    assert labels["io.buildpacks.base.id"] == labels["io.buildpacks.stack.id"] == "io.pybuild.stacks.tiny"
    assert labels["io.buildpacks.base.distro.name"] == "debian"
    assert labels["io.buildpacks.base.distro.version"] == "12"
    assert labels["io.buildpacks.base.released"] == inspected["Created"] == "2023-11-14T22:13:20Z"
    assert labels["io.buildpacks.rebasable"] == "true"
    packages = json.loads(labels["io.buildpacks.base.metadata"])["packages"]
    assert set(packages) == {"busybox-static", "bash-static"}


def test_tiny_run_image_runs_a_shell_under_bwrap(
    tiny: tuple[LocalStore, StackResult], umoci: Tool, bwrap: Tool, tmp_path: Path
) -> None:
    rootfs = unpack(umoci, tiny[0], "pybuild/run:tiny", tmp_path / "bundle")
    assert sandbox(bwrap, rootfs, "/bin/sh", "-c", "echo ok") == "ok\n"
    for mount_point in ("workspace", "layers", "platform", "cnb/buildpacks", "tmp", "proc", "dev", "sys"):
        assert (rootfs / mount_point).is_dir(), mount_point


def test_tiny_build_image_runs_bash_buildpacks_as_the_cnb_user(
    tiny: tuple[LocalStore, StackResult], umoci: Tool, bwrap: Tool, tmp_path: Path
) -> None:
    rootfs = unpack(umoci, tiny[0], "pybuild/build:tiny", tmp_path / "bundle")
    script = 'echo "$(id -un) ${BASH_VERSION%%.*}"; ls /bin/ls /usr/bin/env >/dev/null && echo applets'
    output = bwrap(
        "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "/usr/bin/env", "bash", "-c", script,
    ).stdout  # fmt: skip
    assert output == "cnb 5\napplets\n"


def test_tiny_run_versions_differ_by_the_patch_file_and_base_layer(
    tiny: tuple[LocalStore, StackResult], umoci: Tool, tmp_path: Path
) -> None:
    store, result = tiny
    v1 = unpack(umoci, store, "pybuild/run:tiny-1", tmp_path / "v1")
    v2 = unpack(umoci, store, "pybuild/run:tiny-2", tmp_path / "v2")
    assert "VERSION=1" in (v1 / "etc/pybuild-release").read_text()
    assert "VERSION=2" in (v2 / "etc/pybuild-release").read_text()
    assert result.image(Role.RUN).diff_id != result.image(Role.PATCHED_RUN).diff_id
    assert result.digests["pybuild/run:tiny"] == result.digests["pybuild/run:tiny-1"]


def test_bookworm_stack_is_reproducible_from_its_cache_and_runs_python(
    tmp_path: Path, umoci: Tool, bwrap: Tool, stack_cache: Path
) -> None:
    require_tool("mmdebstrap", "mmdebstrap")
    use_stack_cache(tmp_path / "home", stack_cache)  # cold here only if no earlier test bootstrapped
    store = LocalStore(tmp_path / "home")
    started = time.monotonic()
    cold = build_stack(STACKS / "bookworm", store, force=True)
    cold_seconds = time.monotonic() - started
    cached = build_stack(STACKS / "bookworm", store, force=True)
    cached_seconds = time.monotonic() - started - cold_seconds
    print(f"bookworm stack: cold {cold_seconds:.1f} s, from cached tarballs {cached_seconds:.1f} s")
    assert cached.digests == cold.digests
    assert cold.image(Role.RUN).diff_id != cold.image(Role.PATCHED_RUN).diff_id

    v1 = unpack(umoci, store, "pybuild/run:bookworm", tmp_path / "v1")
    v2 = unpack(umoci, store, "pybuild/run:bookworm-2", tmp_path / "v2")
    version = sandbox(bwrap, v1, "/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])")
    assert version == "(3, 11)\n"
    assert "VERSION=2" in (v2 / "etc/pybuild-release").read_text()
    assert (v2 / "etc/ssl/certs/ca-certificates.crt").is_file()  # the patch a user can see
    assert not (v1 / "etc/ssl/certs/ca-certificates.crt").exists()
    assert "cnb:x:1000:1000:" in (v1 / "etc/passwd").read_text()

    # mmdebstrap itself is reproducible: a second run of the run image's command, same tarball.
    spec = load_stack(STACKS / "bookworm")
    assert spec.mmdebstrap is not None
    run = Bootstrap.plan(spec.mmdebstrap, spec.run.packages, spec.user, spec.source_date_epoch)
    started = time.monotonic()
    again = bootstrap(run, tmp_path / "second-cache", lambda note: None)
    print(f"bookworm run image: second mmdebstrap {time.monotonic() - started:.1f} s")
    assert sha256_file(again) == sha256_file(store.home / "cache" / "stacks" / again.name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
