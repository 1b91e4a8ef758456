"""The embedded defaults: stacks and builders made on first use from this checkout."""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.backends.store import LocalStore
from lifecycle.errors import ConfigError
from lifecycle.platform.builders import DEFAULT_BUILDER, create_builder, load_builder, source_root

__all__ = ["KNOWN_BUILDERS", "ensure_builder", "ensure_default_builder"]

# builder name -> (stack dir, builder.toml), both under the source root
KNOWN_BUILDERS = {
    DEFAULT_BUILDER: ("stacks/bookworm", "builders/bookworm.toml"),
    "pybuild/builder:tiny": ("stacks/tiny", "builders/tiny.toml"),
}


def ensure_builder(name: str, store: LocalStore, info: Callable[[str], None]) -> None:
    """Create a known builder (and its stack images) unless it exists."""
    try:
        load_builder(name, store.home)
        return
    except ConfigError:
        if name not in KNOWN_BUILDERS:
            raise
    from lifecycle.platform.stacks import RichStackProgress, build_stack

    stack_dir, config = KNOWN_BUILDERS[name]
    info(f"Creating builder {name} (first use)")
    build_stack(source_root() / stack_dir, store, progress=RichStackProgress())
    create_builder(name, source_root() / config, store.home, info=info)


def ensure_default_builder(store: LocalStore, info: Callable[[str], None]) -> None:
    ensure_builder(DEFAULT_BUILDER, store, info)
