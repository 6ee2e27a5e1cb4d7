"""Socket-core tests: the ``impl`` fixture runs a receive/send test on every I/O backend."""

from __future__ import annotations

from tests.support.backends import impl

__all__ = ["impl"]
