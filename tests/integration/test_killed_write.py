"""A write killed with SIGKILL at any moment leaves the store readable and the tag intact.

A child process builds a ~200 MB image (four layers written by ``LayerTar`` into a
``LayerSink``) and writes it to a tag that already names a previous image. The parent kills it
at chosen moments: while a layer is being compressed, while blobs are copied into the layout,
right after every blob exists but before ``index.json`` moves, and at a few times during the
final write. Afterwards the layout must open, the tag must name the previous image or the
complete new one, every tagged image must validate, and every file under ``blobs/`` must hash
to its name (DESIGN.md "atomic writes").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.images import random_image

from lifecycle.backends.layout import Layout
from lifecycle.oci.validate import validate

REPO = Path(__file__).resolve().parents[2]
TAG = "app:1"

# The child: builds the big image, prints a marker before each step, and can pause after blobs.
CHILD = r"""
import random, sys
from pathlib import Path
from lifecycle.backends.layout import Layout
from lifecycle.oci.compress import write_layer
from lifecycle.oci.models import ImageConfig
from lifecycle.oci.mutate import new_image

root, tag, layer_dir, pause = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "pause"
LAYERS, NOISE_BLOCK = 4, 4 << 20

def say(marker):
    print(marker, flush=True)

def fill_for(number):
    rng = random.Random(number)
    noise = rng.randbytes(NOISE_BLOCK)
    words = [rng.randbytes(5).hex() for _ in range(3000)]
    text = " ".join(rng.choices(words, k=900_000)).encode()
    def fill(tar):
        tar.add_parents(f"/data/{number}/x")
        for part in range(10):  # incompressible: each 4 MB block rotated, far beyond deflate's window
            cut = (part * 409_613) % NOISE_BLOCK
            tar.add_file(f"/data/{number}/noise-{part}.bin", noise[cut:] + noise[:cut])
        for part in range(100):  # semi-compressible text in many files
            tar.add_file(f"/data/{number}/text-{part:03}.txt", text[part * 100_000 : (part + 1) * 100_000])
    return fill

layout = Layout(root)
layers = []
for number in range(LAYERS):
    say(f"layer {number} start")
    layers.append(write_layer(layer_dir, fill_for(number)))
image = new_image(ImageConfig(created="1980-01-01T00:00:01Z"), layers)
say(f"image {image.digest}")
if pause:
    for layer in layers:
        layout.put_layer(layer)
    layout.write_blob(image.raw_config)
    layout.write_blob(image.raw_manifest)
    say("blobs written")
    sys.stdin.readline()
say("writing")
layout.write(image, [tag])
say("done")
"""


@dataclass(frozen=True)
class Moment:
    """Kill `delay` seconds after the child prints `marker` (None: let it finish)."""

    marker: str | None
    delay: float = 0.0
    layers_elsewhere: bool = False  # layers on another filesystem: the layout copies, not links
    pause_after_blobs: bool = False


MOMENTS = {
    "while-compressing-first-layer": Moment("layer 0 start", 0.3),
    "while-compressing-third-layer": Moment("layer 2 start", 0.2),
    "right-after-all-blobs-before-index": Moment("blobs written", pause_after_blobs=True),
    "at-start-of-final-write": Moment("writing"),
    "while-copying-blobs-early": Moment("writing", 0.02, layers_elsewhere=True),
    "while-copying-blobs-late": Moment("writing", 0.15, layers_elsewhere=True),
    "near-index-update": Moment("writing", 0.4, layers_elsewhere=True),
    "not-killed": Moment(None),
}


@dataclass(frozen=True)
class Outcome:
    new_digest: str | None
    finished: bool


def run_child(root: Path, layer_dir: Path, moment: Moment) -> Outcome:
    mode = "pause" if moment.pause_after_blobs else "-"
    argv = [sys.executable, "-c", CHILD, str(root), TAG, str(layer_dir), mode]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    new_digest, finished = None, False
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                marker = line.strip()
                new_digest = marker.split(" ", 1)[1] if marker.startswith("image ") else new_digest
                finished = marker == "done"
                if marker == moment.marker:
                    time.sleep(moment.delay)
                    proc.kill()
                    break
        finally:
            proc.kill()
    # A delayed kill may come after a fast machine finished the write: then the new image must be whole.
    finished = finished or proc.returncode == 0
    killed_or_done = proc.returncode == -9 or (moment.delay > 0 and finished)
    assert moment.marker is None or killed_or_done, "the child ended before it could be killed"
    assert moment.marker is not None or finished, f"the child failed with exit code {proc.returncode}"
    return Outcome(new_digest, finished)


def blobs_hash_to_their_names(layout: Layout) -> None:
    for path in (layout.root / "blobs" / "sha256").iterdir():
        digest = hashlib.sha256()
        with path.open("rb") as blob:
            while chunk := blob.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == path.name, f"{path} is incomplete or corrupt"


@pytest.fixture
def layer_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where the child writes its layers: the layout's scratch dir, or /dev/shm (another filesystem)."""
    moment: Moment = request.getfixturevalue("moment")
    if not moment.layers_elsewhere:
        return tmp_path / "oci" / ".tmp"
    shm = Path("/dev/shm") / f"pybuild-killed-write-{os.getpid()}-{tmp_path.name}"
    request.addfinalizer(lambda: shutil.rmtree(shm, ignore_errors=True))
    return shm


@pytest.fixture(params=list(MOMENTS), ids=list(MOMENTS))
def moment(request: pytest.FixtureRequest) -> Moment:
    return MOMENTS[request.param]


def test_killed_write_leaves_previous_image_or_complete_new_one(
    tmp_path: Path, moment: Moment, layer_dir: Path
) -> None:
    layout = Layout(tmp_path / "oci", create=True)
    previous = random_image(layers=2, size=100_000, seed=1)
    layout.write(previous, [TAG, "other:1"])

    outcome = run_child(layout.root, layer_dir, moment)

    reopened = Layout(layout.root)
    allowed = {previous.digest, outcome.new_digest} if outcome.new_digest else {previous.digest}
    assert reopened.resolve(TAG) in allowed
    if moment.marker is None or moment.pause_after_blobs:
        expected = outcome.new_digest if outcome.finished else previous.digest
        assert reopened.resolve(TAG) == expected
    assert reopened.resolve("other:1") == previous.digest
    for tag in reopened.tags():
        validate(reopened.image(tag))
    blobs_hash_to_their_names(reopened)

    reopened.gc()
    for tag in reopened.tags():
        validate(reopened.image(tag))
