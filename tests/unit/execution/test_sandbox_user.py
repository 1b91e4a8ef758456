"""Run as root, bwrap starts as an unprivileged host uid with staged sources; otherwise as before."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from lifecycle.errors import ConfigError, ExitCode
from lifecycle.execution import sandbox_enter
from lifecycle.execution.bwrap import BwrapRunner, container_command
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import ProcessRequest, Workspace
from lifecycle.execution.sandbox_user import (
    DEFAULT_SANDBOX_ID,
    ENTER_SCRIPT,
    STAGE_DIR,
    HostUser,
    Staging,
    hand_over,
    sandbox_host_user,
)
from lifecycle.oci import ImageConfig, LayerTar, write_layer
from lifecycle.oci.mutate import new_image

SANDBOX = HostUser(2_000_000_000, 2_000_000_001)
CONFINED = ["--unshare-all", "--unshare-user", "--disable-userns", "--new-session", "--cap-drop", "ALL"]


def _workspace(tmp_path: Path) -> Workspace:
    dirs = {name: tmp_path / "private" / name for name in ("app", "layers", "platform", "bp")}
    return Workspace(dirs["app"], dirs["layers"], dirs["platform"], {"acme/hello@1.0": dirs["bp"]})


def _request() -> ProcessRequest:
    return ProcessRequest(["/cnb/buildpacks/acme_hello/1.0/bin/build"], {"CNB_X": "1"}, "/workspace")


def _binds(argv: list[str]) -> dict[str, str]:
    """bwrap's ``--bind``/``--ro-bind SOURCE DEST`` pairs, by destination."""
    return {
        argv[i + 2]: argv[i + 1]
        for i, arg in enumerate(argv)
        if arg in ("--bind", "--ro-bind") and i + 2 < len(argv)
    }


def _split(command: list[str]) -> tuple[dict[str, object], list[str]]:
    """The launcher's spec and the bwrap argv behind it."""
    assert command[:4] == [sys.executable, "-I", "-S", str(ENTER_SCRIPT)]
    return json.loads(command[4]), command[5:]


def test_only_root_gets_a_sandbox_host_user_and_the_default_is_the_dedicated_id() -> None:
    assert sandbox_host_user({}, euid=1000) is None
    assert sandbox_host_user({"PYBUILD_SANDBOX_UID": "5"}, euid=1000) is None
    assert sandbox_host_user({}, euid=0) == HostUser(DEFAULT_SANDBOX_ID, DEFAULT_SANDBOX_ID)
    env = {"PYBUILD_SANDBOX_UID": "990", "PYBUILD_SANDBOX_GID": " 991 "}
    assert sandbox_host_user(env, euid=0) == HostUser(990, 991)


@pytest.mark.parametrize("value", ["0", "-5", "nobody", "4294967295", "1.5"])
def test_a_root_or_malformed_sandbox_id_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        sandbox_host_user({"PYBUILD_SANDBOX_GID": value}, euid=0)
    assert caught.value.exit_code == ExitCode.BAD_ARGS
    assert f"PYBUILD_SANDBOX_GID={value!r}" in str(caught.value)


def test_staging_keeps_host_paths_when_bwrap_runs_as_this_user(tmp_path: Path) -> None:
    staging = Staging(None)
    assert staging.path(tmp_path) == str(tmp_path)
    assert staging.command(["bwrap", "--", "true"]) == ["bwrap", "--", "true"]


def test_staging_numbers_each_source_once_and_hands_them_to_the_launcher(tmp_path: Path) -> None:
    staging = Staging(SANDBOX)
    assert [staging.path(tmp_path / "a"), staging.path("/etc/hosts"), staging.path(tmp_path / "a")] == [
        f"{STAGE_DIR}/0",
        f"{STAGE_DIR}/1",
        f"{STAGE_DIR}/0",
    ]
    spec, bwrap = _split(staging.command(["bwrap", "--", "true"]))
    assert spec == {
        "uid": SANDBOX.uid,
        "gid": SANDBOX.gid,
        "stage": str(STAGE_DIR),
        "sources": [str(tmp_path / "a"), "/etc/hosts"],
    }
    assert bwrap == ["bwrap", "--", "true"]


