"""One fixture, every ImageStore backend: the contract suite runs once per backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.backends.base import BlobStats, ImageStore
from lifecycle.backends.layout import Layout
from lifecycle.backends.memory import MemoryStore
from lifecycle.backends.store import LocalStore


@dataclass(frozen=True)
class Backend:
    """A store under test, the stats it counts layer reads in, and how to open it again."""

    name: str
    store: ImageStore
    stats: BlobStats
    reopen: Callable[[], ImageStore]


def _memory(tmp_path: Path) -> Backend:
    store = MemoryStore()
    return Backend("memory", store, store.stats, lambda: store)


def _layout(tmp_path: Path) -> Backend:
    store = Layout(tmp_path / "layout", create=True)
    return Backend("layout", store, store.stats, lambda: Layout(tmp_path / "layout"))


def _local(tmp_path: Path) -> Backend:
    store = LocalStore()  # under $PYBUILD_HOME, which the autouse fixture points into tmp
    return Backend("local", store, store.stats, LocalStore)


@pytest.fixture(params=[_memory, _layout, _local], ids=["memory", "layout", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    make: Callable[[Path], Backend] = request.param
    return make(tmp_path)
