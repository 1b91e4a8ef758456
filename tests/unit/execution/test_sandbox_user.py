"""Run as root, bwrap starts as an unprivileged host uid with staged sources; otherwise as before."""

from __future__ import annotations

import gc
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from lifecycle.errors import ConfigError, ExitCode, PybuildError
from lifecycle.execution import sandbox_stage
from lifecycle.execution.bwrap import BwrapRunner, container_command
from lifecycle.execution.rootfs import rootfs_cache
from lifecycle.execution.runner import ProcessRequest, Workspace
from lifecycle.execution.sandbox_stage import StagedNamespace, stage_namespace
from lifecycle.execution.sandbox_user import (
    DEFAULT_SANDBOX_ID,
    STAGE_DIR,
    HostUser,
    Staging,
    _check_groups_can_be_dropped,
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


def _staged(runner: BwrapRunner, argv: list[str]) -> dict[str, str]:
    """bwrap's binds, by destination, with each staged path turned back into its host source."""
    prefix = f"{STAGE_DIR}/"
    return {
        dest: runner.staging.sources[int(src[len(prefix) :])] if src.startswith(prefix) else src
        for dest, src in _binds(argv).items()
    }


def _mount_namespaces() -> set[str]:
    """The mount namespaces this process holds a descriptor to, besides its own."""
    gc.collect()
    own = os.readlink("/proc/self/ns/mnt")
    links = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return {link for link in links if link.startswith("mnt:[") and link != own}


root_only = pytest.mark.usefixtures("as_root")


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
    with staging.command(["bwrap", "--", "true"]) as argv:
        assert argv == ["bwrap", "--", "true"]


def test_staging_numbers_each_source_once_for_its_whole_life(tmp_path: Path) -> None:
    staging = Staging(SANDBOX)
    assert [staging.path(tmp_path / "a"), staging.path("/etc/hosts"), staging.path(tmp_path / "a")] == [
        f"{STAGE_DIR}/0",
        f"{STAGE_DIR}/1",
        f"{STAGE_DIR}/0",
    ]
    assert staging.path(tmp_path / "b") == f"{STAGE_DIR}/2"
    assert staging.sources == [str(tmp_path / "a"), "/etc/hosts", str(tmp_path / "b")]


def test_root_runner_binds_only_staged_sources_and_confines_the_build_user(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    runner = BwrapRunner(tmp_path / "rootfs", 1000, 1001, network="none", ca_bundle=None, host_user=SANDBOX)
    argv = runner.command(_request(), workspace, "/usr/bin/bwrap")
    assert {dest: src for dest, src in _staged(runner, argv).items() if dest != "/proc/sys"} == {
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
    assert runner.command(_request(), workspace, "/usr/bin/bwrap") == argv  # the same numbers every run


def test_proc_sys_is_read_only_over_the_new_proc_and_the_network_files_are_staged(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/hosts").write_text("")
    runner = BwrapRunner(rootfs, 1000, 1000, ca_bundle=None, host_user=SANDBOX)
    argv = runner.command(_request(), _workspace(tmp_path), "bwrap")
    assert argv.index("--proc") < argv.index("/proc/sys") - 1
    assert argv[argv.index("/proc/sys") - 1 : argv.index("/proc/sys") + 2] == [
        "--ro-bind",
        "/proc/sys",
        "/proc/sys",
    ]
    assert "--share-net" in argv
    assert _binds(argv)["/etc/hosts"].startswith(f"{STAGE_DIR}/")
    assert _staged(runner, argv)["/etc/hosts"] == "/etc/hosts"


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
    staging = Staging(SANDBOX)
    argv = container_command(
        tmp_path / "rootfs", ["/cnb/process/web"], {"PORT": "8080"}, staging, uid=0, gid=0, network="none"
    )
    assert staging.sources == [str(tmp_path / "rootfs")]
    assert _binds(argv)["/"] == f"{STAGE_DIR}/0"
    assert argv[argv.index("--unshare-all") :][: len(CONFINED)] == CONFINED
    assert argv[argv.index("--uid") + 1] == "0"
    assert argv[-2:] == ["--", "/cnb/process/web"]
    assert container_command(tmp_path, ["sh"], {}, Staging(None))[0] == "bwrap"


@root_only
def test_one_namespace_serves_every_start_and_is_entered_as_the_sandbox_user(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "file").write_text("staged\n")
    staging = Staging(SANDBOX)
    staged = staging.path(source)
    outputs, namespaces = [], []
    for _ in range(3):
        with staging.command(["cat", f"{staged}/file"]) as argv:
            assert argv[0].endswith("nsenter")
            assert argv[2:5] == [f"--setgid={SANDBOX.gid}", f"--setuid={SANDBOX.uid}", "--"]
            outputs.append(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
            namespaces.append(os.readlink(argv[1].removeprefix("--mount=")))
    assert outputs == ["staged\n"] * 3
    assert len(set(namespaces)) == 1 and namespaces[0] != os.readlink("/proc/self/ns/mnt")
    assert not (STAGE_DIR / "0").exists()  # the tmpfs and binds are in that namespace only
    staging.close()
    assert namespaces[0] not in _mount_namespaces()


@root_only
def test_the_sandbox_user_has_no_groups_and_no_capabilities(tmp_path: Path) -> None:
    staging = Staging(SANDBOX)
    with staging.command(["cat", "/proc/self/status"]) as argv:
        # Started with supplementary groups (root's, say): nsenter must drop them all.
        status = subprocess.run(argv, capture_output=True, text=True, check=True, extra_groups=[0, 4]).stdout
    staging.close()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    assert fields["Uid"].split() == [str(SANDBOX.uid)] * 4
    assert fields["Gid"].split() == [str(SANDBOX.gid)] * 4
    assert fields["Groups"].split() == []
    for name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(fields[name], 16) == 0, name
    assert fields["NoNewPrivs"].strip() == "0"  # bwrap sets it; nothing here needs it yet


def test_groups_that_could_not_be_dropped_refuse_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = tmp_path / "setgroups"
    denied.write_text("deny\n")
    monkeypatch.setattr(os, "getgroups", lambda: [0, 4])
    with pytest.raises(PybuildError) as caught:
        _check_groups_can_be_dropped(denied)
    assert f"{denied} says deny" in str(caught.value) and "[0, 4]" in str(caught.value)
    denied.write_text("allow\n")
    _check_groups_can_be_dropped(denied)
    _check_groups_can_be_dropped(tmp_path / "missing")  # before Linux 3.19: never denied
    monkeypatch.setattr(os, "getgroups", list)
    denied.write_text("deny\n")
    _check_groups_can_be_dropped(denied)  # no groups to keep


@root_only
def test_a_source_that_is_replaced_or_added_is_staged_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stagings: list[list[str | None]] = []

    def counted(stage: Path, sources: list[str | None]) -> StagedNamespace:
        stagings.append(list(sources))
        return stage_namespace(stage, sources)

    monkeypatch.setattr(sandbox_stage, "stage_namespace", counted)
    source = tmp_path / "src"
    source.mkdir()
    (source / "file").write_text("first\n")
    staging = Staging(SANDBOX)

    def read(*extra: Path) -> str:
        named = [staging.path(source), *(staging.path(path) for path in extra)]
        with staging.command(["sh", "-c", 'cat "$0"/file', *named]) as argv:
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    assert [read(), read()] == ["first\n", "first\n"]
    source.rename(tmp_path / "old")
    source.mkdir()
    (source / "file").write_text("second\n")
    assert read() == "second\n"
    other = tmp_path / "other"
    other.mkdir()
    assert [read(other), read(other)] == ["second\n", "second\n"]
    staging.close()
    assert stagings == [[str(source)], [str(source)], [str(source), str(other)]]


@root_only
def test_a_missing_source_fails_only_a_start_that_binds_it(tmp_path: Path) -> None:
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    gone.mkdir()
    kept.mkdir()
    staging = Staging(SANDBOX)
    staging.path(gone)
    gone.rmdir()
    with staging.command(["ls", staging.path(kept)]) as argv:
        assert subprocess.run(argv, capture_output=True).returncode == 0
    with pytest.raises(PybuildError) as caught, staging.command(["ls", staging.path(gone)]):
        pass
    assert str(gone) in str(caught.value)
    staging.close()


@root_only
def test_staging_leaves_no_process_no_host_mount_and_no_namespace_behind(tmp_path: Path) -> None:
    threads, held = threading.active_count(), _mount_namespaces()
    mounts = Path("/proc/self/mounts").read_text()
    (tmp_path / "src").mkdir()
    runner_staging = Staging(SANDBOX)
    with runner_staging.command(["true", runner_staging.path(tmp_path / "src")]) as argv:
        subprocess.run(argv, check=True)
    assert len(_mount_namespaces() - held) == 1  # the staged one, held by this process only
    assert threading.active_count() == threads
    assert Path("/proc/self/mounts").read_text() == mounts
    del runner_staging, argv
    gc.collect()
    assert _mount_namespaces() <= held  # closed with the object that held it


@root_only
def test_a_failed_staging_raises_one_line_and_holds_nothing(tmp_path: Path) -> None:
    held = _mount_namespaces()
    (tmp_path / "stage").write_text("not a dir")
    with pytest.raises(PybuildError) as caught:
        stage_namespace(tmp_path / "stage", [str(tmp_path)])
    assert str(caught.value).endswith("it is not a directory owned by root (remove it)")
    with pytest.raises(PybuildError) as caught:
        stage_namespace(STAGE_DIR, [str(tmp_path / "missing")])
    assert str(caught.value).endswith(f"bind {tmp_path / 'missing'}: No such file or directory")
    assert _mount_namespaces() <= held


@root_only
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
