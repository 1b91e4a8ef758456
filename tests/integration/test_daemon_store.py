"""DaemonStore against our own dockerd 20.10: reads by inspect, saves only for layer bytes, sends new layers.

Images get fresh random seeds and tags per test, so layers other tests loaded into the session's
daemon never make a load smaller than the test expects.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dockerd import DockerDaemon
from support.images import OciImage, random_image, random_layer

from lifecycle.backends.daemon import DaemonStore
from lifecycle.backends.layout import Layout
from lifecycle.errors import ImageError, ImageNotFound
from lifecycle.oci.image import Image
from lifecycle.oci.mutate import append_layers
from lifecycle.oci.validate import validate


@pytest.fixture
def store(dockerd: DockerDaemon, tmp_path: Path) -> Iterator[DaemonStore]:
    daemon_store = DaemonStore(scratch=tmp_path / "saves")  # DOCKER_HOST points at the test daemon
    yield daemon_store
    daemon_store.close()


@pytest.fixture
def name() -> str:
    return f"daemon-test/{secrets.token_hex(4)}"


def fresh_image(layers: int = 3, size: int = 20_000) -> Image:
    return random_image(layers=layers, size=size, seed=secrets.randbelow(1 << 30))


class SaveCounter:
    """Counts ``docker save`` calls made through the SDK client."""

    def __init__(self, store: DaemonStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = store.client.api.get_image

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(store.client.api, "get_image", counted)


def test_written_image_reads_back_with_its_config_bytes_labels_and_diff_ids(
    store: DaemonStore, name: str
) -> None:
    image = fresh_image()

    image_id = store.write(image, [f"{name}:1"])
    reader = DaemonStore()
    again = reader.image(f"{name}:1")
    reader.close()

    assert image_id == image.config_descriptor.digest == store.resolve(f"{name}:1")
    assert again.raw_config == image.raw_config  # re-made from inspect, checked against the image ID
    assert again.labels == image.labels
    assert again.diff_ids == image.diff_ids
    assert f"{name}:1" in store.tags()


def test_a_written_image_runs_with_pull_never(
    store: DaemonStore, dockerd: DockerDaemon, busybox_image: OciImage, name: str
) -> None:
    store.write(Layout(busybox_image.layout).image(busybox_image.tag), [f"{name}:bb"])

    out = dockerd.cli("run", "--rm", "--pull", "never", f"{name}:bb", "echo", "hello from the daemon")

    assert out.stdout.strip() == "hello from the daemon"


def test_an_image_on_a_base_the_daemon_has_sends_only_its_new_layer(
    store: DaemonStore, dockerd: DockerDaemon, name: str
) -> None:
    base = fresh_image(layers=3, size=200_000)
    store.write(base, [f"{name}:base"])
    base_bytes = store.stats.load_bytes
    app = append_layers(base, [random_layer(size=1_000, seed=secrets.randbelow(1 << 30))])

    store.write(app, [f"{name}:app"])

    app_bytes = store.stats.load_bytes - base_bytes
    assert store.stats.load_attempts == [0, 3]
    assert app_bytes * 20 < base_bytes
    assert dockerd.client.images.get(f"{name}:app").attrs["RootFS"]["Layers"] == app.diff_ids


def test_writing_an_image_the_daemon_has_only_moves_tags(store: DaemonStore, name: str) -> None:
    image = fresh_image()
    store.write(image, [f"{name}:1"])

    image_id = store.write(image, [f"{name}:2"])

    assert store.stats.loads == 1
    assert store.stats.tag_only_writes == 1
    assert store.resolve(f"{name}:2") == image_id


def test_reading_labels_and_config_saves_nothing(
    store: DaemonStore, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(fresh_image(), [f"{name}:1"])
    saves = SaveCounter(store, monkeypatch)

    image = store.image(f"{name}:1")

    assert image.labels and image.config.config.env and image.diff_ids
    assert (saves.calls, store.stats.saves, store.stats.layer_bytes_read) == (0, 0, 0)


def test_reading_layers_saves_the_image_once(
    store: DaemonStore, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(fresh_image(layers=3), [f"{name}:1"])
    image = store.image(f"{name}:1")
    saves = SaveCounter(store, monkeypatch)

    for layer in image.layers:
        with layer.uncompressed() as stream:
            assert "sha256:" + hashlib.sha256(stream.read()).hexdigest() == layer.diff_id

    assert saves.calls == store.stats.saves == 1
    assert store.stats.layer_opens == 3


def test_a_reused_layer_over_a_changed_one_is_sent_from_a_save(store: DaemonStore, name: str) -> None:
    store.write(fresh_image(layers=2), [f"{name}:old"])
    old = store.image(f"{name}:old")
    rebuilt = append_layers(fresh_image(layers=1), [old.layers[1]])  # same diffID, new layer below

    store.write(rebuilt, [f"{name}:new"])

    assert store.stats.saves == 1
    assert store.image(f"{name}:new").diff_ids == rebuilt.diff_ids


def test_refused_placeholders_fall_back_to_a_full_archive(
    store: DaemonStore, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = fresh_image(layers=2)
    monkeypatch.setattr(store._chains, "present", lambda diff_ids, hints=(): len(diff_ids))

    image_id = store.write(image, [f"{name}:1"])

    assert store.stats.load_attempts == [2, 0]
    assert store.stats.fallbacks == 1
    assert store.resolve(f"{name}:1") == image_id


def test_an_image_pybuild_did_not_make_reads_and_materializes_to_its_own_bytes(
    store: DaemonStore, dockerd: DockerDaemon, busybox_image: OciImage, name: str, tmp_path: Path
) -> None:
    store.write(Layout(busybox_image.layout).image(busybox_image.tag), [f"{name}:bb"])
    container = f"commit-{secrets.token_hex(4)}"
    dockerd.cli("run", "--name", container, "--pull", "never", f"{name}:bb", "sh", "-c", "echo hi > /hi")
    dockerd.cli("commit", "--change", "LABEL io.example.made-by=docker", container, f"{name}:committed")
    dockerd.cli("rm", container)

    image = store.image(f"{name}:committed")

    assert not store.is_exact(image)
    assert image.labels == {"io.example.made-by": "docker"}
    real = store.materialize(image, tmp_path / "blobs")
    validate(real)
    assert real.config_descriptor.digest == store.resolve(f"{name}:committed")
    assert "container_config" in json.loads(real.raw_config)  # docker's own fields, kept


def test_a_materialized_image_writes_to_a_layout_and_validates(
    store: DaemonStore, name: str, tmp_path: Path
) -> None:
    image = fresh_image(layers=2)
    store.write(image, [f"{name}:1"])

    real = store.materialize(store.image(f"{name}:1"), tmp_path / "blobs")
    layout = Layout(tmp_path / "layout", create=True)
    layout.write(real, ["copy"])

    validate(layout.image("copy"))
    assert real.raw_config == image.raw_config
    assert [layer.media_type for layer in real.layers] == [layer.media_type for layer in image.layers]


def test_a_missing_image_is_image_not_found(store: DaemonStore, name: str) -> None:
    with pytest.raises(ImageNotFound, match=f"failed to find image {name}:1: no such image in the docker"):
        store.image(f"{name}:1")
    with pytest.raises(ImageNotFound):
        store.delete(f"{name}:1")
    assert store.resolve(f"{name}:1") is None


def test_a_digest_reference_cannot_be_written_as_a_tag(store: DaemonStore, name: str) -> None:
    with pytest.raises(ImageError, match="use name:tag"):
        store.write(fresh_image(), [f"{name}@sha256:" + "0" * 64])
    assert store.stats.loads == 0


def test_delete_removes_a_tag_and_keeps_the_others(store: DaemonStore, name: str) -> None:
    image_id = store.write(fresh_image(), [f"{name}:1", f"{name}:2"])

    store.delete(f"{name}:1")

    assert store.resolve(f"{name}:1") is None
    assert store.resolve(f"{name}:2") == image_id


def test_the_current_docker_context_names_the_daemon(
    dockerd: DockerDaemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"pybuild-test").hexdigest() / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"docker": {"Host": dockerd.host}}
    meta.write_text(json.dumps({"Name": "pybuild-test", "Metadata": {}, "Endpoints": endpoint}))
    (config / "config.json").write_text(json.dumps({"currentContext": "pybuild-test"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST")

    store = DaemonStore()

    assert store.host == dockerd.host
    assert isinstance(store.tags(), list)
    store.close()
