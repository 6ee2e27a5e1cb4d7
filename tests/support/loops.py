"""Fixtures for the asyncio tests: run a coroutine on the stock loop or on uvloop.

No pytest-asyncio: each test calls ``run(coro)`` itself, inside whatever namespace the
test's thread is in (the loop runs in the test's thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]


def run_on(kind: str, coro: Coroutine[Any, Any, T]) -> T:
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:  # optional extra: say so, do not pass silently
            coro.close()
            pytest.skip("NOT TESTED: uvloop is not installed (pip install mcastkit[uvloop])")
        return uvloop.run(coro)
    return asyncio.run(coro)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner[Any]:
    """``run(coro)`` on the stock asyncio loop and, as a second case, on uvloop."""
    kind: str = request.param
    return lambda coro: run_on(kind, coro)


@pytest.fixture
def run_stock() -> Runner[Any]:
    """``run(coro)`` on the stock asyncio loop only."""
    return lambda coro: run_on("asyncio", coro)
