"""The soak tier: opt-in (marker ``soak``), deselected unless ``MCASTKIT_SOAK_S`` says
how many seconds each soak test runs (CI: ``MCASTKIT_SOAK_S=20`` in ``.ci/run``).

Must not: skip (a deselected test is not a skipped one: the plain suite does not pay
for the soak, and CI with the variable set runs it).
"""

from __future__ import annotations

import os

import pytest

SOAK_ENV = "MCASTKIT_SOAK_S"


def soak_seconds() -> float:
    """The duration asked for in ``MCASTKIT_SOAK_S`` (0: soak tests are deselected)."""
    try:
        return max(0.0, float(os.environ.get(SOAK_ENV, "0")))
    except ValueError:
        return 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if soak_seconds() > 0:
        return
    soak = [i for i in items if i.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [i for i in items if not i.get_closest_marker("soak")]
