"""asyncio tests: ``run`` (stock loop and uvloop) and ``run_stock`` from tests/support/loops.py."""

from __future__ import annotations

from tests.support.loops import run, run_stock

__all__ = ["run", "run_stock"]
