"""The daemon backend's pure parts: re-made configs, chain IDs, placeholder archives, host choice, errors.

No daemon here; tests/integration/test_daemon_store.py runs the store against a real dockerd.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.images import random_image, random_layer

from lifecycle.backends.daemon import DEFAULT_HOST, DaemonStore, docker_params, is_local_host
from lifecycle.backends.daemon.config import remade_config
from lifecycle.backends.daemon.load import LayerChains, chain_ids, load_archive, load_errors
from lifecycle.errors import DigestMismatch, ImageError, PybuildError
from lifecycle.oci.digest import hex_part, sha256_digest
from lifecycle.oci.dockerarchive import write_docker_archive
from lifecycle.oci.image import Image
from lifecycle.oci.models import History
from lifecycle.oci.mutate import append_layers, edit_config, edit_image_config

# -- configs re-made from inspect -------------------------------------------------------------------------


def _docker_time(created: str | None) -> int:
    """What docker's history API reports for a history entry's ``created`` (Unix seconds, Go zero time)."""
    import datetime

    if created is None:
        return -62135596800
    return int(datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())


def inspect_of(image: Image) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What dockerd 20.10 answers for ``image``: every container-config field, history newest first."""
    config = image.config
    container = {
        "Hostname": "",
        "User": "",
        "AttachStdout": False,
        "Env": None,
        "Cmd": None,
        "Image": "",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
        **json.loads(image.raw_config)["config"],
    }
    inspect = {
        "Id": sha256_digest(image.raw_config),
        "Created": config.created or "0001-01-01T00:00:00Z",
        "Author": config.author or "",
        "Architecture": config.architecture,
        "Os": config.os,
        "Config": container,
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
    }
    sizes = iter(1000 + n for n in range(len(image.layers)))
    history = [
        {
            "Created": _docker_time(entry.created),
            "CreatedBy": entry.created_by or "",
            "Comment": entry.comment or "",
            "Size": 0 if entry.empty_layer else next(sizes),
        }
        for entry in config.history or []
    ]
    return inspect, list(reversed(history))


def test_a_pybuild_config_is_remade_byte_for_byte_from_inspect() -> None:
    image = edit_config(
        random_image(layers=2),
        lambda c: c.model_copy(update={"entrypoint": ["/cnb/process/web"], "working_dir": "/workspace"}),
    )
    inspect, history = inspect_of(image)

    remade = remade_config(inspect, history)

    assert remade == image.raw_config
    assert sha256_digest(remade) == inspect["Id"]


def test_empty_history_entries_are_found_by_their_zero_size() -> None:
    image = random_image(layers=2)
    entries = [*(image.config.history or []), History(created_by="ENV X=1", empty_layer=True)]
    image = edit_image_config(image, history=entries)

    assert remade_config(*inspect_of(image)) == image.raw_config


def test_a_config_inspect_cannot_show_is_remade_with_what_pybuild_reads() -> None:
    image = edit_image_config(random_image(), variant="v8")  # API 1.41 inspect has no Variant
    inspect, history = inspect_of(image)

    raw = remade_config(inspect, history)

    assert sha256_digest(raw) != inspect["Id"]
    remade = json.loads(raw)
    assert remade["config"]["Labels"] == image.labels
    assert remade["rootfs"]["diff_ids"] == image.diff_ids


# -- which layers the daemon has ---------------------------------------------------------------------


def test_chain_ids_follow_the_oci_definition() -> None:
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()

    assert chain_ids([a, b, c]) == [a, ab, abc]


def test_present_layers_are_the_longest_bottom_chain_any_image_has() -> None:
    images = {"one": ["a", "b", "x"], "two": ["a", "b", "c"], "three": ["z"]}
    asked: list[str] = []

    def diff_ids_of(image_id: str) -> list[str]:
        asked.append(image_id)
        return images[image_id]

    chains = LayerChains(lambda: list(images), diff_ids_of)

    assert chains.present(["a", "b", "c", "d"]) == 3
    assert chains.present(["b", "c"]) == 0
    assert asked == ["one", "two", "three"]  # each image inspected once


def test_a_hint_sharing_bottom_layers_spares_looking_at_every_image() -> None:
    images = {"prev": ["a", "x"], "unrelated": ["z"], "other": ["a", "b", "c"]}
    chains = LayerChains(lambda: list(images), lambda image_id: images[image_id])

    assert chains.present(["a", "b", "c"], hints=["prev"]) == 1
    assert chains.present(["a", "b", "c"], hints=["unrelated"]) == 3  # no shared layer: every image


def test_a_hint_that_has_every_layer_stops_the_search() -> None:
    asked: list[str] = []

    def diff_ids_of(image_id: str) -> list[str]:
        asked.append(image_id)
        return ["a", "b"]

    assert LayerChains(lambda: ["other", "prev"], diff_ids_of).present(["a", "b"], hints=["prev"]) == 2
    assert asked == ["prev"]


