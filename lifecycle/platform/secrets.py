"""``pybuild build --secret``: build secrets named by the operator, read into memory.

Spelled as BuildKit spells it, ``id=ID,env=NAME`` (the value of pybuild's environment
variable NAME) or ``id=ID,src=FILE`` (a file's bytes; ``source=`` is the same key). Buildpacks
read the value at ``<platform>/secrets/ID`` during detect and build only (``/platform/secrets/ID``
in the sandbox; ``lifecycle.execution.secret_mounts``); it is never an environment variable and
is never written to disk by pybuild.

Secrets are operator input only: ``project.toml`` travels with the source, so it cannot name
one (a project could otherwise ask for any file or variable of the machine that builds it).

Refused, each with one line naming the flag and the fix: an id that is not a file name
(``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 128 characters), an id given twice, an unset variable,
an unreadable or larger than 512 KiB file, and a value of fewer than 8 bytes (surrounding
whitespace aside).
Why refuse short values rather than warn: they are what the layer scanner and the log mask
search for, and a 3-byte value would match by chance in any layer, failing builds for nothing,
while not searching for it would leave the value unguarded. The docker executor mounts no
secrets, so ``--secret`` is refused with it rather than silently ignored; so is an ``--env``
value holding a secret, since ``--env`` values are written to ``/platform/env`` on disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from lifecycle.errors import ConfigError
from lifecycle.execution.secrets import MIN_SECRET_BYTES, Secret, Secrets

__all__ = ["MAX_SECRET_BYTES", "check_secrets", "parse_secret", "parse_secrets"]

MAX_SECRET_BYTES = 512 * 1024
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_KEYS = {"id": "id", "env": "env", "src": "src", "source": "src"}
_USAGE = "use --secret id=ID,env=NAME or --secret id=ID,src=FILE"


def _error(cause: str) -> ConfigError:
    return ConfigError("read --secret", cause)


def parse_secrets(specs: Iterable[str], environ: Mapping[str, str]) -> Secrets:
    """Every ``--secret`` value, in order; an id may be given once."""
    found: list[Secret] = []
    for spec in specs:
        secret = parse_secret(spec, environ)
        if secret.id in (s.id for s in found):
            raise _error(f"id={secret.id} is given twice (give each secret a different id)")
        found.append(secret)
    return Secrets(tuple(found))


def parse_secret(spec: str, environ: Mapping[str, str]) -> Secret:
    """One ``id=ID,env=NAME`` or ``id=ID,src=FILE``; the value is read here."""
    fields = _fields(spec)
    secret_id = fields.get("id", "")
    if not _ID.fullmatch(secret_id):
        shown = f"id={secret_id!r}" if secret_id else "no id"
        raise _error(
            f"{shown}: an id is a file name of letters, digits, '.', '_' and '-', not starting "
            f"with '.', '_' or '-' (e.g. id=pip-token; {_USAGE})"
        )
    if ("env" in fields) == ("src" in fields):
        raise _error(f"id={secret_id}: give exactly one of env=NAME and src=FILE ({_USAGE})")
    value = (
        _from_env(secret_id, fields["env"], environ)
        if "env" in fields
        else _from_file(secret_id, fields["src"])
    )
    secret = Secret(secret_id, value)
    if not secret.needles:
        raise _error(
            f"id={secret_id}: the value has fewer than {MIN_SECRET_BYTES} bytes besides surrounding "
            "whitespace, too short to be told apart in layers and logs (use a longer secret)"
        )
    return secret


def _fields(spec: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:  # not echoed: a bare word may be the secret itself, given by mistake
            raise _error(f"a --secret value is KEY=VALUE pairs joined by ',' ({_USAGE})")
        if key not in _KEYS:
            raise _error(f"unknown key {key!r} in a --secret value (keys are id, env and src; {_USAGE})")
        if _KEYS[key] in fields:
            raise _error(f"{key}= is given twice in one --secret value ({_USAGE})")
        fields[_KEYS[key]] = value
    return fields


def _from_env(secret_id: str, name: str, environ: Mapping[str, str]) -> bytes:
    if not name:
        raise _error(f"id={secret_id}: env= names no variable ({_USAGE})")
    if name not in environ:
        raise _error(f"id={secret_id}: environment variable {name} is not set (export it, or use src=FILE)")
    return os.fsencode(environ[name])


def _from_file(secret_id: str, path: str) -> bytes:
    if not path:
        raise _error(f"id={secret_id}: src= names no file ({_USAGE})")
    try:
        with open(path, "rb") as file:
            value = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise _error(
            f"id={secret_id}: cannot read {path}: {exc.strerror} (give a file pybuild can read)"
        ) from None
    if len(value) > MAX_SECRET_BYTES:
        raise _error(
            f"id={secret_id}: {path} is larger than {MAX_SECRET_BYTES // 1024} KiB (give a smaller file)"
        )
    return value


def check_secrets(secrets: Secrets, *, executor: str, env: Mapping[str, str]) -> None:
    """Refuse what would leave a secret unmounted or on disk (see the module doc)."""
    if not secrets:
        return
    if executor == "docker":
        raise ConfigError(
            "read --secret",
            "--executor docker mounts no secrets (use --executor bwrap or host with --secret)",
        )
    for name, value in env.items():
        if secrets.mask(value) != value:
            raise ConfigError(
                "read --env",
                f"{name} holds the value of a --secret, and --env values are written to disk "
                f"(drop --env {name}: buildpacks read the secret at /platform/secrets/ID)",
            )
