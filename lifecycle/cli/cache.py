"""``pybuild cache ls|rm|prune``: the build caches on this machine (RES-6).

Caches live under ``$PYBUILD_HOME/cache/build``, one per app name (the image name without
its tag) or ``--cache NAME``. ``rm`` takes cache names or image names (``myapp:v1``).
"""

from __future__ import annotations

import json
import re
import time

import click

from lifecycle.cli.output import Logger

__all__ = ["cache"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{int(seconds // span)}{unit} ago"
    return "just now"


def _duration(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if match is None:
        raise click.BadParameter("use a number and a unit: 90m, 12h, 30d, 2w", param_hint="--older-than")
    return int(match[1]) * _UNITS[match[2]]


@click.group()
def cache() -> None:
    """List, remove and prune build caches."""


@cache.command(name="ls")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def cache_ls(log: Logger, output: str) -> None:
    """List the build caches: layers, size and when each was last used."""
    from lifecycle.backends.store import pybuild_home
    from lifecycle.platform.cache_dir import caches_root, list_caches

    infos = [c.info() for c in list_caches(caches_root(pybuild_home()))]
    if output == "json":
        rows = [
            {"name": i.name, "path": str(i.path), "layers": i.layers, "size": i.size, "lastUsed": i.last_used}
            for i in infos
        ]
        log.result(json.dumps(rows, indent=2))
        return
    now = time.time()
    log.result(f"{'NAME':40} {'LAYERS':>6} {'SIZE':>10}  LAST USED")
    for i in infos:
        log.result(f"{i.name:40} {i.layers:>6} {_size(i.size):>10}  {_age(now - i.last_used)}")


@cache.command(name="rm")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every build cache.")
@click.pass_obj
def cache_rm(log: Logger, names: tuple[str, ...], everything: bool) -> None:
    """Remove the caches NAMES (cache or image names: myapp, myapp:v1)."""
    from lifecycle.backends.store import pybuild_home
    from lifecycle.errors import ConfigError
    from lifecycle.platform.cache_dir import cache_name_for, caches_root, list_caches

    caches = {c.cache_name: c for c in list_caches(caches_root(pybuild_home()))}
    if everything == bool(names):
        raise ConfigError("remove cache", "name the caches to remove, or give --all")
    chosen = list(caches) if everything else []
    for name in names:
        found = name if name in caches else cache_name_for(name)
        if found not in caches:
            raise ConfigError("remove cache", f"there is no cache {name!r} (see pybuild cache ls)")
        chosen.append(found)
    for name in dict.fromkeys(chosen):
        caches[name].remove()
        log.info(f"Removed cache {name}")


@cache.command(name="prune")
@click.option("--older-than", help="Also remove caches not used for this long: 90m, 12h, 30d, 2w.")
@click.pass_obj
def cache_prune(log: Logger, older_than: str | None) -> None:
    """Free space: files no cache refers to, blob index entries with no blob, old caches."""
    from lifecycle.backends.store import pybuild_home
    from lifecycle.platform.cache import prune_caches

    report = prune_caches(pybuild_home(), _duration(older_than) if older_than else None, time.time())
    for name in report.removed:
        log.info(f"Removed cache {name}")
    log.result(f"Freed {_size(report.freed)}; dropped {report.index_entries} blob index entries")