# -- placeholder archives ------------------------------------------------------------------------------


def archive_files(image: Image, placeholders: int) -> tuple[dict[str, bytes], list[str]]:
    out = io.BytesIO()
    write_docker_archive(image, ["app:1"], out, placeholders=placeholders)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
        files = {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar.getmembers() if m.isfile()}
    return files, names


def test_placeholders_are_empty_files_for_the_bottom_layers() -> None:
    image = random_image(layers=3, size=10_000)

    files, _ = archive_files(image, placeholders=2)

    (entry,) = json.loads(files["manifest.json"])
    bottom = [f"{hex_part(layer.diff_id)}/placeholder.tar" for layer in image.layers[:2]]
    assert entry["Layers"] == [*bottom, f"{hex_part(image.layers[2].digest)}/layer.tar.gz"]
    assert [files[name] for name in bottom] == [b"", b""]


def test_a_layer_both_placeholder_and_sent_keeps_names_unique() -> None:
    layer = random_layer(seed=4)
    image = append_layers(random_image(layers=0), [layer, random_layer(seed=5), layer])

    _, names = archive_files(image, placeholders=1)

    assert len(names) == len(set(names))


def test_a_daemon_archive_needs_name_and_tag() -> None:
    with pytest.raises(ImageError, match="docker load needs name:tag"):
        write_docker_archive(random_image(), ["app"], io.BytesIO())


# -- streaming into docker load ----------------------------------------------------------------------------


def test_the_archive_streams_in_chunks_and_is_counted() -> None:
    received = bytearray()

    def load(chunks: Iterator[bytes]) -> list[dict[str, str]]:
        for chunk in chunks:
            received.extend(chunk)
        return [{"stream": "Loaded image: app:1\n"}]

    sent, error = load_archive(load, lambda out: out.write(b"x" * 3_000_000))

    assert (sent, error, len(received)) == (3_000_000, "", 3_000_000)


def test_a_failing_archive_writer_fails_the_load_with_its_own_error() -> None:
    def write(out: Any) -> None:
        out.write(b"partial")
        raise DigestMismatch("copy blob", "content hashed to something else")

    with pytest.raises(DigestMismatch, match="hashed to something else"):
        load_archive(lambda chunks: [{"stream": b"".join(chunks).decode()}], write)


def test_load_errors_come_from_the_progress_stream() -> None:
    messages = [
        {"status": "Loading layer"},
        {"errorDetail": {"message": "bad"}, "error": "invalid diffID\nmore"},
    ]

    assert load_errors(messages) == "invalid diffID"
    assert load_errors([{"stream": "Loaded image: a:1\n"}]) == ""


# -- which daemon, and when it does not answer -----------------------------------------------------------


def test_docker_host_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")

    assert docker_params()["base_url"] == "unix:///run/other.sock"
    assert docker_params("tcp://127.0.0.1:2375")["base_url"] == "tcp://127.0.0.1:2375"


def write_context(config_dir: Path, name: str, host: str, *, current: bool) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}))
    (config_dir / "config.json").write_text(json.dumps({"currentContext": name} if current else {}))


def test_the_current_docker_context_is_used_without_docker_host() -> None:
    write_context(Path(os.environ["DOCKER_CONFIG"]), "ci", "unix:///run/ci.sock", current=True)

    assert docker_params()["base_url"] == "unix:///run/ci.sock"


def test_docker_context_env_names_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    write_context(Path(os.environ["DOCKER_CONFIG"]), "ci", "unix:///run/ci.sock", current=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "ci")

    assert docker_params()["base_url"] == "unix:///run/ci.sock"


def test_the_default_socket_without_host_or_context() -> None:
    assert docker_params()["base_url"] == DEFAULT_HOST


def test_no_daemon_is_one_clear_line(tmp_path: Path) -> None:
    store = DaemonStore(host=f"unix://{tmp_path}/docker.sock")  # connecting waits for first use

    with pytest.raises(PybuildError) as caught:
        store.tags()

    message = str(caught.value)
    assert message == (
        f"failed to connect to docker daemon at unix://{tmp_path}/docker.sock: "
        "no such file or directory (start dockerd or set DOCKER_HOST)"
    )


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("unix:///var/run/docker.sock", True),
        ("http+docker://localhost", True),
        ("tcp://127.0.0.1:2375", True),
        ("tcp://[::1]:2375", True),
        ("tcp://build-host:2376", False),
        ("ssh://me@build-host", False),
    ],
)
def test_local_daemons_are_those_sharing_this_filesystem(host: str, local: bool) -> None:
    assert is_local_host(host) is local
