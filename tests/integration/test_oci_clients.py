"""Real clients read what our OCI core writes: skopeo, umoci and docker (load, then run).

Images are built in the test with ``LayerTar``/``write_layer``; the busybox image is a static
/bin/busybox plus a /bin/sh symlink, so docker can run it with no registry and no pull.
"""

from __future__ import annotations

import json
import os
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dockerd import DockerDaemon
from support.images import BUSYBOX, CREATED, random_image
from support.tools import Tool, unavailable

from lifecycle.backends.archive import write_docker_archive
from lifecycle.backends.layout import Layout
from lifecycle.backends.store import LocalStore
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.models import ContainerConfig, History, ImageConfig
from lifecycle.oci.mutate import append_layers, new_image, set_annotations, set_labels
from lifecycle.oci.tarball import LayerTar
from lifecycle.oci.validate import validate

LABELS = {"io.buildpacks.stack.id": "io.pybuild.tiny", "org.example.café": "☕ yes"}


def busybox_image(scratch: Path) -> Image:
    """A runnable image: /bin/busybox, /bin/sh -> busybox, an app script in a second layer."""
    if not BUSYBOX.is_file():
        unavailable(f"{BUSYBOX} is missing: apt-get install busybox-static")

    def rootfs(tar: LayerTar) -> None:
        for directory in ("/bin", "/etc", "/tmp", "/proc", "/dev", "/sys"):
            tar.add_dir(directory, 0o1777 if directory == "/tmp" else 0o755)
        tar.add_tree(BUSYBOX, "/bin/busybox")
        tar.add_symlink("/bin/sh", "busybox")
        tar.add_symlink("/bin/echo", "busybox")
        tar.add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\n")

    def app(tar: LayerTar) -> None:
        tar.add_parents("/workspace/hello.sh")
        tar.add_file("/workspace/hello.sh", b'#!/bin/sh\necho "hello from pybuild as $(id -u), $1"\n', 0o755)

    config = ImageConfig(
        created=CREATED,
        config=ContainerConfig(env=["PATH=/bin"], entrypoint=["/workspace/hello.sh"], cmd=["no args"]),
        history=[History(created=CREATED, created_by="busybox rootfs")],
    )
    base = new_image(config, [write_layer(scratch, rootfs)])
    image = append_layers(base, [write_layer(scratch, app, uid=1000, gid=1000)], ["app"])
    return set_labels(image, LABELS)


def layered_image(scratch: Path) -> Image:
    """Three layers exercising what unpackers must get right: hard links, symlinks, whiteouts."""

    def lower(tar: LayerTar) -> None:
        tar.add_parents("/app/doomed.txt")
        tar.add_file("/app/doomed.txt", b"deleted by the layer above\n")
        tar.add_file("/app/kept.txt", b"kept\n", 0o600)
        tar.add_dir("/app/olddir")
        tar.add_file("/app/olddir/inner", b"gone too\n")

    def middle(tar: LayerTar) -> None:
        tar.add_parents("/app/x")
        tar.add_whiteout("/app/doomed.txt")
        tar.add_whiteout("/app/olddir")
        tar.add_symlink("/app/link", "kept.txt")

    tree = scratch / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_text("#!/bin/sh\n")
    (tree / "bin" / "tool").chmod(0o755)
    os.link(tree / "bin" / "tool", tree / "bin" / "tool-alias")
    layers = [
        write_layer(scratch, lower),
        write_layer(scratch, middle),
        write_layer(scratch, lambda tar: tar.add_tree(tree, "/opt/pkg"), uid=1000, gid=1000),
    ]
    return new_image(ImageConfig(created=CREATED, config=ContainerConfig(labels=LABELS)), layers)


# -- skopeo --------------------------------------------------------------------------------------


def test_skopeo_inspect_shows_our_digest_labels_and_layers(skopeo: Tool, tmp_path: Path) -> None:
    image = set_annotations(
        set_labels(random_image(layers=2), LABELS), {"org.opencontainers.image.title": "t"}
    )
    layout = Layout(tmp_path / "oci", create=True)
    layout.write(image, ["app"])
    report = json.loads(skopeo("inspect", f"oci:{layout.root}:app").stdout)
    assert report["Digest"] == image.digest
    assert report["Labels"] == {**LABELS, "org.example.seed": "0"}
    assert report["Layers"] == [layer.digest for layer in image.layers]
    assert (report["Architecture"], report["Os"], report["Created"]) == ("amd64", "linux", CREATED)


def test_skopeo_reads_the_local_store_by_name_and_tag(skopeo: Tool) -> None:
    store = LocalStore()
    image = random_image(seed=8)
    store.write(image, ["myapp"])
    raw = skopeo("inspect", "--raw", f"oci:{store.layout.root}:myapp:latest").stdout
    assert raw.encode() == image.raw_manifest
    config = skopeo("inspect", "--config", "--raw", f"oci:{store.layout.root}:myapp:latest").stdout
    assert config.encode() == image.raw_config


def test_skopeo_copy_between_layouts_keeps_our_digest_and_we_read_it_back(
    skopeo: Tool, tmp_path: Path
) -> None:
    image = layered_image(tmp_path / "scratch")
    Layout(tmp_path / "src", create=True).write(image, ["app"])
    skopeo("copy", f"oci:{tmp_path / 'src'}:app", f"oci:{tmp_path / 'dest'}:copied")
    copied = Layout(tmp_path / "dest").image("copied")
    assert copied.digest == image.digest
    validate(copied)


