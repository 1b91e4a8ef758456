"""The embedded defaults: stacks and builders made on first use from this checkout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lifecycle.backends.store import LocalStore
from lifecycle.errors import ConfigError
from lifecycle.platform.builders import (
    DEFAULT_BUILDER,
    builder_dir,
    create_builder,
    load_builder,
    source_root,
)

__all__ = ["KNOWN_BUILDERS", "ensure_builder", "ensure_default_builder"]

# builder name -> (stack dir, builder.toml), both under the source root
KNOWN_BUILDERS = {
    DEFAULT_BUILDER: ("stacks/bookworm", "builders/bookworm.toml"),
    "pybuild/builder:tiny": ("stacks/tiny", "builders/tiny.toml"),
}


def ensure_builder(name: str, store: LocalStore, info: Callable[[str], None]) -> None:
    """Create a known builder (and its stack images) unless it exists and is current.

    A known builder made from other buildpacks or another builder.toml than this pybuild's
    (an upgrade, or a changed checkout) is made again, so builds never use stale buildpacks.
    """
    try:
        builder = load_builder(name, store.home)
    except ConfigError:
        if name not in KNOWN_BUILDERS:
            raise
        reason = "first use"
    else:
        if name not in KNOWN_BUILDERS or builder.image is not None:
            return
        if _current(name, builder_dir(name, store.home)):
            return
        reason = "its buildpacks or builder.toml changed"
    from lifecycle.platform.stacks import RichStackProgress, build_stack

    stack_dir, config = KNOWN_BUILDERS[name]
    info(f"Creating builder {name} ({reason})")
    build_stack(source_root() / stack_dir, store, progress=RichStackProgress())
    create_builder(name, source_root() / config, store.home, info=info)


def ensure_default_builder(store: LocalStore, info: Callable[[str], None]) -> None:
    ensure_builder(DEFAULT_BUILDER, store, info)


def _current(name: str, builder_dir: Path) -> bool:
    """Made from pybuild's own builder.toml as it is now, or from the user's own (theirs)."""
    from lifecycle.platform.builder_source import Source, recorded

    config = source_root() / KNOWN_BUILDERS[name][1]
    if not config.is_file():
        return True  # nothing to compare with: keep what there is
    made_from = recorded(builder_dir)
    if made_from is not None and made_from.config != str(config.resolve()):
        return True
    return made_from == Source.of(config)
