"""Fixtures for relay tests (namespaces come from tests/support/fixtures.py): one per
topology of tests/support/relay_topo.py, each torn down after its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fixtures import ensure_netns
from tests.support.relay_topo import Bridged, Lans, Parallel, Sites, _Topo


def _topology(kind: type[_Topo]) -> Iterator[_Topo]:
    ensure_netns()
    t = kind()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def lans() -> Iterator[_Topo]:
    """LAN A <-> relay namespace <-> LAN B."""
    yield from _topology(Lans)


@pytest.fixture
def sites() -> Iterator[_Topo]:
    """Two sites joined by a unicast-only router."""
    yield from _topology(Sites)


@pytest.fixture
def parallel() -> Iterator[_Topo]:
    """Two LANs (bridges) joined by two relays."""
    yield from _topology(Parallel)


@pytest.fixture
def bridged() -> Iterator[_Topo]:
    """One LAN and a relay with both interfaces on it."""
    yield from _topology(Bridged)
