"""``pybuild lifecycle <phase>`` driven alone, as a platform drives the reference lifecycle
(GEN-1, GEN-2, DET-13..15, BLD-14, EXP-13, REB-4, REB-8, LCH-2), on the tiny stack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, ok, phase, pybuild

FIXTURES = ROOT / "tests" / "fixtures" / "buildpacks"
RUN_IMAGE = "pybuild/run:tiny"


def install(buildpacks: Path, *fixtures: str) -> None:
    for fixture in fixtures:
        text = (FIXTURES / fixture / "buildpack.toml").read_text()
        bp_id = "test/" + fixture
        assert f'id = "{bp_id}"' in text
        shutil.copytree(FIXTURES / fixture, buildpacks / bp_id / "0.0.1")


def order_toml(path: Path, *groups: tuple[str, ...]) -> Path:
    lines = []
    for group in groups:
        lines.append("[[order]]")
        for ref in group:
            bp_id, _, version = ref.partition("@")
            lines += ["  [[order.group]]", f'  id = "{bp_id}"', f'  version = "{version or "0.0.1"}"']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def bps(tmp_path: Path) -> Path:
    root = tmp_path / "buildpacks"
    install(root, "steer", "steer-b", "bad-api", "env-printer")
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / ".steer").mkdir(parents=True)
    return root


def test_detector_writes_group_and_plan_at_custom_paths(tmp_path: Path, bps: Path, app: Path) -> None:
    (app / ".steer" / "provides").write_text("thing\n")
    (app / ".steer" / "requires").write_text("thing\n")
    order = order_toml(tmp_path / "custom-order.toml", ("test/steer",))
    layers = tmp_path / "layers"
    group, plan = tmp_path / "out" / "g.toml", tmp_path / "out" / "p.toml"
    ok(
        phase(
            "detector",
            "-app",
            str(app),
            "-buildpacks",
            str(bps),
            "-order",
            str(order),
            f"-layers={layers}",
            "--group",
            str(group),
            "-plan",
            str(plan),
            "-platform",
            str(tmp_path),
        )
    )
    assert [e["id"] for e in tomllib.loads(group.read_text())["group"]] == ["test/steer"]
    entries = tomllib.loads(plan.read_text())["entries"]
    assert entries[0]["requires"][0]["name"] == "thing"
    assert not (layers / "group.toml").exists()


def test_detector_reads_paths_from_cnb_env(tmp_path: Path, bps: Path, app: Path) -> None:
    """GEN-2: env when no flag; <layers>/order.toml is the default order when present."""
    layers = tmp_path / "layers"
    layers.mkdir()
    order_toml(layers / "order.toml", ("test/steer",))
    env = {
        "CNB_APP_DIR": str(app),
        "CNB_LAYERS_DIR": str(layers),
        "CNB_BUILDPACKS_DIR": str(bps),
        "CNB_PLATFORM_DIR": str(tmp_path / "platform"),
    }
    ok(phase("detector", env=env))
    assert "test/steer" in (layers / "group.toml").read_text()
    assert (layers / "plan.toml").is_file()


def test_detector_merges_system_pre_and_post(tmp_path: Path, bps: Path, app: Path) -> None:
    """DET-13: system.toml's pre and post buildpacks join every group (Platform 0.15)."""
    (app / ".steer-b").mkdir()
    order = order_toml(tmp_path / "order.toml", ("test/steer",))
    system = tmp_path / "system.toml"
    system.write_text(
        '[[system.pre.buildpacks]]\nid = "test/steer-b"\nversion = "0.0.1"\n\n'
        '[[system.post.buildpacks]]\nid = "test/env-printer"\nversion = "0.0.1"\n'
    )
    layers = tmp_path / "layers"
    ok(
        phase(
            "detector",
            "-app",
            str(app),
            "-buildpacks",
            str(bps),
            "-order",
            str(order),
            "-layers",
            str(layers),
            "-system",
            str(system),
            "-platform",
            str(tmp_path),
        )
    )
    ids = [e["id"] for e in tomllib.loads((layers / "group.toml").read_text())["group"]]
    assert ids == ["test/steer-b", "test/steer", "test/env-printer"]


