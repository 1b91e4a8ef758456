"""Registry credentials never land in an image layer, label, cache, report or log.

Two registries with basic auth: A's password is in ``$DOCKER_CONFIG/config.json``, B's in
``CNB_REGISTRY_AUTH``. A verbose build publishes the app to A with its cache image in B, then a
rebase writes a report, inspect and pull read it back. Afterwards every file under
``$PYBUILD_HOME``, both registries' storage and logs, the report and every output are searched
for either password (plain or as a Basic header). ``--env`` values are not secret in pybuild (a
buildpack may print or keep them): only that pybuild itself keeps none is checked.

Build secrets (``--secret``, by env and by file): a buildpack (``buildpacks/secret-user``) reads
them at ``/platform/secrets/<id>`` in detect and build and prints them; the log shows ``***``, and
no file of ``$PYBUILD_HOME`` (store, cache, blobs) nor any output holds a value. A buildpack that
copies a secret into a launch layer, a cache-only layer or the app fails the build with exit 62
naming the layer, and the previous image keeps its tag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, last_line, pybuild
from support.registry import Registry, RegistryFactory

from .figures import record
from .outputs import leaks

pytestmark = pytest.mark.integration


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def registries(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    return registry_factory(auth=True), registry_factory(auth=True)


def _needles(*registries: Registry, extra: tuple[str, ...] = ()) -> dict[str, bytes]:
    found = {}
    for number, registry in enumerate(registries):
        assert registry.credentials is not None
        creds = registry.credentials
        found[f"registry {number} password"] = creds.password.encode()
        found[f"registry {number} Basic header"] = _basic(creds.username, creds.password).encode()
    for value in extra:
        found[f"--env value {value}"] = value.encode()
    return found


def test_credentials_and_env_values_never_reach_images_caches_reports_or_logs(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registries: tuple[Registry, Registry]
) -> None:
    a, b = registries
    assert a.credentials is not None and b.credentials is not None
    docker = tmp_path / "docker-config"
    docker.mkdir()
    auths = {a.host: {"auth": _basic(a.credentials.username, a.credentials.password)}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.setenv(
        "CNB_REGISTRY_AUTH",
        json.dumps({b.host: "Basic " + _basic(b.credentials.username, b.credentials.password)}),
    )
    env_value = "envvalue-" + tmp_path.name
    app = tmp_path / "app"
    shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    report = tmp_path / "report.toml"
    ref, cache = f"{a.host}/secrets/app:1", f"{b.host}/secrets/cache:app"
    build = [
        "-v",
        "build",
        ref,
        "--path",
        str(app),
        "--builder",
        TINY_BUILDER,
        "--publish",
        "--cache-image",
        cache,
    ]
    outputs = [
        pybuild(*build, "--env", f"BUILD_SETTING={env_value}"),
        pybuild(*build),
        pybuild(
            "-v", "rebase", ref, "--publish", "--run-image", "pybuild/run:tiny-2", "--report", str(report)
        ),
        pybuild("-v", "inspect", f"docker://{ref}", "-o", "json"),
        pybuild("-v", "pull", ref, "pulled:1"),
    ]
    texts = [text for proc in outputs for text in (proc.stdout, proc.stderr)]
    roots = [home, report, a.log_path.parent, b.log_path.parent]
    files = [r for r in roots if r.is_file()]
    found = leaks(_needles(a, b, extra=(env_value,)), [r for r in roots if r.is_dir()], texts)
    found += [f"in {f}" for f in files if any(n in f.read_bytes() for n in _needles(a, b).values())]
    record("secrets", "outputs_searched", len(texts) + sum(1 for r in roots for _ in r.rglob("*")))
    assert not [f for f in found if "htpasswd" not in f], found


def test_a_refused_login_names_the_registry_not_the_password(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registries: tuple[Registry, Registry]
) -> None:
    a, _ = registries
    wrong = "wrong-password-" + tmp_path.name
    monkeypatch.setenv("CNB_REGISTRY_AUTH", json.dumps({a.host: "Basic " + _basic("someone", wrong)}))
    proc = pybuild("-v", "pull", f"{a.host}/secrets/app:1", "x:1", check=False)
    assert proc.returncode != 0
    assert "ERROR: failed to" in proc.stderr and a.host in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not leaks(
        {"password": wrong.encode(), "header": _basic("someone", wrong).encode()},
        [home],
        [proc.stdout, proc.stderr],
    )


SECRET_USER = Path(__file__).parent / "buildpacks" / "secret-user"


class BuildSecrets:
    """A token in pybuild's env (``pip-token``) and a PEM-like key in a file (``index-key``)."""

    def __init__(self, tmp_path: Path) -> None:
        self.token = "piptoken-" + secrets.token_hex(12)
        self.key_body = "indexkey-" + secrets.token_hex(16)
        self.key_file = tmp_path / "index-key.pem"
        self.key_file.write_text(f"-----BEGIN TEST KEY-----\n{self.key_body}\n-----END TEST KEY-----\n")
        self.key_file.chmod(0o600)

    @property
    def needles(self) -> dict[str, bytes]:
        return {"pip-token value": self.token.encode(), "index-key value": self.key_body.encode()}

    def build(self, home: Path, app: Path, name: str, executor: str) -> subprocess.CompletedProcess[str]:
        return pybuild(
            "-v",
            "build",
            name,
            "--path",
            str(app),
            "--builder",
            TINY_BUILDER,
            "--buildpack",
            str(SECRET_USER),
            "--executor",
            executor,
            "--secret",
            "id=pip-token,env=PIP_TOKEN",
            "--secret",
            f"id=index-key,src={self.key_file}",
            check=False,
            env={"PIP_TOKEN": self.token},
        )


