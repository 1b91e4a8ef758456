"""The bubblewrap runner really sandboxes a process in an image's root filesystem."""

from __future__ import annotations

import os
from pathlib import Path

from support.images import OciImage
from support.tools import Tool

from lifecycle.backends.layout import Layout
from lifecycle.execution.bwrap import BwrapRunner
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import ProcessRequest, Workspace


def _workspace(tmp_path: Path) -> Workspace:
    dirs = {name: tmp_path / name for name in ("app", "layers", "platform", "bp")}
    for path in dirs.values():
        path.mkdir()
    (dirs["bp"] / "marker").write_text("buildpack files\n")
    return Workspace(dirs["app"], dirs["layers"], dirs["platform"], {"acme/hello@1.0": dirs["bp"]})


def _run(
    runner: BwrapRunner, ws: Workspace, script: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    lines: list[str] = []
    request = ProcessRequest(["/bin/sh", "-c", script], {"PATH": "/bin", **(env or {})}, "/workspace")
    code = runner.run(request, ws, lines.append)
    return code, "\n".join(lines)


def test_bwrap_runs_as_build_user_with_binds_and_clean_env(
    tmp_path: Path, busybox_image: OciImage, bwrap: Tool
) -> None:
    rootfs = rootfs_cache(Layout(busybox_image.layout).image(busybox_image.tag), tmp_path / "cache")
    runner = BwrapRunner(rootfs, 1000, 1000, ca_bundle=None)
    ws = _workspace(tmp_path)
    script = (
        "id -u; id -g; stat -c %u /workspace; echo $GREETING; echo ${HOME:-nohome}; "
        "cat /cnb/buildpacks/acme_hello/1.0/marker; touch /workspace/made /layers/made; "
        "touch /etc/x 2>/dev/null || echo readonly-root; exit 7"
    )
    code, out = _run(runner, ws, script, {"GREETING": "hi"})
    assert code == 7
    assert out.splitlines() == ["1000", "1000", "1000", "hi", "nohome", "buildpack files", "readonly-root"]
    # Started by root, bwrap runs as the sandbox's host uid, never as root (sandbox_user.py).
    owner = runner.host_user.uid if runner.host_user else os.geteuid()
    assert (ws.app / "made").stat().st_uid == owner
    assert (ws.layers / "made").stat().st_uid == owner


def test_bwrap_network_none_has_only_loopback(tmp_path: Path, busybox_image: OciImage, bwrap: Tool) -> None:
    rootfs = rootfs_cache(Layout(busybox_image.layout).image(busybox_image.tag), tmp_path / "cache")
    ws = _workspace(tmp_path)
    _, shared = _run(BwrapRunner(rootfs, 1000, 1000, ca_bundle=None), ws, "cat /proc/net/dev | wc -l")
    _, isolated = _run(
        BwrapRunner(rootfs, 1000, 1000, network="none", ca_bundle=None), ws, "cat /proc/net/dev | wc -l"
    )
    assert int(isolated) == 3  # two header lines and lo
    assert int(shared) > int(isolated)
