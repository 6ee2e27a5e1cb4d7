"""Memory safety and edge cases of the compiled accelerator (``mcastkit._speedups``).

Run these under AddressSanitizer with ``scripts/asan-batch`` (they pass either way; the
sanitizer turns a silent corruption into an abort). Tests that need the accelerator skip
without it, or fail when MCASTKIT_REQUIRE_SPEEDUPS=1.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from mcastkit import _batch


@pytest.fixture
def speedups() -> ModuleType:
    """The compiled module, set up by mcastkit._batch."""
    if "c" not in _batch.available_impls():
        if os.environ.get("MCASTKIT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail("mcastkit._speedups is not built (MCASTKIT_REQUIRE_SPEEDUPS=1)")
        pytest.skip("the accelerator is not built")
    from mcastkit import _speedups

    return _speedups


def test_sanitized_build_is_the_one_loaded(speedups: ModuleType) -> None:
    """Under scripts/asan-batch, the instrumented extension is what the tests exercise."""
    expect = os.environ.get("MCASTKIT_SPEEDUPS_EXPECT")
    if expect:
        assert speedups.__file__ == expect


def test_recv_without_init_raises(speedups: ModuleType) -> None:
    """A Ring made by __new__ alone has no buffers: recv refuses (it used to divide by a
    zero recv_size and kill the process with SIGFPE)."""
    ring = speedups.Ring.__new__(speedups.Ring)
    with pytest.raises(RuntimeError, match="__init__"):
        ring.recv(0, 1)
    assert ring.slots == 0
