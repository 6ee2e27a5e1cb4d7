"""The one receive path: one deadline per call (issue 14.3), typed errors for a receive
that must not wait and for bad timeouts (issue 9 item 7), and a drop counter that only
moves forward (issue 14.6), on every receive call and backend.

Must not: assert on speed (the elapsed-time bounds below are generous correctness
bounds: the faults they catch took as long as the sender kept sending).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import mcastkit
from mcastkit import (
    Datagram,
    McastValueError,
    MulticastSocket,
    ReceiveTimeoutError,
    _io,
)
from tests.support.addrs import SRC4, fresh_group4
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

Call = Callable[[MulticastSocket, float], object]
CALLS: dict[str, Call] = {
    "recv": lambda s, t: s.recv(timeout_s=t),
    "recv_many": lambda s, t: s.recv_many(8, timeout_s=t),
    "recv_batch": lambda s, t: s.recv_batch(8, timeout_s=t),
}


@pytest.fixture(params=_io.available_impls())
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    _io.force_impl(str(request.param))
    try:
        yield str(request.param)
    finally:
        _io.force_impl(None)


@pytest.mark.parametrize("call", CALLS)
def test_filtered_datagrams_do_not_restart_the_timeout(
        netns: Netns, backend: str, mcast_port: int, call: str) -> None:
    """14.3: with ``min_ttl=255`` every datagram from a TTL-1 sender is filtered; one
    arriving every 0.1 s used to restart the 1 s timeout for as long as it kept coming."""
    group = fresh_group4(41)
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo", min_ttl=255)
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo", ttl=1)
    stop = threading.Event()

    def keep_sending() -> None:  # for at most 6 s: the old fault waited until it stopped
        end = time.monotonic() + 6.0
        while not stop.wait(0.1) and time.monotonic() < end:
            tx.send(b"filtered")

    sender = threading.Thread(target=keep_sending)
    with rx, tx:
        sender.start()
        try:
            t0 = time.monotonic()
            with pytest.raises(ReceiveTimeoutError):
                CALLS[call](rx, 1.0)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            sender.join()
        assert elapsed < 3.0, f"{call} waited {elapsed:.1f} s for a 1 s timeout"
        assert rx.stats.ttl_filtered >= 1 and rx.stats.datagrams == 0


@pytest.mark.parametrize("call", CALLS)
def test_timeout_zero_raises_receive_timeout(netns: Netns, backend: str, mcast_port: int,
                                             call: str) -> None:
    """9.7: ``timeout_s=0`` with nothing queued raises ReceiveTimeoutError, as documented
    (it used to be a raw BlockingIOError); it is also a BlockingIOError for event loops."""
    with mcastkit.open_receiver(f"{fresh_group4(42)}:{mcast_port}", interface="lo") as rx:
        with pytest.raises(ReceiveTimeoutError) as info:
            CALLS[call](rx, 0)
        assert isinstance(info.value, BlockingIOError)
        assert info.value.code is mcastkit.ErrorCode.TIMEOUT


@pytest.mark.parametrize("bad", [math.nan, -1.0, math.inf, "1", True])
@pytest.mark.parametrize("call", CALLS)
def test_bad_timeout_is_a_value_error_naming_it_and_loses_nothing(
        netns: Netns, mcast_port: int, call: str, bad: object) -> None:
    """9.7: ``timeout_s=nan`` (or negative, infinite, not a number) is a McastValueError
    naming ``timeout_s`` (was a raw ValueError), raised before reading: the queued
    datagram is still there for the next call."""
    group = fresh_group4(43)
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo")
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo")
    with rx, tx:
        tx.send(b"kept")
        with pytest.raises(McastValueError, match="timeout_s"):
            CALLS[call](rx, bad)  # type: ignore[arg-type]
        assert rx.recv(timeout_s=5).data == b"kept"
    with pytest.raises(McastValueError, match="timeout_s"):
        MulticastSocket(4).settimeout(math.nan)


def test_drop_counter_only_moves_forward(netns: Netns, mcast_port: int) -> None:
    """14.6: totals seen out of order (a thread that read earlier finishing later) never
    move the counter back, so the same drops are not counted twice."""
    with MulticastSocket(4, metadata=True) as s:
        admit = s._rx._admit  # the one accounting step every receive call runs

        def seen(drops: int) -> None:
            admit([Datagram(b"x", SRC4, 9, drops=drops)], None)
            admit([Datagram(b"y", SRC4, 9, drops=drops)] * 2,
                  (None, None, drops, 2, 0))

        for total in (20, 10, 20, 25, 5, 25):
            seen(total)
        assert s.stats.kernel_drops == 25
        assert s.stats.datagrams == 18


def test_a_subclass_override_of_a_hot_call_is_honoured(netns: Netns) -> None:
    """The façade binds recv/sendto/... straight to its parts for speed, but never over a
    subclass's own method."""

    class Counting(MulticastSocket):
        calls = 0

        def recv(self, timeout_s: float | None = None) -> Datagram:
            Counting.calls += 1
            return super().recv(timeout_s)

    with Counting(4, interface="lo") as s:
        with pytest.raises(ReceiveTimeoutError):
            s.recv(0)
        assert Counting.calls == 1
        assert s.recv_batch.__func__ is type(s._rx).recv_batch  # type: ignore[attr-defined]


@pytest.mark.parametrize("call", CALLS)
def test_shut_down_elsewhere_is_a_typed_error_not_a_spin(
        netns: Netns, backend: str, mcast_port: int, call: str) -> None:
    """Another holder of the same socket (a dup, a forked child's close()) shuts it down:
    it is "readable" forever with nothing to read. The receive says so at once with a
    typed error instead of spinning until its deadline (part of issue 14.2)."""
    import errno
    import os
    import socket

    with mcastkit.open_receiver(f"{fresh_group4(44)}:{mcast_port}", interface="lo") as rx:
        other = socket.socket(fileno=os.dup(rx.fileno()))
        with contextlib.suppress(OSError):  # ENOTCONN for UDP, after shutting it down
            other.shutdown(socket.SHUT_RDWR)
        other.close()
        t0 = time.process_time()
        with pytest.raises(mcastkit.McastOSError) as info:
            CALLS[call](rx, 5.0)
        assert info.value.errno == errno.ESHUTDOWN and "forked" in str(info.value)
        assert not isinstance(info.value, ReceiveTimeoutError)
        assert time.process_time() - t0 < 1.0  # it did not spin for 5 s
