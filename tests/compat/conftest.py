"""MCast tests: the ``make`` factory (an MCast pinned to an interface), from
tests/support/compat.py."""

from __future__ import annotations

from tests.support.compat import make

__all__ = ["make"]
