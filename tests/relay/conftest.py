"""Relay tests: one fixture per topology, from tests/support/relay_fixtures.py."""

from __future__ import annotations

from tests.support.relay_fixtures import bridged, lans, parallel, sites

__all__ = ["bridged", "lans", "parallel", "sites"]
