"""Build secrets in memory: needles, the log mask, the streaming layer scanner, and their mounts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lifecycle.errors import ExitCode, PybuildError
from lifecycle.execution.bwrap import BwrapRunner
from lifecycle.execution.host import HostRunner
from lifecycle.execution.runner import ProcessRequest, Workspace
from lifecycle.execution.secret_mounts import bwrap_secret_args, host_secrets, memory_dir, secret_fds
from lifecycle.execution.secrets import Secret, Secrets
from lifecycle.phases.export_layers import LayerWriter, SecretInLayer, dir_fill

TOKEN = b"tok-0123456789abcdef"
KEY = b"-----BEGIN TEST KEY-----\nkeybody-ABCDEFGH\n-----END TEST KEY-----\n"
SECRETS = Secrets((Secret("pip-token", TOKEN), Secret("index-key", KEY)))


def test_a_secrets_repr_never_shows_its_value() -> None:
    assert TOKEN.decode() not in repr(SECRETS)
    assert "pip-token" in repr(SECRETS)


def test_needles_are_the_stripped_value_and_its_long_lines_without_pem_armour() -> None:
    assert Secret("a", b"  abcdefghij\n").needles == (b"abcdefghij",)
    assert set(SECRETS.needles) == {TOKEN, KEY.strip(), b"keybody-ABCDEFGH"}
    assert Secret("lines", b"abc\ndefg\n").needles == (b"abc\ndefg",)
    assert Secret("short", b" abc\ndef \n").needles == ()
    assert SECRETS.needles[b"keybody-ABCDEFGH"] == "index-key"


def test_mask_replaces_every_value_in_a_line_and_leaves_other_text() -> None:
    line = f"token={TOKEN.decode()} key=keybody-ABCDEFGH again {TOKEN.decode()}"
    assert SECRETS.mask(line) == "token=*** key=*** again ***"
    assert (
        SECRETS.mask("-----BEGIN TEST KEY----- nothing secret") == "-----BEGIN TEST KEY----- nothing secret"
    )
    seen: list[str] = []
    SECRETS.masking(seen.append)(f"x{TOKEN.decode()}x")
    assert seen == ["x***x"]


def test_scrub_env_drops_variables_that_carry_a_secret() -> None:
    env = {"PIP_TOKEN": TOKEN.decode(), "URL": f"https://u:{TOKEN.decode()}@index", "PATH": "/bin"}
    assert SECRETS.scrub_env(env) == {"PATH": "/bin"}


@pytest.mark.parametrize("size", [1, 3, 7, 19, 20, 21, 64])
def test_scanner_finds_a_value_cut_across_chunks_of_any_size(size: int) -> None:
    for start in range(size):  # the value begins at every offset of a chunk
        stream = b"x" * (37 + start) + TOKEN + b"y" * 41
        scanner = SECRETS.scanner()
        for offset in range(0, len(stream), size):
            scanner.feed(bytearray(stream[offset : offset + size]))
        assert scanner.found == "pip-token", (size, start)


def test_scanner_finds_nothing_in_a_stream_of_near_misses() -> None:
    scanner = SECRETS.scanner()
    for piece in (TOKEN[:-1], b"|", TOKEN[1:], b"keybody-ABCDEFG", b"|H"):
        assert scanner.feed(piece) is None
    assert scanner.found is None


def test_scanner_without_secrets_finds_nothing() -> None:
    assert Secrets().scanner().feed(TOKEN) is None


def test_layer_writer_refuses_a_tar_holding_a_secret_across_its_1mib_chunks(tmp_path: Path) -> None:
    source = tmp_path / "layer"
    source.mkdir()
    padding = (1 << 20) - 700  # the token straddles the first chunk boundary of the tar stream
    (source / "blob").write_bytes(b"\0" * padding + TOKEN + b"\0" * 4096)
    writer = LayerWriter(tmp_path / "scratch", secrets=SECRETS)
    with pytest.raises(SecretInLayer) as caught:
        writer.tar("acme/bp:blob", dir_fill(source, "/layers/acme_bp/blob", 1000, 1000))
    assert caught.value.exit_code == ExitCode.EXPORT
    assert "'acme/bp:blob'" in str(caught.value) and "'pip-token'" in str(caught.value)
    assert TOKEN.decode() not in str(caught.value)
    assert not list((tmp_path / "scratch" / "tars").iterdir())  # the tar went


def test_layer_writer_names_a_layer_by_masked_identifier(tmp_path: Path) -> None:
    source = tmp_path / "layer"
    source.mkdir()
    (source / "f").write_bytes(TOKEN)
    writer = LayerWriter(tmp_path / "scratch", secrets=SECRETS)
    with pytest.raises(SecretInLayer) as caught:
        writer.tar(f"acme/bp:{TOKEN.decode()}", dir_fill(source, "/layers/x", 0, 0))
    assert TOKEN.decode() not in str(caught.value) and "acme/bp:***" in str(caught.value)


def test_layer_writer_keeps_a_clean_tar(tmp_path: Path) -> None:
    source = tmp_path / "layer"
    source.mkdir()
    (source / "f").write_bytes(TOKEN[:-1] + b"-not-it")
    tarred = LayerWriter(tmp_path / "scratch", secrets=SECRETS).tar("acme/bp:f", dir_fill(source, "/l", 0, 0))
    assert tarred.path.is_file()


def test_secret_fds_hold_each_value_from_its_start_and_close_after() -> None:
    with secret_fds(SECRETS) as fds:
        assert os.read(fds["pip-token"], 100) == TOKEN
        assert os.pread(fds["index-key"], 100, 0) == KEY
        assert not os.get_inheritable(fds["pip-token"])  # passed to bwrap only, through pass_fds
        opened = list(fds.values())
    for fd in opened:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_bwrap_mounts_secrets_read_only_from_fds_on_a_private_tmpfs() -> None:
    args = bwrap_secret_args({"pip-token": 5, "index-key": 6})
    assert args == [
        *("--perms", "0500", "--tmpfs", "/platform/secrets"),
        *("--perms", "0400", "--ro-bind-data", "5", "/platform/secrets/pip-token"),
        *("--perms", "0400", "--ro-bind-data", "6", "/platform/secrets/index-key"),
        *("--remount-ro", "/platform/secrets"),
    ]
    assert bwrap_secret_args({}) == []


def test_bwrap_command_carries_no_secret_value(tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in ("app", "layers", "platform", "bp")}
    workspace = Workspace(dirs["app"], dirs["layers"], dirs["platform"], {"acme/hello@1.0": dirs["bp"]})
    runner = BwrapRunner(tmp_path / "rootfs", 1000, 1000, host_user=None)
    request = ProcessRequest(["/bin/true"], {}, "/workspace", SECRETS)
    argv = runner.command(request, workspace, "bwrap", {"pip-token": 5})
    assert "--ro-bind-data" in argv
    assert argv.index("--ro-bind-data") > argv.index("/platform")  # over the platform bind
    assert not [arg for arg in argv if TOKEN.decode() in arg or "keybody" in arg]


def test_host_secrets_live_in_memory_behind_a_symlink_only_while_the_run_lasts(tmp_path: Path) -> None:
    platform = tmp_path / "platform"
    platform.mkdir()
    with host_secrets(platform, SECRETS):
        link = platform / "secrets"
        private = link.resolve()
        assert link.is_symlink() and private.parent == Path(memory_dir())
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert (link / "pip-token").read_bytes() == TOKEN
        assert stat.S_IMODE((link / "index-key").stat().st_mode) == 0o400
    assert not link.exists() and not link.is_symlink() and not private.exists()


def test_host_runner_gives_secrets_to_the_process_and_removes_them(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, tmp_path, tmp_path / "platform")
    workspace.platform.mkdir()
    lines: list[str] = []
    script = 'cat "$0/secrets/pip-token"; echo; test -e "$0/secrets" || echo gone'
    request = ProcessRequest(
        ["sh", "-c", script, str(workspace.platform)], {"PATH": "/bin:/usr/bin"}, "/", SECRETS
    )
    assert HostRunner().run(request, workspace, lines.append) == 0
    assert lines == [TOKEN.decode()]
    assert not (workspace.platform / "secrets").is_symlink()


def test_memory_dir_takes_the_first_candidate_on_a_tmpfs(tmp_path: Path) -> None:
    shm, disk = tmp_path / "shm", tmp_path / "disk"
    shm.mkdir()
    disk.mkdir()
    mounts = f"/dev/vda / ext4 rw 0 0\ntmpfs {shm} tmpfs rw 0 0\n"
    assert memory_dir((str(disk), str(shm)), mounts) == str(shm)
    with pytest.raises(PybuildError, match="is a tmpfs"):
        memory_dir((str(disk),), mounts)
