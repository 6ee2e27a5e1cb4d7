"""Fixtures for relay tests (namespaces come from tests/conftest_lab.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest_lab import ensure_netns

from .topo import Lans, Sites


@pytest.fixture
def lans() -> Iterator[Lans]:
    """LAN A <-> relay namespace <-> LAN B (see tests/relay/topo.py)."""
    ensure_netns()
    t = Lans()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def sites() -> Iterator[Sites]:
    """Two sites joined by a unicast-only router (see tests/relay/topo.py)."""
    ensure_netns()
    t = Sites()
    try:
        yield t
    finally:
        t.close()