@pytest.mark.parametrize(
    ("group", "detect_exit", "code"),
    [("test/steer", "100", 20), ("test/steer", "1", 21), ("test/bad-api", "0", 12)],
)
def test_detector_exit_codes(
    tmp_path: Path, bps: Path, app: Path, group: str, detect_exit: str, code: int
) -> None:
    """DET-15: 20 all failed, 21 one errored; GEN-1: 12 for an unsupported buildpack API."""
    (app / ".steer" / "detect-exit").write_text(detect_exit)
    order = order_toml(tmp_path / "order.toml", (group,))
    proc = phase(
        "detector",
        "-app",
        str(app),
        "-buildpacks",
        str(bps),
        "-order",
        str(order),
        "-layers",
        str(tmp_path / "layers"),
        "-platform",
        str(tmp_path),
    )
    assert proc.returncode == code, proc.stdout + proc.stderr


@pytest.mark.parametrize("api", [None, "0.11", "0.16", "banana"])
def test_every_phase_needs_a_supported_platform_api(tmp_path: Path, api: str | None) -> None:
    """GEN-1: CNB_PLATFORM_API unset or outside 0.12 - 0.15 exits 11 with one line."""
    for name in ("detector", "launcher"):
        proc = phase(name, "-layers", str(tmp_path), api=api)
        assert proc.returncode == 11, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_flag_exits_3(tmp_path: Path) -> None:
    proc = phase("detector", "-no-such-flag", "x")
    assert proc.returncode == 3 and "no-such-flag" in proc.stderr


def test_builder_writes_config_metadata(tmp_path: Path, bps: Path, app: Path) -> None:
    """BLD-14: <layers>/config/metadata.toml with the buildpacks and processes."""
    (app / ".steer" / "launch.toml").write_text(
        '[[processes]]\ntype = "web"\ncommand = ["echo", "hi"]\ndefault = true\n'
    )
    order = order_toml(tmp_path / "order.toml", ("test/steer",))
    layers = tmp_path / "layers"
    common = ("-app", str(app), "-buildpacks", str(bps), "-layers", str(layers), "-platform", str(tmp_path))
    ok(phase("detector", *common, "-order", str(order)))
    ok(phase("builder", *common))
    metadata = tomllib.loads((layers / "config" / "metadata.toml").read_text())
    assert [b["id"] for b in metadata["buildpacks"]] == ["test/steer"]
    assert metadata["processes"][0]["type"] == "web"


def test_builder_failing_buildpack_exits_51(tmp_path: Path, bps: Path, app: Path) -> None:
    (app / ".steer" / "build-exit").write_text("7")
    order = order_toml(tmp_path / "order.toml", ("test/steer",))
    common = (
        "-app",
        str(app),
        "-buildpacks",
        str(bps),
        "-layers",
        str(tmp_path / "l"),
        "-platform",
        str(tmp_path),
    )
    ok(phase("detector", *common, "-order", str(order)))
    assert phase("builder", *common).returncode == 51


# -- the five phases against `pybuild build`, on the tiny builder -------------------------------