@pytest.mark.parametrize("gzip_layers", [True, False], ids=["gzip-layers", "plain-layers"])
def test_skopeo_reads_our_docker_archive_and_its_copy_validates(
    skopeo: Tool, tmp_path: Path, gzip_layers: bool
) -> None:
    image = layered_image(tmp_path / "scratch")
    with (tmp_path / "archive.tar").open("wb") as out:
        write_docker_archive(image, ["app:1"], out, gzip_layers=gzip_layers)
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{tmp_path / 'archive.tar'}").stdout)
    assert config["rootfs"]["diff_ids"] == image.diff_ids
    skopeo("copy", f"docker-archive:{tmp_path / 'archive.tar'}", f"oci:{tmp_path / 'copy'}:app")
    copied = Layout(tmp_path / "copy").image("app")
    assert copied.diff_ids == image.diff_ids
    validate(copied)


# -- umoci ---------------------------------------------------------------------------------------


def test_umoci_unpacks_links_and_whiteouts_as_we_wrote_them(umoci: Tool, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci", create=True)
    layout.write(layered_image(tmp_path / "scratch"), ["app"])
    bundle = tmp_path / "bundle"
    umoci("unpack", "--image", f"{layout.root}:app", bundle)
    rootfs = bundle / "rootfs"
    assert (rootfs / "app" / "kept.txt").read_text() == "kept\n"
    assert (rootfs / "app" / "kept.txt").stat().st_mode & 0o777 == 0o600
    assert not (rootfs / "app" / "doomed.txt").exists()
    assert not (rootfs / "app" / "olddir").exists()
    assert os.readlink(rootfs / "app" / "link") == "kept.txt"
    tool, alias = rootfs / "opt" / "pkg" / "bin" / "tool", rootfs / "opt" / "pkg" / "bin" / "tool-alias"
    assert tool.stat().st_ino == alias.stat().st_ino
    assert (tool.stat().st_uid, tool.stat().st_gid, tool.stat().st_mode & 0o777) == (1000, 1000, 0o755)
    config = json.loads((bundle / "config.json").read_text())
    assert config["annotations"]["org.opencontainers.image.created"] == CREATED


# -- docker --------------------------------------------------------------------------------------


@pytest.fixture
def loaded(dockerd: DockerDaemon) -> Iterator[list[str]]:
    """Names the test loads into the daemon; removed afterwards, as the daemon may be shared."""
    names: list[str] = []
    yield names
    for name in names:
        dockerd.cli("image", "rm", "--force", name, check=False)


def docker_load(dockerd: DockerDaemon, image: Image, tag: str, archive: Path, *, gzip_layers: bool) -> None:
    with archive.open("wb") as out:
        write_docker_archive(image, [tag], out, gzip_layers=gzip_layers)
    result = dockerd.cli("load", "--input", archive)
    assert f"Loaded image: {tag}" in result.stdout


@pytest.mark.parametrize("gzip_layers", [True, False], ids=["gzip-layers", "plain-layers"])
def test_docker_loads_our_archive_and_runs_the_busybox_image(
    dockerd: DockerDaemon, loaded: list[str], tmp_path: Path, gzip_layers: bool
) -> None:
    image = busybox_image(tmp_path / "scratch")
    tag = f"pybuild-test/busybox-app:{secrets.token_hex(4)}"
    loaded.append(tag)
    docker_load(dockerd, image, tag, tmp_path / "archive.tar", gzip_layers=gzip_layers)
    run = dockerd.cli(
        "run", "--rm", "--pull", "never", "--network", "none", "--user", "1000", tag, "from docker"
    )
    assert run.stdout == "hello from pybuild as 1000, from docker\n"


def test_docker_sees_our_config_digest_diff_ids_and_labels(
    dockerd: DockerDaemon, loaded: list[str], tmp_path: Path
) -> None:
    image = busybox_image(tmp_path / "scratch")
    tag = f"pybuild-test/busybox-app:{secrets.token_hex(4)}"
    loaded.append(tag)
    docker_load(dockerd, image, tag, tmp_path / "archive.tar", gzip_layers=True)
    (inspect,) = json.loads(dockerd.cli("image", "inspect", tag).stdout)
    assert inspect["Id"] == image.config_descriptor.digest
    assert inspect["RootFS"]["Layers"] == image.diff_ids
    assert inspect["Config"]["Labels"] == LABELS
    assert inspect["Config"]["Entrypoint"] == ["/workspace/hello.sh"]


def test_docker_save_of_our_image_gives_back_our_layers(
    dockerd: DockerDaemon, loaded: list[str], tmp_path: Path
) -> None:
    image = busybox_image(tmp_path / "scratch")
    tag = f"pybuild-test/busybox-app:{secrets.token_hex(4)}"
    loaded.append(tag)
    docker_load(dockerd, image, tag, tmp_path / "archive.tar", gzip_layers=True)
    dockerd.cli("save", "--output", tmp_path / "saved.tar", tag)
    with tarfile.open(tmp_path / "saved.tar") as saved:
        manifest_file = saved.extractfile("manifest.json")
        assert manifest_file is not None
        (entry,) = json.load(manifest_file)
    assert entry["RepoTags"] == [tag]
    assert len(entry["Layers"]) == len(image.layers)
