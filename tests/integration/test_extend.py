"""Extension Dockerfiles applied for real: RUN under bwrap in a user namespace, layers from the changes.

The tiny stack (busybox) covers the engine quickly; the bookworm run image shows an extension
installing a Debian package with apt-get from the configured mirror, reproducibly.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.homes import use_stack_cache
from support.tools import Tool, require_root, require_tool

from lifecycle.backends.store import LocalStore
from lifecycle.cnb.dockerfile import parse_dockerfile
from lifecycle.errors import ExtendError, ImageNotFound
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.phases.extend import DockerfileStep, ExtendResult, extend_image
from lifecycle.platform.stacks import Role, build_stack

STACKS = Path(__file__).parents[2] / "stacks"


@pytest.fixture(autouse=True)
def _as_root() -> None:
    require_root("the id-range user namespace needs root")


def stack_images(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path, name: str) -> dict[Role, Image]:
    require_tool("apt-get", "apt")
    home = tmp_path_factory.mktemp(f"extend-{name}-home")
    use_stack_cache(home, stack_cache)
    store = LocalStore(home)
    result = build_stack(STACKS / name, store)
    return {role: store.image(result.image(role).tags[0]) for role in (Role.BUILD, Role.RUN)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path, bwrap: Tool) -> dict[Role, Image]:
    return stack_images(tmp_path_factory, stack_cache, "tiny")


def step(
    tmp_path: Path, text: str, *, kind: str = "run", ext: str = "acme/ext", **args: str
) -> DockerfileStep:
    out = tmp_path / "generated" / ext.replace("/", "_")
    context = out / "context"
    context.mkdir(parents=True, exist_ok=True)
    (out / f"{kind}.Dockerfile").write_text(text)
    dockerfile = parse_dockerfile(out / f"{kind}.Dockerfile", kind=kind)  # type: ignore[arg-type]
    return DockerfileStep(dockerfile, context, ext, args)


def extend(
    tmp_path: Path,
    base: Image,
    steps: Sequence[DockerfileStep],
    kind: str = "run",
    name: str = "scratch",
    **kw: object,
) -> ExtendResult:
    return extend_image(
        base,
        steps,
        kind=kind,  # type: ignore[arg-type]
        scratch=tmp_path / name,
        rootfs_cache=tmp_path / "rootfs-cache",
        uid=1000,
        gid=1000,
        output=print,
        **kw,  # type: ignore[arg-type]
    )


def entries(layer: Layer) -> dict[str, tarfile.TarInfo]:
    with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return {member.name: member for member in tar}


def file_in(layer: Layer, name: str) -> bytes:
    with layer.uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name == name:
                extracted = tar.extractfile(member)
                assert extracted is not None
                return extracted.read()
    raise AssertionError(f"{name} not in layer")


RUN_DOCKERFILE = """\
ARG base_image
FROM ${base_image}
ARG user_id
ARG group_id
ARG greeting=hello
USER root
RUN mkdir -p /opt/ext && echo "$greeting from $(id -u)" > /opt/ext/made && chown 1000:1000 /opt/ext/made \\
    && rm /etc/pybuild-release && ln -s made /opt/ext/link
