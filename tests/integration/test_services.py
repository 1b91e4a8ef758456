"""The real services and clients the integration suite stands on work on this machine.

If one of these fails, every integration test that uses the same fixture is suspect.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.dockerd import DockerDaemon
from support.images import BUSYBOX, OciImage
from support.registry import Credentials, Registry, RegistryFactory
from support.tools import Tool, unavailable


@pytest.fixture(scope="module")
def daemon_image(dockerd: DockerDaemon, busybox_rootfs: Path) -> Iterator[str]:
    """The busybox rootfs imported into the daemon; removed afterwards for a shared daemon's sake."""
    reference = f"pybuild-test/busybox:{secrets.token_hex(4)}"
    dockerd.cli("import", "--change", 'CMD ["/bin/sh"]', busybox_rootfs, reference)
    yield reference
    dockerd.client.images.remove(reference)


def push(skopeo: Tool, image: OciImage, destination: str, *flags: str) -> None:
    skopeo("copy", *flags, f"oci:{image.reference}", f"docker://{destination}")


def test_missing_prerequisite_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must not be skipped"):
        unavailable("thing missing")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="thing missing"):
        unavailable("thing missing")


def test_env_points_only_at_test_owned_places(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert "DOCKER_HOST" not in os.environ
    assert Path(os.environ["PYBUILD_HOME"]).is_relative_to(tmp_path_factory.getbasetemp())


def test_dockerd_answers_version(dockerd: DockerDaemon) -> None:
    server = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        env=dockerd.env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert server.stdout.strip() == dockerd.client.version()["Version"]
    assert os.environ["DOCKER_HOST"] == dockerd.host


def test_docker_runs_imported_busybox_image(dockerd: DockerDaemon, daemon_image: str) -> None:
    result = dockerd.cli("run", "--rm", "--pull", "never", daemon_image, "echo", "hello from busybox")

    assert result.stdout == "hello from busybox\n"


def test_registry_access_log_shows_blob_and_manifest_puts_of_a_push(
    registry: Registry, skopeo: Tool, busybox_image: OciImage
) -> None:
    mark = registry.log_mark()

    push(skopeo, busybox_image, f"{registry.host}/services/oci:1", "--dest-tls-verify=false")

    entries = registry.access_log(since=mark)
    puts = [entry for entry in entries if entry.method == "PUT" and entry.status == 201]
    assert {entry.query.get("digest") for entry in puts if "/blobs/uploads/" in entry.path} == {
        busybox_image.layer_digest,
        busybox_image.config_digest,
    }
    assert [entry.path for entry in puts if "/manifests/" in entry.path] == ["/v2/services/oci/manifests/1"]
    pushed = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/services/oci:1").stdout
    )
    assert pushed["Digest"] == busybox_image.manifest_digest


def test_registry_access_log_counts_bytes_of_blob_downloads(
    registry: Registry, skopeo: Tool, busybox_image: OciImage, tmp_path: Path
) -> None:
    push(skopeo, busybox_image, f"{registry.host}/services/pull:1", "--dest-tls-verify=false")
    mark = registry.log_mark()

    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/services/pull:1", f"oci:{tmp_path}:1")

    layer_path = f"/v2/services/pull/blobs/{busybox_image.layer_digest}"
    downloads = [entry for entry in registry.access_log(since=mark) if entry.path == layer_path]
    layer_size = (
        (busybox_image.layout / "blobs/sha256" / busybox_image.layer_digest.removeprefix("sha256:"))
        .stat()
        .st_size
    )
    assert [(entry.method, entry.status, entry.size) for entry in downloads] == [("GET", 200, layer_size)]


def test_skopeo_copies_daemon_image_to_registry(
    dockerd: DockerDaemon, daemon_image: str, registry: Registry, skopeo: Tool
) -> None:
    destination = f"docker://{registry.host}/services/daemon:1"

    skopeo(
        "copy",
        f"--src-daemon-host={dockerd.host}",
        "--dest-tls-verify=false",
        f"docker-daemon:{daemon_image}",
        destination,
    )

    raw_config = skopeo("inspect", "--tls-verify=false", "--config", "--raw", destination).stdout.encode()
    assert "sha256:" + hashlib.sha256(raw_config).hexdigest() == dockerd.client.images.get(daemon_image).id


def test_htpasswd_registry_rejects_anonymous_and_accepts_credentials(
    registry_factory: RegistryFactory, skopeo: Tool, busybox_image: OciImage
) -> None:
    secured = registry_factory(auth=True)
    assert secured.credentials is not None
    destination = f"{secured.host}/services/auth:1"

    assert secured.status("/v2/") == 401
    assert secured.status("/v2/", Credentials(secured.credentials.username, "wrong")) == 401
    assert secured.status("/v2/", secured.credentials) == 200
    anonymous = skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{busybox_image.reference}",
        f"docker://{destination}",
        check=False,
    )
    assert anonymous.returncode != 0
    assert "unauthorized" in anonymous.stderr
    push(
        skopeo,
        busybox_image,
        destination,
        "--dest-tls-verify=false",
        f"--dest-creds={secured.credentials.colon_pair}",
    )


def test_tls_registry_is_trusted_only_with_its_ca(
    registry_factory: RegistryFactory, skopeo: Tool, busybox_image: OciImage
) -> None:
    secured = registry_factory(tls=True)
    destination = f"{secured.host}/services/tls:1"

    untrusted = skopeo("copy", f"oci:{busybox_image.reference}", f"docker://{destination}", check=False)
    assert untrusted.returncode != 0
    assert "certificate signed by unknown authority" in untrusted.stderr
    push(skopeo, busybox_image, destination, f"--dest-cert-dir={secured.cert_dir}")
    tags = skopeo(
        "list-tags", f"--cert-dir={secured.cert_dir}", f"docker://{secured.host}/services/tls"
    ).stdout
    assert json.loads(tags)["Tags"] == ["1"]
    assert secured.status("/v2/services/tls/tags/list") == 200


def test_umoci_unpacks_the_busybox_layout(umoci: Tool, busybox_image: OciImage, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    rootless = ["--rootless"] if os.geteuid() != 0 else []

    umoci("unpack", *rootless, "--image", busybox_image.reference, bundle)

    assert (bundle / "rootfs/bin/busybox").read_bytes() == BUSYBOX.read_bytes()
    assert os.readlink(bundle / "rootfs/bin/sh") == "busybox"


def test_bwrap_runs_a_command_in_the_busybox_rootfs(
    bwrap: Tool, busybox_rootfs: Path, tmp_path: Path
) -> None:
    with tarfile.open(busybox_rootfs) as rootfs:
        rootfs.extractall(tmp_path, filter="tar")

    result = bwrap(
        *("--ro-bind", tmp_path, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all"),
        *("--clearenv", "--setenv", "PATH", "/bin", "sh", "-c", "echo hello from $(cat /proc/1/comm)"),
    )

    assert result.stdout == "hello from bwrap\n"
