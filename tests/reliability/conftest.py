"""Reliability and security tests: hostile input, fuzzing, sandbox, secrets, faults, concurrency, load.

Loops are sized for CI; ``make soak`` (``PYBUILD_TEST_SOAK=1``) runs the full counts. Figures go to
``bench/results/reliability.json`` when the session ends (see ``figures``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import figures


@pytest.fixture(scope="session", autouse=True)
def _write_figures() -> Iterator[None]:
    yield
    figures.write()
