"""Layer writing speed: ``tar | gzip -6``, ``tar | gzip -1`` and our LayerTar + LayerSink.

Generates a deterministic ~500 MB tree (many small text files plus large semi-compressible
binaries), then times each way of turning it into a gzip layer, best of N, in the same run.
``python -m bench layers -- --size-mb 100 --repeat 1`` makes a quick run.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._results import best_of, latest_figures, machine, report
from lifecycle.oci.compress import CompressedBlob, LayerSink
from lifecycle.oci.tarball import LayerTar

NAME = "layers"
_TEXT_SHARE = 0.2  # of the tree's bytes, in small text files; the rest is large binaries
_BINARY_FILE = 50 << 20
_SEED_BLOCK = 16 << 20
_CHUNK = 1 << 20
# Symbol alphabets for binary chunks: 8 bits is incompressible, fewer bits compress (Huffman).
_ALPHABET_BITS = (8, 8, 6, 5, 4, 3)


def run(argv: list[str]) -> None:
    options = _parse(argv)
    workdir = Path(options.workdir)
    tree = generate_tree(workdir / f"tree-{options.size_mb}mb", options.size_mb)
    results = measure(tree, workdir, options.repeat, options.level)
    report(NAME, results, summary, ("runs",))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench layers", description=__doc__)
    parser.add_argument("--size-mb", type=int, default=500, help="size of the generated tree (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the best counts (default 3)")
    parser.add_argument("--level", type=int, default=1, help="ISA-L level for our sink (default 1)")
    parser.add_argument(
        "--workdir",
        default=str(Path(tempfile.gettempdir()) / "pybuild-bench"),
        help="tree and outputs go here",
    )
    return parser.parse_args(argv)


# -- the tree --------------------------------------------------------------------------------------


def generate_tree(root: Path, size_mb: int) -> Path:
    """Write the tree once; a stamp file makes later runs reuse it."""
    stamp = root / ".complete"
    if stamp.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(20261129)
    seed_block = rng.randbytes(_SEED_BLOCK)
    total = size_mb << 20
    _write_text_files(root / "src", int(total * _TEXT_SHARE), rng)
    _write_binaries(root / "lib", total - int(total * _TEXT_SHARE), rng, seed_block)
    stamp.write_text(f"{size_mb}\n")
    return root


def _write_text_files(root: Path, budget: int, rng: random.Random) -> None:
    corpus = _text_corpus(rng, 8 << 20)
    written, number = 0, 0
    while written < budget:
        directory = root / f"pkg{number // 100:03}"
        if number % 100 == 0:
            directory.mkdir(parents=True)
        size = min(int(2 ** rng.uniform(7.5, 13.5)), budget - written)  # ~180 B to ~11 KB, log-uniform
        start = rng.randrange(len(corpus) - size)
        (directory / f"module_{number:05}.py").write_bytes(corpus[start : start + size])
        written, number = written + size, number + 1


def _text_corpus(rng: random.Random, size: int) -> bytes:
    letters = "abcdefghijklmnopqrstuvwxyz_"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 12))) for _ in range(4000)]
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf-like, as in source code
    lines = []
    length = 0
    while length < size:
        line = "    " * rng.randint(0, 3) + " ".join(rng.choices(words, weights, k=rng.randint(3, 12))) + "\n"
        lines.append(line)
        length += len(line)
    return "".join(lines).encode()


def _write_binaries(root: Path, budget: int, rng: random.Random, seed_block: bytes) -> None:
    root.mkdir(parents=True)
    tables = {bits: bytes(value % (1 << bits) for value in range(256)) for bits in set(_ALPHABET_BITS)}
    number = 0
    while budget > 0:
        size = min(_BINARY_FILE, budget)
        with (root / f"lib{number:02}.so").open("wb") as out:
            for offset in range(0, size, _CHUNK):
                out.write(_binary_chunk(rng, seed_block, tables, min(_CHUNK, size - offset)))
        budget, number = budget - size, number + 1


def _binary_chunk(rng: random.Random, seed_block: bytes, tables: dict[int, bytes], size: int) -> bytes:
    """A slice of random bytes folded onto a smaller alphabet; now and then a run of zeros."""
    if rng.random() < 0.05:
        return bytes(size)
    start = rng.randrange(len(seed_block) - size)
    return seed_block[start : start + size].translate(tables[rng.choice(_ALPHABET_BITS)])


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and path.name != ".complete")


# -- the methods ----------------------------------------------------------------------------------


def gzip_pipeline(tree: Path, out: Path, level: int) -> int:
    """``tar -c | gzip -N > out``, as a shell pipeline (two processes, as people run it)."""
    script = f'set -o pipefail; tar -cf - -C "$1" --exclude=./.complete . | gzip -{level} > "$2"'
    subprocess.run(["bash", "-c", script, "bench", str(tree), str(out)], check=True)
    return out.stat().st_size


def ours(tree: Path, scratch: Path, level: int) -> CompressedBlob:
    """One layer: LayerTar over the tree into a LayerSink (diffID, gzip and digest in one pass)."""
    with LayerSink(scratch, level) as sink:
        tar = LayerTar(sink)  # type: ignore[arg-type]
        tar.add_tree(tree, "/workspace", include=lambda path: path.name != ".complete")
        tar.close()
    blob = sink.close()
    blob.path.unlink()
    return blob


def ours_parallel(tree: Path, scratch: Path, level: int, workers: int) -> list[CompressedBlob]:
    """One layer per top-level directory, written by ``workers`` threads (as an export does)."""
    parts = sorted(path for path in tree.iterdir() if path.is_dir())
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda part: ours(part, scratch, level), parts))


def measure(tree: Path, workdir: Path, repeat: int, level: int) -> dict[str, Any]:
    data = tree_bytes(tree)
    out = workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    for gzip_level in (6, 1):
        seconds, size = best_of(
            repeat, functools.partial(gzip_pipeline, tree, out / "layer.tar.gz", gzip_level)
        )
        runs[f"tar | gzip -{gzip_level}"] = _run(data, seconds, size)
    seconds, blob = best_of(repeat, lambda: ours(tree, out, level))
    runs[f"LayerTar + LayerSink (isal {level})"] = _run(data, seconds, blob.size)
    workers = 2
    seconds, blobs = best_of(repeat, lambda: ours_parallel(tree, out, level, workers))
    runs[f"same, {len(blobs)} layers in {workers} threads"] = _run(data, seconds, sum(b.size for b in blobs))
    return {"tree_bytes": data, "repeat": repeat, "machine": machine(), "runs": _with_ratios(runs)}


def _run(data: int, seconds: float, compressed: int) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 3),
        "mb_per_s": round(data / seconds / 1e6, 1),
        "compressed_bytes": compressed,
    }


def _with_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    gzip6, gzip1 = runs["tar | gzip -6"]["seconds"], runs["tar | gzip -1"]["seconds"]
    for run in runs.values():
        run["speedup_vs_gzip6"] = round(gzip6 / run["seconds"], 2)
        run["speedup_vs_gzip1"] = round(gzip1 / run["seconds"], 2)
    return runs


def summary(results: dict[str, Any]) -> str:
    info = results["machine"]
    lines = [
        *latest_figures(
            f"Tree: {results['tree_bytes'] / 1e6:.0f} MB (small text files + large semi-compressible "
            f"binaries); best of {results['repeat']}; {info['cpu']}, {info['cores']} cores, "
            f"Python {info['python']}."
        ),
        "",
        "| method | time (s) | MB/s | vs gzip -6 | vs gzip -1 | compressed (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, run in sorted(results["runs"].items(), key=lambda item: -item[1]["seconds"]):
        cell = method.replace("|", "\\|")  # a bare | would end the table cell
        lines.append(
            f"| {cell} | {run['seconds']:.2f} | {run['mb_per_s']:.0f} | {run['speedup_vs_gzip6']:.1f}x "
            f"| {run['speedup_vs_gzip1']:.1f}x | {run['compressed_bytes'] / 1e6:.1f} |"
        )
    return "\n".join(lines)
