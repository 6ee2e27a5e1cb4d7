"""Fixtures for the batch I/O tests: run each receive/send test on every implementation."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mcastkit import _io


@pytest.fixture(params=["c", "ctypes", "python"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"c"`` (the compiled accelerator), ``"ctypes"`` (recvmmsg/sendmmsg through ctypes)
    or ``"python"`` (the pure-Python fallback, always available and always tested).

    A missing accelerator skips its runs, or fails them when MCASTKIT_REQUIRE_SPEEDUPS=1.
    """
    name = str(request.param)
    if name not in _io.available_impls():
        if name == "c" and os.environ.get("MCASTKIT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail("mcastkit._speedups is not built (MCASTKIT_REQUIRE_SPEEDUPS=1)")
        pytest.skip(f"batch implementation {name!r} not available here")
    _io.force_impl(name)
    try:
        yield name
    finally:
        _io.force_impl(None)
