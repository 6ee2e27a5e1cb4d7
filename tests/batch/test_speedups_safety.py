"""Memory safety and edge cases of the compiled accelerator (``mcastkit._speedups``).

Run these under AddressSanitizer with ``scripts/asan-batch`` (they pass either way; the
sanitizer turns a silent corruption into an abort). Tests that need the accelerator skip
without it, or fail when MCASTKIT_REQUIRE_SPEEDUPS=1.
"""

from __future__ import annotations

import os
import threading
import time
from types import ModuleType

import pytest

import mcastkit
from mcastkit import _batch
from tests.batch.helpers import WAIT, drain
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


def _payload(i: int) -> bytes:
    """Self-checking payload: a torn or stale buffer cannot pass :func:`_intact`."""
    head = b"%08d" % i
    return head * 8


def _intact(data: bytes) -> bool:
    return len(data) == 64 and data == data[:8] * 8 and data[:8].isdigit()


@pytest.mark.kernel
def test_ring_shared_by_threads(netns: Netns, speedups: ModuleType, mcast_port: int) -> None:
    """Two threads use one Ring while a third re-initialises and grows it. The buffers
    the kernel writes into while the GIL is released must never be freed or shared under
    it (they were: __init__ and growth freed them mid-recvmmsg, a use-after-free that
    scripts/asan-batch reports). Every datagram read is intact and read once."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", rcvbuf_bytes=1 << 21)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    ring = speedups.Ring(2, 64, 1)
    total = 3000
    seen: list[bytes] = []
    bad: list[object] = []
    stop = threading.Event()

    def reader(step: int) -> None:
        n = 1
        while not stop.is_set():
            try:
                got = ring.recv(rx.fileno(), n)
            except BlockingIOError:
                continue
            except Exception as exc:  # anything else is a failure of the test
                bad.append(exc)
                return
            seen.extend(d.data for d in got)
            n = n % 1024 + step

    def churn() -> None:
        size = 64
        while not stop.is_set():
            try:
                ring.__init__(2, size, 1)  # frees and reallocates the buffers
            except Exception as exc:
                bad.append(exc)
                return
            size = 64 if size > 4096 else size * 2

    with rx, tx:
        threads = [threading.Thread(target=reader, args=(s,)) for s in (7, 13)]
        threads.append(threading.Thread(target=churn))
        for t in threads:
            t.start()
        try:
            for i in range(total):
                tx.send(_payload(i))
            deadline = time.monotonic() + WAIT
            while (len(seen) + max(0, rx.kernel_drops()) < total
                   and time.monotonic() < deadline and not bad):
                time.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                t.join(WAIT)
        assert not bad
        assert all(_intact(d) for d in seen), [d for d in seen if not _intact(d)][:3]
        assert len(seen) == len(set(seen)), "a datagram was returned twice"
        assert len(seen) + max(0, rx.kernel_drops()) == total