COPY files/ /opt/ext/copied/
COPY --chown=cnb --chmod=0600 secret.txt /opt/ext/
ENV EXTENDED=yes PATH=/opt/ext:${PATH}
LABEL io.buildpacks.rebasable=true
WORKDIR /opt/ext
USER ${user_id}:${group_id}
"""


def run_step(tmp_path: Path) -> DockerfileStep:
    extension = step(tmp_path, RUN_DOCKERFILE, greeting="hi")
    (extension.context / "files").mkdir()
    (extension.context / "files" / "a.txt").write_text("copied a\n")
    (extension.context / "secret.txt").write_text("s3cret\n")
    return extension


def test_run_dockerfile_changes_become_one_layer_with_image_owners_and_whiteouts(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    base = tiny[Role.RUN]

    result = extend(tmp_path, base, [run_step(tmp_path)])

    assert len(result.layers) == 1 and result.image.layers == (*base.layers, *result.layers)
    found = entries(result.layers[0])
    assert file_in(result.layers[0], "/opt/ext/made") == b"hi from 0\n"
    assert (found["/opt/ext/made"].uid, found["/opt/ext/made"].gid) == (1000, 1000)
    assert found["/opt/ext/link"].issym() and found["/opt/ext/link"].linkname == "made"
    assert "/etc/.wh.pybuild-release" in found
    assert (found["/opt/ext/copied/a.txt"].uid, found["/opt/ext/copied/a.txt"].mode) == (0, 0o644)
    secret = found["/opt/ext/secret.txt"]
    assert (secret.uid, secret.gid, secret.mode) == (1000, 1000, 0o600)
    assert {member.mtime for member in found.values()} == {315532801}
    assert all(member.uname == "" and member.gname == "" for member in found.values())
    assert list(found) == sorted(found, key=lambda name: name.split("/"))
    assert not any(name.startswith(("/tmp/", "/proc/", "/dev/")) for name in found)


def test_run_dockerfile_edits_the_config_and_keeps_an_opted_in_image_rebasable(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    result = extend(tmp_path, tiny[Role.RUN], [run_step(tmp_path)])

    config = result.image.config.config
    assert config.user == "1000:1000"
    assert config.env_dict()["EXTENDED"] == "yes"
    assert config.env_dict()["PATH"].startswith("/opt/ext:/")
    assert config.working_dir == "/opt/ext"
    assert result.rebasable and result.image.labels["io.buildpacks.rebasable"] == "true"
    assert result.image.config.history is not None
    assert result.image.config.history[-1].created_by == "pybuild extend: run.Dockerfile of acme/ext"


def test_same_dockerfile_twice_gives_the_same_image_digest(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    first = extend(tmp_path / "one", tiny[Role.RUN], [run_step(tmp_path / "one")])
    second = extend(tmp_path / "two", tiny[Role.RUN], [run_step(tmp_path / "two")])

    assert first.layers[0].digest == second.layers[0].digest
    assert first.image.digest == second.image.digest


def test_extending_never_changes_the_shared_rootfs_cache(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    cached = rootfs_cache(tiny[Role.RUN], tmp_path / "rootfs-cache")
    before = tree_state(cached)

    extend(tmp_path, tiny[Role.RUN], [run_step(tmp_path)])

    assert tree_state(cached) == before


def tree_state(root: Path) -> str:
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files) + dirs:
            st = os.lstat(os.path.join(directory, name))
            digest.update(
                f"{directory}/{name} {st.st_mode} {st.st_uid} {st.st_mtime_ns} {st.st_size}\n".encode()
            )
    return digest.hexdigest()


def test_run_dockerfile_that_does_not_opt_in_makes_the_run_image_not_rebasable(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    opted = run_step(tmp_path)
    silent = step(tmp_path, "ARG base_image\nFROM ${base_image}\nENV X=1\n", ext="acme/silent")

    result = extend(tmp_path, tiny[Role.RUN], [opted, silent])

    assert not result.rebasable
    assert result.image.labels["io.buildpacks.rebasable"] == "false"
    assert len(result.layers) == 1  # ENV alone adds no layer


def test_later_dockerfile_sees_earlier_changes_and_gets_the_user_args(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    first = step(
        tmp_path, "FROM ${base_image}\nUSER root\nRUN echo one > /first\nUSER 1000:1000\n", ext="a/one"
    )
    second = step(
        tmp_path,
        "FROM ${base_image}\nARG user_id\nARG build_id=0\nUSER root\n"
        'RUN test -f /first && echo "$user_id $build_id" > /second && rm /first\nUSER 1000:1000\n',
        ext="a/two",
        build_id="fixed",
    )

    result = extend(tmp_path, tiny[Role.RUN], [first, second])

    assert len(result.layers) == 2
    assert file_in(result.layers[1], "/second") == b"1000 fixed\n"
    assert "/.wh.first" in entries(result.layers[1])


def test_failing_run_is_an_extend_error_naming_dockerfile_line_and_status(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    failing = step(tmp_path, "FROM ${base_image}\nUSER root\nRUN echo about to fail && exit 7\n")

    with pytest.raises(ExtendError) as raised:
        extend(tmp_path, tiny[Role.RUN], [failing])

    assert raised.value.exit_code == 102
    message = str(raised.value)
    assert f"{failing.dockerfile.path} line 3 (RUN)" in message and "exited with status 7" in message
    assert not list((tmp_path / "scratch").glob(".extend-*"))


def test_run_as_the_image_user_cannot_write_root_files(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    unprivileged = step(tmp_path, "FROM ${base_image}\nRUN touch /etc/owned\n")

    with pytest.raises(ExtendError, match="exited with status 1"):
        extend(tmp_path, tiny[Role.RUN], [unprivileged])


def test_copy_from_outside_the_context_is_refused(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    outside = tmp_path / "host-secret"
    outside.write_text("no\n")
    escaping = step(tmp_path, "FROM ${base_image}\nCOPY leak /leak\n")
    (escaping.context / "leak").symlink_to(outside)

    with pytest.raises(ExtendError, match="line 2 \\(COPY\\): source 'leak' leads outside"):
        extend(tmp_path, tiny[Role.RUN], [escaping])


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_add_unpacks_a_local_archive_into_the_image(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    adding = step(tmp_path, "FROM ${base_image}\nUSER root\nADD tools.tgz /opt/tools/\nUSER 1000:1000\n")
    _tar(adding.context / "tools.tgz", {"bin/tool": b"#!/bin/sh\n", "README": b"tools\n"})

    result = extend(tmp_path, tiny[Role.RUN], [adding])

    assert file_in(result.layers[0], "/opt/tools/README") == b"tools\n"
    assert "/opt/tools/bin/tool" in entries(result.layers[0])


def test_add_of_an_archive_escaping_its_target_is_refused(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    adding = step(tmp_path, "FROM ${base_image}\nUSER root\nADD evil.tgz /opt/\nUSER 1000:1000\n")
    _tar(adding.context / "evil.tgz", {"../../etc/evil": b"x"})

    with pytest.raises(ExtendError, match=r"cannot unpack evil\.tgz") as raised:
        extend(tmp_path, tiny[Role.RUN], [adding])

    assert raised.value.exit_code == 102


def test_run_image_left_as_root_is_refused(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    rooted = step(tmp_path, "FROM ${base_image}\nLABEL io.buildpacks.rebasable=true\nUSER root\n")

    with pytest.raises(ExtendError, match=r"its user is root after the last run\.Dockerfile") as raised:
        extend(tmp_path, tiny[Role.RUN], [rooted])

    assert raised.value.exit_code == 102


def test_build_image_may_stay_root_and_is_not_labelled(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    build = step(
        tmp_path, "ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /built\n", kind="build"
    )

    result = extend(tmp_path, tiny[Role.BUILD], [build], kind="build")

    assert result.image.config.config.user == "root"
    assert (
        "io.buildpacks.rebasable" not in result.image.labels or result.image.labels == tiny[Role.BUILD].labels
    )
    assert file_in(result.layers[0], "/built") == b"x\n"


def test_switch_to_a_missing_run_image_names_the_from_line(tmp_path: Path, tiny: dict[Role, Image]) -> None:
    first = step(tmp_path, "FROM ${base_image}\nENV A=1\n", ext="a/one")
    switch = step(tmp_path, "FROM pybuild/run:nowhere\n", ext="a/switch")

    def resolve(name: str) -> Image:
        raise ImageNotFound(f"find image {name}", "no such image in the local store")

    with pytest.raises(ExtendError, match="line 1: FROM image 'pybuild/run:nowhere' not found") as raised:
        extend(tmp_path, tiny[Role.RUN], [first, switch], resolve=resolve)

    assert raised.value.exit_code == 102


def test_switch_applies_only_the_dockerfiles_from_the_switch_on(
    tmp_path: Path, tiny: dict[Role, Image]
) -> None:
    ignored = step(tmp_path, "FROM ${base_image}\nENV IGNORED=1\n", ext="a/one")
    switch = step(tmp_path, "FROM pybuild/run:tiny-2\nLABEL io.buildpacks.rebasable=true\n", ext="a/switch")

    result = extend(tmp_path, tiny[Role.RUN], [ignored, switch], resolve=lambda name: tiny[Role.RUN])

    assert "IGNORED" not in result.image.config.config.env_dict()
    assert result.rebasable


@pytest.fixture(scope="module")
def bookworm(tmp_path_factory: pytest.TempPathFactory, stack_cache: Path, bwrap: Tool) -> dict[Role, Image]:
    require_tool("mmdebstrap", "mmdebstrap")
    return stack_images(tmp_path_factory, stack_cache, "bookworm")


APT_DOCKERFILE = """\
ARG base_image
FROM ${base_image}
ARG user_id
ARG group_id
USER root
RUN apt-get update && apt-get install -y --no-install-recommends hello && hello
LABEL io.buildpacks.rebasable=true
USER ${user_id}:${group_id}
"""


def test_extension_installs_a_debian_package_in_the_bookworm_run_image_reproducibly(
    tmp_path: Path, bookworm: dict[Role, Image]
) -> None:
    first = extend(tmp_path / "one", bookworm[Role.RUN], [step(tmp_path / "one", APT_DOCKERFILE)])
    second = extend(tmp_path / "two", bookworm[Role.RUN], [step(tmp_path / "two", APT_DOCKERFILE)])

    assert first.image.digest == second.image.digest
    found = entries(first.layers[0])
    assert "/usr/bin/hello" in found and found["/usr/bin/hello"].mode == 0o755
    assert b"Package: hello\nStatus: install ok installed" in file_in(first.layers[0], "/var/lib/dpkg/status")
    assert not any(name.startswith(("/var/lib/apt/lists/", "/var/cache/apt/", "/var/log/")) for name in found)
    assert first.image.config.config.user == bookworm[Role.RUN].config.config.user