def test_root_runner_binds_only_staged_sources_and_confines_the_build_user(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    runner = BwrapRunner(tmp_path / "rootfs", 1000, 1001, network="none", ca_bundle=None, host_user=SANDBOX)
    spec, argv = _split(runner.command(_request(), workspace, "/usr/bin/bwrap"))
    assert spec["uid"] == SANDBOX.uid and spec["gid"] == SANDBOX.gid
    sources = spec["sources"]
    assert isinstance(sources, list)
    staged = {
        dest: sources[int(src.rsplit("/", 1)[1])] for dest, src in _binds(argv).items() if dest != "/proc/sys"
    }
    assert staged == {
        "/": str(tmp_path / "rootfs"),
        "/workspace": str(workspace.app),
        "/layers": str(workspace.layers),
        "/platform": str(workspace.platform),
        "/cnb/buildpacks/acme_hello/1.0": str(workspace.buildpacks["acme/hello@1.0"]),
    }
    assert not any(str(tmp_path) in arg for arg in argv)
    assert argv[0] == "/usr/bin/bwrap"
    assert argv[argv.index("--unshare-all") :][: len(CONFINED)] == CONFINED
    assert argv[argv.index("--uid") + 1] == "1000" and argv[argv.index("--gid") + 1] == "1001"
    assert argv[argv.index("--", argv.index("--clearenv")) + 1 :] == _request().argv


def test_proc_sys_is_read_only_over_the_new_proc_and_the_network_files_are_staged(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/hosts").write_text("")
    runner = BwrapRunner(rootfs, 1000, 1000, ca_bundle=None, host_user=SANDBOX)
    spec, argv = _split(runner.command(_request(), _workspace(tmp_path), "bwrap"))
    assert argv.index("--proc") < argv.index("/proc/sys") - 1
    assert argv[argv.index("/proc/sys") - 1 : argv.index("/proc/sys") + 2] == [
        "--ro-bind",
        "/proc/sys",
        "/proc/sys",
    ]
    assert "--share-net" in argv
    hosts = _binds(argv)["/etc/hosts"]
    sources = spec["sources"]
    assert isinstance(sources, list) and sources[int(hosts.rsplit("/", 1)[1])] == "/etc/hosts"


def test_unprivileged_runner_keeps_todays_binds_plus_the_new_confinement(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    runner = BwrapRunner(tmp_path / "rootfs", 1000, 1000, network="none", ca_bundle=None, host_user=None)
    argv = runner.command(_request(), workspace, "bwrap")
    assert argv[0] == "bwrap"
    assert _binds(argv)["/"] == str(tmp_path / "rootfs")
    assert _binds(argv)["/workspace"] == str(workspace.app)
    assert argv[argv.index("--unshare-all") :][: len(CONFINED)] == CONFINED
    assert "--share-net" not in argv


def test_pybuild_run_gets_the_same_confinement_and_staging(tmp_path: Path) -> None:
    command = container_command(
        tmp_path / "rootfs",
        ["/cnb/process/web"],
        {"PORT": "8080"},
        uid=0,
        gid=0,
        network="none",
        host_user=SANDBOX,
    )
    spec, argv = _split(command)
    assert spec["sources"] == [str(tmp_path / "rootfs")]
    assert _binds(argv)["/"] == f"{STAGE_DIR}/0"
    assert argv[argv.index("--unshare-all") :][: len(CONFINED)] == CONFINED
    assert argv[argv.index("--uid") + 1] == "0"
    assert argv[-2:] == ["--", "/cnb/process/web"]
    assert container_command(tmp_path, ["sh"], {}, host_user=None)[0] == "bwrap"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another uid needs root")
def test_hand_over_gives_every_entry_to_the_sandbox_user_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file")
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "src/main.py").write_text("print()")
    (app / "link").symlink_to(outside)
    hand_over([app], SANDBOX)
    for path in (app, app / "src", app / "src/main.py", app / "link"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (SANDBOX.uid, SANDBOX.gid), path
    assert (outside.stat().st_uid, outside.stat().st_gid) == (0, 0)


def test_extracted_root_filesystem_can_be_entered_by_another_uid(tmp_path: Path) -> None:
    def layer(tar: LayerTar) -> None:
        tar.add_file("etc/os-release", b"ID=test\n")  # no "./" entry: the root's mode is ours to choose

    image = new_image(ImageConfig(), [write_layer(tmp_path / "blobs", layer)])
    root = rootfs_cache(image, tmp_path / "cache")
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    root.chmod(0o700)  # as extracted before sandboxes ran as another uid
    assert rootfs_cache(image, tmp_path / "cache") == root
    assert stat.S_IMODE(root.stat().st_mode) == 0o755


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sandbox_enter.py"], "usage"),
        (["sandbox_enter.py", "{", "bwrap"], "Expecting"),
        (["sandbox_enter.py", "[1]", "bwrap"], "not a JSON object"),
        (
            ["sandbox_enter.py", json.dumps({"uid": 0, "gid": 5, "stage": "/s", "sources": []}), "bwrap"],
            "drop to 0:5",
        ),
    ],
)
def test_the_launcher_refuses_a_bad_spec_before_touching_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sandbox_enter.main(argv) == 125
    err = capsys.readouterr().err
    assert err.startswith("pybuild: cannot start the sandbox: ") and message in err
