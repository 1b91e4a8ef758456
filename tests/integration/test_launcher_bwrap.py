"""The in-image launcher, run for real in a bubblewrap sandbox that looks like an app image.

Each test lays out `/layers` (launch layers plus `config/launch-plan.sh`), `/workspace`
and `/cnb` (`lifecycle/launcher` and `process/<type>` symlinks) as the exporter would, then
starts a process with the image env of EXP-9. Three run images: this host's root read-only
with dash as `/bin/sh` (and `/bin/bash` hidden unless a test wants it), the same with bash
bound over dash, and a rootfs that holds nothing but busybox. The host root is bound entry
by entry rather than as `/`, because bwrap cannot create the `/layers` mount point inside a
read-only `/`. Covers LCH-2..LCH-8 and the BLD-7 env rules.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.tools import unavailable

from lifecycle.launcher import (
    LAUNCHER_MODE,
    PLAN_PATH,
    LaunchPlan,
    Process,
    launcher_script,
    render_plan,
    scan_layers,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("bwrap")]

IMAGE_ENV = {
    "CNB_LAYERS_DIR": "/layers",
    "CNB_APP_DIR": "/workspace",
    "CNB_PLATFORM_API": "0.15",
    "CNB_DEPRECATION_MODE": "quiet",
    "PATH": "/cnb/process:/cnb/lifecycle:/usr/local/bin:/usr/bin:/bin",
}
SHOW = """#!/bin/sh
printf '%s\\n' '--- show ---' "pid=$$" "cwd=$(pwd)"
for arg in "$@"; do printf 'arg[%s]\\n' "$arg"; done
export -p
"""
# TOML escapes in the output (\\t) and the launcher's pid, which an exec'd process keeps
FIRST_EXEC_D = """#!/bin/sh
echo "to stdout"
printf 'FIRST = "a\\\\tb"\\nLAUNCHER_PID="%s"\\n' "$PPID" >&3
"""
LAUNCHER = "/cnb/lifecycle/launcher"
_SINGLE, _DOUBLE, _ANSI_C = r"'([^']*)'", r'"((?:[^"\\]|\\.)*)"', r"\$'((?:[^'\\]|\\.)*)'"
_QUOTED = re.compile(f"{_SINGLE}|{_DOUBLE}|{_ANSI_C}", re.S)
_EXPORT = re.compile(rf"^export (\w+)(?:=((?:{_SINGLE}|{_DOUBLE}|{_ANSI_C})*))?$", re.S | re.M)
_C_ESCAPES = {b"t": 9, b"n": 10, b"r": 13, b"a": 7, b"b": 8, b"f": 12, b"v": 11, b"e": 27, b"E": 27}
SHOW_PATH = "/workspace/show"


@dataclass
class Shown:
    """What /workspace/show saw: its pid, working dir, arguments and env."""

    pid: str
    cwd: str
    args: list[str]
    env: dict[str, str]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def shown(self) -> Shown:
        assert self.returncode == 0, self.stderr
        lines = self.stdout.split("--- show ---\n", 1)[1].split("\n")
        pid, cwd = lines[0].removeprefix("pid="), lines[1].removeprefix("cwd=")
        args = [line[4:-1] for line in lines[2:] if line.startswith("arg[")]
        exports = "\n".join(lines[2 + len(args) :])
        return Shown(
            pid, cwd, args, {m[1]: _unquote(m[2]) for m in _EXPORT.finditer(exports) if m[2] is not None}
        )


def _unquote(value: str) -> str:
    """A value as `export -p` quotes it: 'single' segments (dash, busybox), "double" and $'C' ones (bash)."""
    parts = []
    for match in _QUOTED.finditer(value):
        single, double, ansi_c = match[1], match[2], match[3]
        if single is not None:
            parts.append(single)
        elif double is not None:
            parts.append(re.sub(r'\\([$`"\\\n])', r"\1", double))
        else:
            parts.append(_ansi_c(ansi_c))
    return "".join(parts)


def _ansi_c(body: str) -> str:
    def byte(match: re.Match[bytes]) -> bytes:
        escape = match[1]
        if escape[:1] in b"01234567":
            return bytes([int(escape, 8)])
        if escape[:1] == b"x":
            return bytes([int(escape[1:], 16)])
        return bytes([_C_ESCAPES.get(escape, escape[0])])

    raw = re.sub(rb"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)", byte, body.encode(), flags=re.S)
    return raw.decode("utf-8", "surrogateescape")


class FakeImage:
    """An app image's /layers, /workspace and /cnb as host dirs, plus a sandbox to start it in."""

    def __init__(self, root: Path, sandbox: list[str], bash: str | None = None) -> None:
        """`bash` is where the run image has bash, which `run` hides unless asked not to."""
        self.layers, self.workspace, self.cnb = root / "layers", root / "workspace", root / "cnb"
        for directory in (self.layers, self.workspace, self.cnb):
            directory.mkdir()
        self.sandbox, self.bash = sandbox, bash
        self.buildpacks: list[str] = []
        self.file("show", SHOW, mode=0o755)

    def file(self, path: str, content: str, mode: int = 0o644) -> None:
        target = self.workspace / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)

    def layer(self, buildpack_id: str, name: str, files: Mapping[str, str]) -> None:
        """A launch layer; files under exec.d/ become executable, a trailing '/' makes a dir."""
        if buildpack_id not in self.buildpacks:
            self.buildpacks.append(buildpack_id)
        buildpack_dir = self.layers / buildpack_id.replace("/", "_")
        buildpack_dir.mkdir(exist_ok=True)
        (buildpack_dir / f"{name}.toml").write_text("[types]\nlaunch = true\n")
        for relative, content in files.items():
            target = buildpack_dir / name / relative
            if relative.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(0o755 if relative.startswith("exec.d/") else 0o644)

    def export(self, *processes: Process) -> None:
        """What the exporter does: plan file in the config layer, launcher, process symlinks."""
        layers = scan_layers(self.layers, self.buildpacks, "/layers")
        plan_file = self.layers / PLAN_PATH
        plan_file.parent.mkdir(parents=True)
        plan_file.write_bytes(render_plan(LaunchPlan(processes=processes, layers=tuple(layers))))
        launcher = self.cnb / "lifecycle" / "launcher"
        launcher.parent.mkdir()
        launcher.write_bytes(launcher_script())
        launcher.chmod(LAUNCHER_MODE)
        (self.cnb / "process").mkdir()
        for process in processes:
            (self.cnb / "process" / process.type).symlink_to(LAUNCHER)

    def run(self, *argv: str, env: Mapping[str, str] | None = None, bash: bool = False) -> Run:
        binds = ["--bind", str(self.layers), "/layers", "--bind", str(self.workspace), "/workspace"]
        binds += ["--ro-bind", str(self.cnb), "/cnb"]
        if self.bash and not bash:
            binds += ["--ro-bind", "/dev/null", self.bash]
        command = [*self.sandbox, *binds, "--chdir", "/workspace"]
        result = subprocess.run(
            [*command, *argv],
            env={**IMAGE_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(result.returncode, result.stdout, result.stderr)


_KERNEL_FS = ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def _host_root() -> list[str]:
    args = ["bwrap", "--die-with-parent", "--unshare-pid", *_KERNEL_FS]
    for name in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64"):
        entry = Path("/") / name
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            args += ["--ro-bind", str(entry), str(entry)]
    return args


def _busybox_root(rootfs: Path) -> list[str]:
    for directory in ("bin", "proc", "dev", "tmp", "layers", "workspace", "cnb"):
        (rootfs / directory).mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    return ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", str(rootfs), "/", *_KERNEL_FS]


def _dash_is_sh() -> bool:
    return os.path.realpath("/bin/sh") == "/usr/bin/dash"


@pytest.fixture(params=["dash", "busybox", "bash"])
def image(request: pytest.FixtureRequest, tmp_path: Path) -> FakeImage:
    """The run image flavours: Debian's dash, busybox alone, and bash as /bin/sh (in posix mode)."""
    (tmp_path / "image").mkdir()
    if request.param in ("dash", "bash") and not _dash_is_sh():
        unavailable("this host's /bin/sh is not dash: apt-get install dash")
    if request.param == "dash":
        return FakeImage(tmp_path / "image", _host_root(), bash="/usr/bin/bash")
    if request.param == "bash":
        return FakeImage(tmp_path / "image", [*_host_root(), "--ro-bind", "/usr/bin/bash", "/usr/bin/dash"])
    if shutil.which("busybox") is None:
        unavailable("busybox is not installed: apt-get install busybox-static")
    return FakeImage(tmp_path / "image", _busybox_root(tmp_path / "rootfs"))


def _proc(type_: str, *args: str, api: str = "0.12", **fields: Any) -> Process:
    return Process(
        type=type_, command=(SHOW_PATH,), args=args, buildpack_id="acme/app", buildpack_api=api, **fields
    )


# ---- process selection (LCH-2) ------------------------------------------------------


def test_no_arguments_run_the_default_process(image: FakeImage) -> None:
    image.export(_proc("web", "web-arg", default=True), _proc("worker", "worker-arg"))
    shown = image.run(LAUNCHER).shown
    assert (shown.args, shown.cwd) == (["web-arg"], "/workspace")


def test_process_symlink_basename_selects_the_type(image: FakeImage) -> None:
    image.export(_proc("web", "web-arg", default=True), _proc("worker", "worker-arg"))
    assert image.run("/cnb/process/worker").shown.args == ["worker-arg"]


def test_cnb_process_type_selects_the_type_and_is_not_passed_on(image: FakeImage) -> None:
    image.export(_proc("web", "web-arg", default=True), _proc("worker", "worker-arg"))
    shown = image.run(LAUNCHER, env={"CNB_PROCESS_TYPE": "worker"}).shown
    assert shown.args == ["worker-arg"]
    assert not {"CNB_PROCESS_TYPE", "CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API"} & shown.env.keys()


def test_unknown_process_type_exits_82_with_one_line(image: FakeImage) -> None:
    image.export(_proc("web", default=True))
    run = image.run(LAUNCHER, env={"CNB_PROCESS_TYPE": "nope"})
    assert (run.returncode, run.stdout) == (82, "")
    assert run.stderr == "ERROR: failed to launch: unknown process type 'nope'\n"


def test_nothing_to_run_exits_82(image: FakeImage) -> None:
    image.export(_proc("worker"))
    run = image.run(LAUNCHER)
    assert run.returncode == 82 and run.stderr.count("\n") == 1


def test_missing_platform_api_exits_11(image: FakeImage) -> None:
    image.export(_proc("web", default=True))
    assert image.run(LAUNCHER, env={"CNB_PLATFORM_API": ""}).returncode == 11


def test_exec_env_hides_ineligible_processes(image: FakeImage) -> None:
    image.export(
        _proc("web", "prod", default=True, exec_env=("production",)), _proc("dev", exec_env=("test",))
    )
    assert image.run(LAUNCHER, env={"CNB_PROCESS_TYPE": "dev"}).returncode == 82
    assert image.run(LAUNCHER, env={"CNB_PROCESS_TYPE": "dev", "CNB_EXEC_ENV": "test"}).returncode == 0


# ---- arguments, working dir, exit code (LCH-3, LCH-8) ---------------------------------


def test_user_args_replace_args_from_api_0_9_and_append_below(image: FakeImage) -> None:
    image.export(_proc("new", "default-arg", api="0.10"), _proc("old", "default-arg", api="0.8"))
    assert image.run("/cnb/process/new").shown.args == ["default-arg"]
    assert image.run("/cnb/process/new", "u 1", "$HOME").shown.args == ["u 1", "$HOME"]
    assert image.run("/cnb/process/old", "u 1").shown.args == ["default-arg", "u 1"]


def test_command_words_after_the_first_are_always_passed(image: FakeImage) -> None:
    fixed = Process(
        type="web", command=(SHOW_PATH, "fixed"), args=("dflt",), buildpack_id="b", buildpack_api="0.12"
    )
    image.export(fixed)
    assert image.run("/cnb/process/web", "user").shown.args == ["fixed", "user"]


def test_working_dir_is_the_process_dir_or_the_app_dir(image: FakeImage) -> None:
    image.file("sub/dir/.keep", "")
    image.export(
        _proc("abs", working_dir="/workspace/sub"), _proc("rel", working_dir="sub/dir"), _proc("app")
    )
    assert image.run("/cnb/process/abs").shown.cwd == "/workspace/sub"
    assert image.run("/cnb/process/rel").shown.cwd == "/workspace/sub/dir"
    assert image.run("/cnb/process/app").shown.cwd == "/workspace"


def test_exit_code_is_the_process_own(image: FakeImage) -> None:
    exits = Process(type="web", command=("/bin/sh", "-c", "exit 7"), buildpack_id="b", buildpack_api="0.12")
    image.export(exits)
    assert image.run("/cnb/process/web").returncode == 7
    assert image.run(LAUNCHER, "--", "/bin/sh", "-c", "exit 9").returncode == 9
    assert image.run(LAUNCHER, "exit 5").returncode == 5


def test_missing_executable_is_a_launch_error(image: FakeImage) -> None:
    image.export(Process(type="web", command=("no-such-cmd",), buildpack_id="b", buildpack_api="0.12"))
    run = image.run("/cnb/process/web")
    assert run.returncode == 82 and "no-such-cmd" in run.stderr


# ---- env (LCH-4, LCH-5, BLD-7) --------------------------------------------------------


def test_env_files_apply_over_the_container_env(image: FakeImage) -> None:
    image.layer(
        "acme/app",
        "rt",
        {
            "bin/": "",
            "lib/": "",
            "env/PATH.prepend": "/opt/pre",
            "env/PATH.delim": ":",
            "env/LIST.append": "b",
            "env/KEEP.default": "ignored",
            "env/SETME.default": "defaulted",
            "env/OVR.override": 'it\'s $HOME "x"',
            "env/PLAIN": "plain",
        },
    )
    image.export(_proc("web", default=True))
    env = image.run(LAUNCHER, env={"LIST": "a", "KEEP": "kept", "OVR": "old"}).shown.env
    assert env["PATH"] == "/opt/pre:/layers/acme_app/rt/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["LD_LIBRARY_PATH"] == "/layers/acme_app/rt/lib"
    assert (env["LIST"], env["KEEP"], env["SETME"]) == ("ab", "kept", "defaulted")
    assert (env["OVR"], env["PLAIN"]) == ('it\'s $HOME "x"', "plain")


def test_env_launch_type_dir_applies_only_to_its_type(image: FakeImage) -> None:
    image.layer("acme/app", "rt", {"env.launch/WHO": "any", "env.launch/web/WHO": "web"})
    image.export(_proc("web"), _proc("worker"))
    assert image.run("/cnb/process/web").shown.env["WHO"] == "web"
    assert image.run("/cnb/process/worker").shown.env["WHO"] == "any"


def test_second_buildpack_sees_first_buildpacks_env_in_order(image: FakeImage) -> None:
    image.layer("acme/first", "a", {"bin/": "", "env/ORDER.append": "1", "env/ORDER.delim": ","})
    image.layer("acme/second", "a", {"bin/": "", "env/ORDER.append": "2", "env/ORDER.delim": ","})
    image.export(_proc("web", default=True))
    env = image.run(LAUNCHER).shown.env
    assert env["ORDER"] == "1,2"
    assert env["PATH"].startswith("/layers/acme_second/a/bin:/layers/acme_first/a/bin:/usr/local/bin")


# ---- exec.d (LCH-6) -------------------------------------------------------------------


def test_exec_d_output_on_fd_3_is_exported_in_order(image: FakeImage) -> None:
    image.file("sub/.keep", "")
    image.layer(
        "acme/app",
        "rt",
        {
            "exec.d/1-first": FIRST_EXEC_D,
            "exec.d/2-second": '#!/bin/sh\nprintf \'SEEN = "%s in %s"\\n\' "$FIRST" "$(pwd)" >&3\n',
            "exec.d/web/3-typed": "#!/bin/sh\nprintf \"TYPED = 'web only'\\n\" >&3\n",
        },
    )
    image.export(_proc("web", working_dir="/workspace/sub"), _proc("worker"))
    run = image.run("/cnb/process/web")
    shown = run.shown
    assert run.stdout.startswith("to stdout\n")
    assert (shown.env["FIRST"], shown.env["SEEN"], shown.env["TYPED"]) == (
        "a\tb",
        "a\tb in /workspace",
        "web only",
    )
    assert shown.pid == shown.env["LAUNCHER_PID"]  # exec'd in place: the launcher's pid, no fork
    assert "TYPED" not in image.run("/cnb/process/worker").shown.env


def test_failing_exec_d_stops_the_launch(image: FakeImage) -> None:
    image.layer("acme/app", "rt", {"exec.d/fail": "#!/bin/sh\nexit 3\n"})
    image.export(_proc("web", default=True))
    run = image.run(LAUNCHER)
    assert (run.returncode, run.stdout) == (82, "")
    assert (
        run.stderr == "ERROR: failed to launch: exec.d /layers/acme_app/rt/exec.d/fail exited with status 3\n"
    )


# ---- shell processes and profile.d (LCH-7) ----------------------------------------------


def _profiled_image(image: FakeImage) -> None:
    image.layer(
        "acme/app",
        "rt",
        {
            "profile.d/1.sh": "export FROM_PROFILE='profile d'\nexport STEPS=profile\n",
            "profile.d/web/2.sh": 'export STEPS="$STEPS,web"\n',
        },
    )
    image.file(".profile", 'export STEPS="$STEPS,app"\n')


def test_user_command_runs_through_the_shell_after_profile_d(image: FakeImage) -> None:
    _profiled_image(image)
    image.export(_proc("web"))
    shown = image.run(LAUNCHER, f'{SHOW_PATH} "$FROM_PROFILE" "$0" "$1"', "zero", "one").shown
    assert shown.args == ["profile d", "zero", "one"]
    assert shown.env["STEPS"] == "profile,app"


def test_double_dash_runs_directly_without_profile_d(image: FakeImage) -> None:
    _profiled_image(image)
    image.export(_proc("web"))
    shown = image.run(LAUNCHER, "--", SHOW_PATH, "$HOME", "a b").shown
    assert shown.args == ["$HOME", "a b"]
    assert "FROM_PROFILE" not in shown.env and "STEPS" not in shown.env


def test_direct_processes_never_source_profile_d(image: FakeImage) -> None:
    _profiled_image(image)
    image.export(_proc("web"))
    assert "STEPS" not in image.run("/cnb/process/web").shown.env


def test_legacy_shell_process_script_and_tokens(image: FakeImage) -> None:
    _profiled_image(image)
    script = Process(
        type="web",
        command=(f"{SHOW_PATH} $FROM_PROFILE",),
        direct=False,
        buildpack_id="b",
        buildpack_api="0.8",
    )
    tokens = Process(
        type="tokens",
        command=(SHOW_PATH,),
        args=("$FROM_PROFILE", "a b"),
        direct=False,
        buildpack_id="b",
        buildpack_api="0.8",
    )
    image.export(script, tokens)
    shown = image.run("/cnb/process/web").shown
    assert (shown.args, shown.env["STEPS"]) == (["profile", "d"], "profile,web,app")
    assert image.run("/cnb/process/tokens", "user").shown.args == ["profile d", "a b", "user"]


def test_profile_d_runs_in_bash_where_the_image_has_it(tmp_path: Path) -> None:
    if not _dash_is_sh() or not Path("/usr/bin/bash").exists():
        unavailable("needs dash as /bin/sh and bash beside it: apt-get install dash bash")
    image = FakeImage(tmp_path, _host_root(), bash="/usr/bin/bash")
    image.layer("acme/app", "rt", {"profile.d/bashism.sh": "[[ -n $BASH_VERSION ]] && export BASHISM=yes\n"})
    image.export(_proc("web"))
    assert image.run(LAUNCHER, f"{SHOW_PATH}", bash=True).shown.env.get("BASHISM") == "yes"
    assert "BASHISM" not in image.run(LAUNCHER, f"{SHOW_PATH}").shown.env
