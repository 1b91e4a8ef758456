"""What the benchmarks that build share: a fresh pybuild home, the stack and builder made once,
in-process builds timed phase by phase, and ``pybuild`` commands timed as a user runs them."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
DEFAULT_WORKDIR = Path("/var/tmp")
# mmdebstrap tarballs (cache/stacks) and .deb files (cache/debs) survive across runs here, so a
# run's fresh home makes its stack images from cached files instead of bootstrapping again.
DEFAULT_STACK_CACHE = Path("/var/tmp/pybuild-bench-cache")
_CACHED = ("stacks", "debs")


def fresh_home(workdir: Path, name: str, stack_cache: Path) -> Path:
    """An empty ``PYBUILD_HOME`` whose stack caches point at ``stack_cache``; set in os.environ."""
    home = Path(tempfile.mkdtemp(prefix=f"pybuild-bench-{name}-", dir=workdir))
    (home / "cache").mkdir()
    for sub in _CACHED:
        (stack_cache / sub).mkdir(parents=True, exist_ok=True)
        (home / "cache" / sub).symlink_to(stack_cache / sub)
    os.environ["PYBUILD_HOME"] = str(home)
    return home


def remove_tree(path: Path) -> None:
    """rmtree that also copes with read-only directories (extracted root filesystems)."""
    if not path.exists():
        return
    for sub in _CACHED:  # never follow the cache links into the persistent cache
        link = path / "cache" / sub
        if link.is_symlink():
            link.unlink()
    subprocess.run(["chmod", "-R", "u+rwX", str(path)], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def cached_tarballs(stack_cache: Path) -> list[str]:
    return sorted(p.name for p in (stack_cache / "stacks").glob("*.tar"))


def median(values: list[float]) -> float:
    return statistics.median(values)


def seconds(value: float) -> float:
    return round(value, 3)


def median_phases(runs: list[dict[str, float]], runs_total: bool = False) -> dict[str, Any]:
    """The median of each figure of ``timed_build`` runs (0 where a run lacks it); with
    ``runs_total``, every run's total as well."""
    keys = sorted({key for run in runs for key in run})
    out: dict[str, Any] = {key: seconds(median([run.get(key, 0.0) for run in runs])) for key in keys}
    if runs_total:
        out["runs_total"] = [run["total"] for run in runs]
    return out


def copy_app(source: Path, target: Path) -> Path:
    """A copy of an app's source tree (without bytecode caches) to build or edit."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit_app(app: Path, note: str) -> None:
    """A one-file change: a comment line added to the app's app.py."""
    with (app / "app.py").open("a") as source:
        source.write(f"# edit {note}\n")


# -- the stack and builder ------------------------------------------------------------------------


@dataclass(frozen=True)
class StackSetup:
    """A builder (and its stack) made in the fresh home: not part of any build's time."""

    seconds: float
    tarballs_before: int  # mmdebstrap tarballs in the persistent cache before
    mmdebstrap_ran: bool  # whether making the stack had to bootstrap (more tarballs after)


