"""An unchanged rebuild into the local store reports the image and runs nothing (``build_inputs``).

Real builds on the tiny builder under bwrap: the second build of the same inputs prints
``===> REUSING`` and no phase; any change to an input (the app, an option, the builder, a
buildpack, the image the tag names, pybuild itself) runs the buildpacks again, and a build with
equal inputs gives the digest a ``--rerun`` gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, pybuild

APP = ROOT / "samples" / "procfile-shell"
SYS_INFO = ROOT / "tests" / "fixtures" / "buildpacks" / "sys-info"


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    return app


def _build(
    app: Path, *flags: str, image: str = "app", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return pybuild("build", image, "--path", str(app), "--builder", TINY_BUILDER, *flags, env=env)


def _ran(proc: subprocess.CompletedProcess[str]) -> bool:
    """The phases ran (and so the buildpacks' bin/detect)."""
    return "===> DETECTING" in proc.stdout and "===> REUSING" not in proc.stdout


def _reused(proc: subprocess.CompletedProcess[str]) -> bool:
    return "===> REUSING" in proc.stdout and "===> ANALYZING" not in proc.stdout


def test_an_unchanged_rebuild_reports_the_image_and_runs_no_buildpack(home: Path, tmp_path: Path) -> None:
    app = _app(tmp_path)
    first = _build(app)
    assert _ran(first)
    digest = last_line(first)

    again = _build(app)
    assert _reused(again), again.stdout
    assert f"Inputs unchanged since the build of {digest}; nothing to do" in again.stdout
    assert "use --rerun" in again.stdout and last_line(again) == digest and not again.stderr
    quiet = pybuild("-q", "build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    assert quiet.stdout == digest + "\n"

    rerun = _build(app, "--rerun")
    assert _ran(rerun) and "Reused 4 of 4 layers" in rerun.stdout and last_line(rerun) == digest
    assert _reused(_build(app))
    cleared = _build(app, "--clear-cache")
    assert _ran(cleared) and last_line(cleared) == digest


def test_a_new_tag_or_another_target_is_built(home: Path, tmp_path: Path) -> None:
    """The record is per tag: :v2 builds (from the shared cache); oci: and --publish never reuse."""
    app = _app(tmp_path)
    v1 = last_line(_build(app, image="app:v1"))
    v2 = _build(app, image="app:v2")
    assert _ran(v2) and last_line(v2) == v1
    assert _reused(_build(app, image="app:v1")) and _reused(_build(app, image="app:v2"))
    layout = f"oci:{tmp_path / 'layout'}:v1"
    assert _ran(_build(app, image=layout)) and _ran(_build(app, image=layout))
    assert _ran(_build(app, "--executor", "host")) and _ran(_build(app, "--executor", "host"))


Later = tuple[tuple[str, ...], dict[str, str]]  # the flags and environment of the builds after a change


def _edit(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


def _content(app: Path) -> Later:
    _edit(app / "www" / "index.html", "<!-- edited -->\n")
    return (), {}


def _mode(app: Path) -> Later:
    (app / "Procfile").chmod(0o755)
    return (), {}


def _added(app: Path) -> Later:
    (app / "www" / "new.txt").write_text("new\n")
    return (), {}


def _removed(app: Path) -> Later:
    (app / "README.md").unlink()
    return (), {}


def _env(app: Path) -> Later:
    return ("--env", "GREETING=hi"), {}


def _source_date_epoch(app: Path) -> Later:
    return (), {"SOURCE_DATE_EPOCH": "1700000000"}


def _tag_moved(app: Path) -> Later:
    pybuild("tag", "pybuild/run:tiny", "app")
    return (), {}


def _image_removed(app: Path) -> Later:
    pybuild("rmi", "app")
    return (), {}


CHANGES: dict[str, tuple[Callable[[Path], Later], bool]] = {  # name: (change, whether the image changes)
    "content": (_content, True),
    "mode": (_mode, True),
    "added": (_added, True),
    "removed": (_removed, True),
    "env": (_env, False),
    "source-date-epoch": (_source_date_epoch, True),
    "tag-moved": (_tag_moved, False),
    "image-removed": (_image_removed, False),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_changed_input_runs_the_buildpacks_then_is_reused(home: Path, tmp_path: Path, name: str) -> None:
    app = _app(tmp_path)
    first = last_line(_build(app))
    change, image_changes = CHANGES[name]
    flags, env = change(app)

    changed = _build(app, *flags, env=env)
    assert _ran(changed), changed.stdout
    assert (last_line(changed) != first) is image_changes
    rerun = _build(app, *flags, "--rerun", env=env)
    assert _ran(rerun) and last_line(rerun) == last_line(changed)  # equal inputs, equal image
    again = _build(app, *flags, env=env)
    assert _reused(again) and last_line(again) == last_line(changed)


def test_an_edited_buildpack_directory_runs_the_buildpacks(home: Path, tmp_path: Path) -> None:
    app = _app(tmp_path)
    buildpack = tmp_path / "sys-info"
    shutil.copytree(SYS_INFO, buildpack)
    first = _build(app, "--buildpack", str(buildpack))
    assert _ran(first) and _reused(_build(app, "--buildpack", str(buildpack)))
    _edit(buildpack / "bin" / "build", 'echo "sys-info, edited"\n')
    edited = _build(app, "--buildpack", str(buildpack))
    assert _ran(edited) and "sys-info, edited" in edited.stdout
    assert _reused(_build(app, "--buildpack", str(buildpack)))


def test_a_recreated_builder_runs_the_buildpacks(home: Path, tmp_path: Path) -> None:
    procfile = tmp_path / "procfile"
    shutil.copytree(ROOT / "buildpacks" / "procfile", procfile)
    config = tmp_path / "builder.toml"
    config.write_text(
        f'[[buildpacks]]\nuri = "{procfile}"\n\n[[order]]\n  [[order.group]]\n  id = "pybuild/procfile"\n\n'
        '[build]\nimage = "pybuild/build:tiny"\n\n[[run.images]]\nimage = "pybuild/run:tiny"\n'
    )
    pybuild("builder", "create", "test/reuse", "--config", str(config))
    app = _app(tmp_path)
    flags = ("--builder", "test/reuse")
    assert _ran(_build(app, *flags)) and _reused(_build(app, *flags))

    _edit(procfile / "bin" / "build", 'echo "procfile, edited"\n')  # same id and version, new content
    pybuild("builder", "create", "test/reuse", "--config", str(config))
    rebuilt = _build(app, *flags)
    assert _ran(rebuilt) and "procfile, edited" in rebuilt.stdout
    assert _reused(_build(app, *flags))


def test_another_pybuild_never_reuses_an_image(home: Path, tmp_path: Path) -> None:
    """A copy of the lifecycle package is another install: its stat signature differs."""
    app = _app(tmp_path)
    digest = last_line(_build(app))
    install = tmp_path / "install"
    shutil.copytree(ROOT / "lifecycle", install / "lifecycle", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(install)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifecycle", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    probe = [sys.executable, "-c", "import lifecycle; print(lifecycle.__file__)"]
    where = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(install)), where.stdout
    args = ("build", "app", "--path", str(app), "--builder", TINY_BUILDER)
    other = run(*args)
    assert other.returncode == 0 and _ran(other) and last_line(other) == digest, other.stderr
    assert _reused(run(*args))
    _edit(install / "lifecycle" / "__init__.py", "\n")  # upgraded in place
    upgraded = run(*args)
    assert upgraded.returncode == 0 and _ran(upgraded), upgraded.stderr
    assert _reused(run(*args))
