"""The rootfs filter: package entries in, one reproducible layer out, with the CNB skeleton added."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.stack_debs import Member
from lifecycle.platform.stack_rootfs import (
    Entry,
    RootfsFacts,
    RootfsPlan,
    skeleton,
    tarball_members,
    write_rootfs,
)
from lifecycle.platform.stack_spec import UserSpec

EPOCH = 1_700_000_000


def member(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE, **attrs: object) -> Member:
    """An entry as a package tarball has it: ``./``-relative, with a stream for regular files."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.mode = kind, len(data or b""), EPOCH, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, io.BytesIO(data) if data is not None else None


@dataclass
class Written:
    """A layer written from members: its entries by name, regular files' text, and the facts."""

    infos: dict[str, tarfile.TarInfo]
    texts: dict[str, str]
    facts: RootfsFacts


def layer_of(members: Iterable[Member], plan: RootfsPlan) -> Written:
    buffer = io.BytesIO()
    tar = LayerTar(buffer, mtime=EPOCH)
    facts = write_rootfs(tar, members, plan)
    tar.close()
    buffer.seek(0)
    texts = {}
    with tarfile.open(fileobj=buffer) as written:
        infos = {info.name: info for info in written}
        for name, info in infos.items():
            stream = written.extractfile(info) if info.isreg() else None
            if stream is not None:
                texts[name] = stream.read().decode()
    return Written(infos, texts, facts)


def test_overrides_replace_package_files_and_defaults_only_fill_gaps() -> None:
    members = [
        member("./etc/", kind=tarfile.DIRTYPE, mode=0o755),
        member("./etc/os-release", b"ID=old\n"),
        member("./etc/hosts", b"from package\n"),
    ]
    plan = RootfsPlan(
        overrides=(Entry("/etc/os-release", content=b'ID=debian\nVERSION_ID="12"\n'),),
        defaults=(Entry("/etc/hosts", content=b"default\n"), Entry("/opt/new", 0o755, "dir")),
    )
    layer = layer_of(members, plan)
    assert layer.texts["/etc/os-release"] == 'ID=debian\nVERSION_ID="12"\n'
    assert layer.texts["/etc/hosts"] == "from package\n"
    assert layer.infos["/opt"].isdir() and layer.infos["/opt/new"].isdir()
    assert layer.facts.os_release() == {"ID": "debian", "VERSION_ID": "12"}


def test_names_lose_their_dot_and_mtimes_are_clamped_but_never_raised() -> None:
    members = [
        member("./usr/bin/new", b"n", mtime=EPOCH + 99),
        member("./usr/bin/old", b"o", mtime=EPOCH - 99),
    ]
    infos = layer_of(members, RootfsPlan()).infos
    assert (infos["/usr/bin/new"].mtime, infos["/usr/bin/old"].mtime) == (EPOCH, EPOCH - 99)


def test_device_nodes_are_dropped_and_hard_links_kept() -> None:
    members = [
        member("./dev/", kind=tarfile.DIRTYPE, mode=0o755),
        member("./dev/null", kind=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        member("./usr/bin/perl", b"pl", mode=0o755),
        member("./usr/bin/perl5", kind=tarfile.LNKTYPE, linkname="./usr/bin/perl"),
    ]
    infos = layer_of(members, RootfsPlan()).infos
    assert "/dev/null" not in infos and infos["/dev"].isdir()
    assert infos["/usr/bin/perl5"].islnk() and infos["/usr/bin/perl5"].linkname == "/usr/bin/perl"


def test_owners_modes_and_setuid_bits_of_package_files_are_kept() -> None:
    su = member("./usr/bin/su", b"su", mode=0o4755, uid=0, gid=0, uname="root")
    info = layer_of([su], RootfsPlan()).infos["/usr/bin/su"]
    assert (info.mode, info.uid, info.uname) == (0o4755, 0, "")


def test_skeleton_has_every_mount_point_and_the_users_home() -> None:
    layer = layer_of([], skeleton(UserSpec(name="cnb", uid=1000, gid=1001)))
    for path in ("/proc", "/dev", "/sys", "/workspace", "/layers", "/platform", "/cnb/buildpacks"):
        assert layer.infos[path].isdir(), path
    assert layer.infos["/tmp"].mode == 0o1777
    assert (layer.infos["/home/cnb"].uid, layer.infos["/home/cnb"].gid) == (1000, 1001)
    assert layer.texts["/etc/resolv.conf"] == "" and "localhost" in layer.texts["/etc/hosts"]


def test_skeleton_replaces_the_bootstrap_hosts_resolv_conf_and_hostname() -> None:
    members = [
        member("./etc/hostname", b"buildhost\n"),
        member("./etc/resolv.conf", b"nameserver 10.0.0.1\n"),
    ]
    layer = layer_of(members, skeleton(UserSpec()))
    assert layer.texts["/etc/hostname"] == layer.texts["/etc/resolv.conf"] == ""


def test_dpkg_status_gives_installed_package_versions() -> None:
    status = (
        b"Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    )
    facts = layer_of([member("./var/lib/dpkg/status", status)], RootfsPlan()).facts
    assert facts.dpkg_packages() == {"python3": "3.11.2-1+b1"}


def test_os_release_values_are_unquoted_and_a_broken_quote_is_kept() -> None:
    facts = RootfsFacts({"/usr/lib/os-release": b'ID=debian\nVERSION_ID="12"\nNAME="Debian\n# comment\n'})
    assert facts.os_release() == {"ID": "debian", "VERSION_ID": "12", "NAME": '"Debian'}


def test_tarball_members_reads_once_and_reports_bytes(tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        info, stream = member("./etc/motd", b"hello")
        tar.addfile(info, stream)
    seen: list[int] = []
    names = [info.name for info, _ in tarball_members(tarball, seen.append)]
    assert names == ["./etc/motd"]
    assert seen[-1] == tarball.stat().st_size