def _tiny(home: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    bps = home / "builders" / "pybuild_builder_tiny" / "buildpacks"
    refs = sorted(str(p.parent.relative_to(bps)) for p in bps.rglob("buildpack.toml"))
    order = order_toml(
        tmp_path / "order.toml", *[(r.rsplit("/", 1)[0] + "@" + r.rsplit("/", 1)[1],) for r in refs]
    )
    # The builder's order: procfile first (builders/tiny.toml).
    order.write_text(order.read_text().replace("[[order]]", "[[order]]", 1))
    run = tmp_path / "run.toml"
    run.write_text(f'[[images]]\nimage = "{RUN_IMAGE}"\n')
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    return bps, order, run, app


def _five_phases(home: Path, tmp_path: Path, image: str) -> tuple[Path, Path]:
    bps, order, run, app = _tiny(home, tmp_path)
    layers = tmp_path / "layers"
    layers.mkdir()
    env = {
        "CNB_LAYERS_DIR": str(layers),
        "CNB_APP_DIR": str(app),
        "CNB_BUILDPACKS_DIR": str(bps),
        "CNB_PLATFORM_DIR": str(tmp_path / "platform"),
        "CNB_RUN_PATH": str(run),
        "CNB_ORDER_PATH": str(order),
        "CNB_USER_ID": "1000",
        "CNB_GROUP_ID": "1000",
    }
    ok(phase("analyzer", image, env=env))
    ok(phase("detector", env=env))
    ok(phase("restorer", env=env))
    ok(phase("builder", env=env))
    ok(phase("exporter", image, f"{image}-extra", env=env))
    return layers, app


def _digest_of_pybuild_build() -> str:
    """The digest `pybuild build` gives for the sample the phase tests use."""
    args = ("--path", "samples/procfile-shell", "--builder", TINY_BUILDER, "--executor", "host")
    return last_line(pybuild("-q", "build", "whole", *args))


def test_five_phases_give_the_same_digest_as_pybuild_build(home: Path, tmp_path: Path) -> None:
    """EXP-6, EXP-13: analyzer -> detector -> restorer -> builder -> exporter == `pybuild build`."""
    layers, _ = _five_phases(home, tmp_path, "phased")
    built = _digest_of_pybuild_build()
    report = tomllib.loads((layers / "report.toml").read_text())["image"]
    assert report["digest"] == built
    assert report["tags"] == ["phased:latest", "phased-extra:latest"]
    assert report["manifest-size"] > 0 and report["image-id"].startswith("sha256:")
    analyzed = tomllib.loads((layers / "analyzed.toml").read_text())
    assert analyzed["run-image"]["image"] == RUN_IMAGE


def test_creator_matches_the_phases(home: Path, tmp_path: Path) -> None:
    bps, order, run, app = _tiny(home, tmp_path)
    layers = tmp_path / "layers"
    layers.mkdir()
    ok(
        phase(
            "creator",
            "-app",
            str(app),
            "-layers",
            str(layers),
            "-buildpacks",
            str(bps),
            "-order",
            str(order),
            "-run",
            str(run),
            "-platform",
            str(tmp_path / "platform"),
            "created",
        )
    )
    built = _digest_of_pybuild_build()
    assert tomllib.loads((layers / "report.toml").read_text())["image"]["digest"] == built


def test_rebaser_needs_force_for_an_unlisted_run_image(home: Path, tmp_path: Path) -> None:
    """REB-4: a run image not in runImage.image/mirrors fails (72) unless -force; REB-8: report.toml."""
    _five_phases(home, tmp_path, "app")
    pybuild("tag", "pybuild/run:tiny-2", "other/run:tiny")  # a patched base, under another name
    report = tmp_path / "rebase-report.toml"
    refused = phase("rebaser", "-run-image", "other/run:tiny", "-report", str(report), "app")
    assert refused.returncode == 72, refused.stderr
    ok(phase("rebaser", "-run-image", "other/run:tiny", "-force", "-report", str(report), "app", "app-copy"))
    assert tomllib.loads(report.read_text())["image"]["digest"].startswith("sha256:")
    inspect = pybuild("inspect", "app-copy", "--output", "json").stdout
    assert "other/run:tiny" in inspect


def _launch(
    argv0: str, layers: Path, app: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = f"from lifecycle.cli.dispatch import main; main([{argv0!r}])"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CNB_")}
    environ.update({"CNB_PLATFORM_API": "0.15", "CNB_LAYERS_DIR": str(layers), "CNB_APP_DIR": str(app)})
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )


def test_launcher_selects_process_by_argv0_and_cnb_process_type(home: Path, tmp_path: Path) -> None:
    """LCH-2: argv[0] /cnb/process/<type>, else CNB_PROCESS_TYPE; the launcher runs the plan as exported."""
    from lifecycle.cnb.buildpack import load_buildpack_toml
    from lifecycle.cnb.layers import load_config_metadata
    from lifecycle.cnb.order import load_group_toml
    from lifecycle.phases.launch import launch_files

    layers, app = _five_phases(home, tmp_path, "launchme")
    bps = home / "builders" / "pybuild_builder_tiny" / "buildpacks"
    group = [
        load_buildpack_toml(bps / e.id / e.version / "buildpack.toml")
        for e in load_group_toml(layers / "group.toml").group
    ]
    files = launch_files(load_config_metadata(layers / "config" / "metadata.toml"), layers, group)
    (layers / "config" / "launch-plan.sh").write_bytes(files.plan)
    by_name = _launch("/cnb/process/hello", layers, app)
    assert "hello from procfile-shell" in by_name.stdout, by_name.stderr
    by_env = _launch("/cnb/lifecycle/launcher", layers, app, {"CNB_PROCESS_TYPE": "hello"})
    assert "hello from procfile-shell" in by_env.stdout, by_env.stderr
    unknown = _launch("/cnb/lifecycle/launcher", layers, app, {"CNB_PROCESS_TYPE": "nope"})
    assert unknown.returncode == 82