def _app(tmp_path: Path, mode: str) -> Path:
    app = tmp_path / "secret-app"
    if not app.exists():
        shutil.copytree(ROOT / "samples" / "procfile-shell", app)
    (app / "secret-mode").write_text(mode)
    return app


def _shm_entries() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("pybuild-secrets-")}


@pytest.mark.parametrize("executor", ["bwrap", "host"])
def test_build_secrets_reach_buildpacks_read_only_and_no_image_cache_or_log(
    home: Path, tmp_path: Path, executor: str
) -> None:
    given = BuildSecrets(tmp_path)
    shm_before = _shm_entries()
    proc = given.build(home, _app(tmp_path, "use"), "secretapp", executor)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "detect read pip-token: ***" in out
    assert "build read pip-token: ***" in out
    key_hash = hashlib.sha256(given.key_file.read_bytes()).hexdigest()
    assert f"secret pip-token mode 400 sha256 {hashlib.sha256(given.token.encode()).hexdigest()}" in out
    assert f"secret index-key mode 400 sha256 {key_hash}" in out
    assert "in env" not in out  # never an environment variable, also not on the host
    if executor == "bwrap":
        assert "writable" not in out
    assert _shm_entries() == shm_before  # the host runner's memory files are gone
    outputs = [proc, pybuild("-v", "inspect", "secretapp", "-o", "json")]
    texts = [text for p in outputs for text in (p.stdout, p.stderr)]
    found = leaks(given.needles, [home], texts)
    record("secrets", "outputs_searched", len(texts) + sum(1 for _ in home.rglob("*")))
    assert not found, found


@pytest.mark.parametrize(
    ("mode", "layer"),
    [
        ("copy-launch", "test/secret-user:leaky"),
        ("copy-cache", "test/secret-user:stash"),
        ("copy-app", "app:0"),
    ],
)
def test_a_secret_copied_into_a_layer_fails_the_export_and_keeps_the_previous_image(
    home: Path, tmp_path: Path, mode: str, layer: str
) -> None:
    given = BuildSecrets(tmp_path)
    first = given.build(home, _app(tmp_path, "use"), "leakapp", "bwrap")
    assert first.returncode == 0, first.stdout + first.stderr
    digest = last_line(first)
    proc = given.build(home, _app(tmp_path, mode), "leakapp", "bwrap")
    assert proc.returncode == 62, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    expected = (
        rf"ERROR: failed to export layer '{re.escape(layer)}': it holds the value of secret '[a-z-]+' .*"
    )
    assert re.fullmatch(expected, error), error
    inspect = json.loads(pybuild("inspect", "leakapp", "-o", "json").stdout)
    assert digest in json.dumps(inspect)
    texts = [proc.stdout, proc.stderr, first.stdout, first.stderr]
    assert not leaks(given.needles, [home], texts)
