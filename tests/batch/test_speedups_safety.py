"""Memory safety and edge cases of the compiled accelerator (``mcastkit._speedups``).

Run these under AddressSanitizer with ``scripts/asan-batch`` (they pass either way; the
sanitizer turns a silent corruption into an abort). Tests that need the accelerator skip
without it, or fail when MCASTKIT_REQUIRE_SPEEDUPS=1.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

import mcastkit
from mcastkit import _batch
from tests.batch.helpers import drain
from tests.netns import Netns

G = "239.255.5.21"


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


@pytest.mark.parametrize("bad", [0, -1, (1 << 20) + 1])
def test_ring_rejects_bad_recv_size(speedups: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="recv_size"):
        speedups.Ring(2, bad)


@pytest.mark.kernel
def test_recv_size_above_64k(netns: Netns, impl: str, mcast_port: int) -> None:
    """MulticastSocket accepts recv_size up to 1 MiB; recv_batch must too on every path
    (the compiled ring used to refuse > 65535 with a bare ValueError)."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=100_000)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    with rx, tx:
        big = bytes(range(256)) * 255 + b"end"  # 65283 bytes: near the UDP maximum
        tx.send(big)
        tx.send(b"small")
        got = drain(rx, 2, max_count=8)
        assert [d.data for d in got] == [big, b"small"]
        assert not any(d.truncated for d in got)
        assert rx.stats.bytes == len(big) + 5
        assert rx._batch_rx is not None and rx._batch_rx.impl == impl