def make_builder(
    builder: str, stack_cache: Path, progress: Callable[[str], None] | None = None
) -> StackSetup:
    """Make ``builder`` and its stack in the local store, timed; ``progress`` gets its messages."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.platform.defaults import ensure_builder

    tarballs = cached_tarballs(stack_cache)
    print(f"stack + builder {builder} ({len(tarballs)} cached mmdebstrap tarballs)", flush=True)
    elapsed, _ = timed(lambda: ensure_builder(builder, LocalStore(), progress or (lambda _: None)))
    return StackSetup(seconds(elapsed), len(tarballs), len(cached_tarballs(stack_cache)) > len(tarballs))


def setup_with_local_build(builder: str, stack_cache: Path, image: str, app: Path) -> dict[str, Any]:
    """The builder, then one build of ``app`` into the local store (it extracts the build image's
    root filesystem): neither is counted in the figures that follow."""
    stack = make_builder(builder, stack_cache)
    print("warm-up build into the local store (rootfs extraction)", flush=True)
    warm_up, _ = timed_build(image, app)
    return {
        "stack_and_builder_seconds": stack.seconds,
        "mmdebstrap_ran": stack.mmdebstrap_ran,
        "local_build_seconds": warm_up["total"],
    }


def base_with_layer(under: str, number: int, scratch: Path, created_by: str) -> Any:
    """A new base image: ``under`` from the local store plus a small layer of its own (the file
    ``etc/bench-base-round`` holding ``number``), as a patched base would be."""
    from lifecycle.backends.store import LocalStore
    from lifecycle.oci import mutate
    from lifecycle.oci.compress import write_layer

    scratch.mkdir(parents=True, exist_ok=True)
    layer = write_layer(scratch, lambda tar: tar.add_file("etc/bench-base-round", f"{number}\n".encode()))
    return mutate.append_layers(LocalStore().image(under), [layer], created_by=[created_by])


# -- in-process builds, phase by phase ------------------------------------------------------------


# mark -> step it starts: the lifecycle's phase headers, plus the benchmark's own marks around them
STEPS = {
    "start": "prepare",  # build() called: builder, run image, target, cache, app copy
    "ANALYZING": "analyze",
    "DETECTING": "detect",
    "RESTORING": "restore",
    "BUILDING": "build",
    "EXPORTING": "export",
    "exported": "write",  # Exporter.export returned: blobs and tag into the store
    "caching": "cache",  # saving the build cache (after the image is written)
}


@dataclass
class PhaseClock:
    """The ``Phases`` callbacks, stamping each phase start; hooks add rootfs and export ends."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    rootfs_seconds: float = 0.0

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def phases(self) -> Any:
        from lifecycle.platform.build import Phases

        return Phases(phase=self.mark, output=self.lines.append, info=self.lines.append)

    def report(self) -> dict[str, float]:
        """Seconds per step, named by the mark it starts at (``STEPS``); unknown phases by their name."""
        out: dict[str, float] = {}
        for (name, start), (_, end) in zip(self.marks, self.marks[1:], strict=False):
            step = STEPS.get(name, name.lower())
            out[step] = seconds(out.get(step, 0.0) + end - start)
        out["total"] = seconds(self.marks[-1][1] - self.marks[0][1])
        out["rootfs_extract"] = seconds(self.rootfs_seconds)
        return out


@contextlib.contextmanager
def _instrumented(clock: PhaseClock) -> Iterator[None]:
    """Wrap the build module's rootfs cache and exporter to time them (no lifecycle edits)."""
    import lifecycle.platform.build as module

    saved = {name: getattr(module, name) for name in ("rootfs_cache", "Exporter") if hasattr(module, name)}
    context = getattr(module, "_Context", None)
    save_cache = getattr(context, "save_cache", None)
    if context is not None and save_cache is not None:

        def timed_save_cache(self: Any, *args: Any, **kwargs: Any) -> Any:
            clock.mark("caching")
            return save_cache(self, *args, **kwargs)

        context.save_cache = timed_save_cache
    if "rootfs_cache" in saved:
        inner_cache = saved["rootfs_cache"]

        def rootfs_cache(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner_cache(*args, **kwargs)
            finally:
                clock.rootfs_seconds += time.perf_counter() - started

        module.rootfs_cache = rootfs_cache  # type: ignore[attr-defined]
    if "Exporter" in saved:

        class Exporter(saved["Exporter"]):  # type: ignore[misc,valid-type]
            def export(self) -> Any:
                image = super().export()
                clock.mark("exported")
                return image

        module.Exporter = Exporter  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
        if context is not None and save_cache is not None:
            context.save_cache = save_cache


def timed_build(image: str, path: Path, **options: Any) -> tuple[dict[str, float], Any]:
    """``pybuild build`` in this process: seconds per phase (plus how many layers were reused or
    compressed, where the build reports it) and the ``BuildReport``."""
    from lifecycle.platform.build import BuildOptions, build

    clock = PhaseClock()
    with _instrumented(clock):
        clock.mark("start")
        try:
            report = build(BuildOptions(image=image, path=path, **options), clock.phases())
        except BaseException:
            print("\n".join(clock.lines[-30:]))
            raise
        clock.mark("end")
    figures = clock.report()
    for name in ("reused", "added"):
        if isinstance(getattr(report, name, None), tuple):
            figures[f"layers_{name}"] = len(getattr(report, name))
    return figures, report


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


def run_timed(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """A command (``env`` added to this process's environment): wall seconds and the finished
    process; it must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        shown = " ".join([Path(argv[0]).name, *argv[1:]])
        raise RuntimeError(f"{shown} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return elapsed, proc


def command(*args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """``pybuild ARGS`` as a user runs it (a new process): wall seconds and the finished process."""
    return run_timed([PYBUILD, *args], env)


def cli(*args: str) -> float:
    """``pybuild ARGS`` as a user runs it (a new process); wall seconds."""
    return command(*args)[0]
