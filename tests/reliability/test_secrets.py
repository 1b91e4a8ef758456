"""Registry credentials never land in an image layer, label, cache, report or log.

Two registries with basic auth: A's password is in ``$DOCKER_CONFIG/config.json``, B's in
``CNB_REGISTRY_AUTH``. A verbose build publishes the app to A with its cache image in B, then a
rebase writes a report, inspect and pull read it back. Afterwards every file under
``$PYBUILD_HOME``, both registries' storage and logs, the report and every output are searched
for either password (plain or as a Basic header). ``--env`` values are not secret in pybuild (a
buildpack may print or keep them): only that pybuild itself keeps none is checked.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from support.cli import ROOT, TINY_BUILDER, pybuild
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
