"""Run as root, one staged mount namespace serves every process of a runner, entered by nsenter.

What a sandboxed process sees must be what it saw when each start staged its own namespace:
no groups, no capabilities, ``no_new_privs``, no inherited descriptor but its stdio (the
secrets' memory files reach bwrap and are closed by it), and no way back to the staged tmpfs.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from support.images import OciImage
from support.tools import Tool, require_root

from lifecycle.backends.layout import Layout
from lifecycle.execution import sandbox_stage
from lifecycle.execution.bwrap import BwrapRunner
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import ProcessRequest, Workspace
from lifecycle.execution.sandbox_stage import StagedNamespace
from lifecycle.execution.secrets import Secret, Secrets


@pytest.fixture(autouse=True)
def _as_root() -> None:
    require_root("the staged namespace is made only as root")


def _workspace(tmp_path: Path) -> Workspace:
    dirs = {name: tmp_path / name for name in ("app", "layers", "platform", "bp")}
    for path in dirs.values():
        path.mkdir()
    return Workspace(dirs["app"], dirs["layers"], dirs["platform"], {"acme/hello@1.0": dirs["bp"]})


def _held_namespaces() -> set[str]:
    gc.collect()
    own = os.readlink("/proc/self/ns/mnt")
    links = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return {link for link in links if link.startswith("mnt:[") and link != own}


def test_every_process_of_a_runner_enters_one_staging_and_keeps_no_privilege(
    tmp_path: Path, busybox_image: OciImage, bwrap: Tool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stagings: list[list[str | None]] = []
    real_stage = sandbox_stage.stage_namespace

    def counted(stage: Path, sources: list[str | None]) -> StagedNamespace:
        stagings.append(sources)
        return real_stage(stage, sources)

    monkeypatch.setattr(sandbox_stage, "stage_namespace", counted)
    held = _held_namespaces()
    rootfs = rootfs_cache(Layout(busybox_image.layout).image(busybox_image.tag), tmp_path / "cache")
    runner = BwrapRunner(rootfs, 1000, 1000, ca_bundle=None)
    assert runner.host_user is not None
    ws = _workspace(tmp_path)
    script = (
        "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' /proc/self/status; ls /proc/self/fd; "
        "cat /platform/secrets/token; echo; ls /run/pybuild-sandbox 2>&1 | head -1"
    )
    secrets = Secrets((Secret("token", b"value-of-the-token"),))
    outputs = []
    for _ in range(3):
        lines: list[str] = []
        request = ProcessRequest(["/bin/sh", "-c", script], {"PATH": "/bin"}, "/workspace", secrets)
        assert runner.run(request, ws, lines.append) == 0
        outputs.append(lines)
    assert outputs[0] == outputs[1] == outputs[2]
    status = dict(line.split(":", 1) for line in outputs[0] if ":" in line and not line.startswith("ls"))
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["1000"] * 4
    assert status["Groups"].split() == []  # host root's groups would show as the overflow gid
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[name], 16) == 0, name
    assert status["NoNewPrivs"].strip() == "1"
    fds = [line for line in outputs[0] if line.isdigit()]
    assert fds == ["0", "1", "2", "3"]  # stdio and ls's own directory: no namespace, no memory file
    assert "value-of-the-token" in outputs[0]
    assert "No such file or directory" in outputs[0][-1]
    assert len(stagings) == 1
    assert len(_held_namespaces() - held) == 1
    runner.close()
    assert _held_namespaces() <= held
