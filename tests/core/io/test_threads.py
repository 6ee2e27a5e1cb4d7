"""Threads sharing one socket, with real sockets in a namespace (issue 14.1 and 14.6).

Must not: sleep to prove that something did not happen, or assert on speed.
"""

from __future__ import annotations

import contextlib
import struct
import sys
import threading
import time
import zlib

import pytest

import mcastkit
from mcastkit import Datagram, MulticastSocket
from tests.support.addrs import fresh_group4
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

_HDR = struct.Struct("!HII")  # thread, sequence number, crc32 of the padding


def _payload(thread: int, seq: int) -> bytes:
    pad = bytes((thread * 31 + seq + i) & 0xFF for i in range(20 + (seq * 7 + thread) % 180))
    return _HDR.pack(thread, seq, zlib.crc32(pad)) + pad


def _check(data: bytes) -> tuple[int, int] | None:
    """(thread, seq) of an intact payload, None for a corrupted one."""
    if len(data) < _HDR.size:
        return None
    thread, seq, crc = _HDR.unpack_from(data)
    ok = zlib.crc32(data[_HDR.size:]) == crc and data == _payload(thread, seq)
    return (thread, seq) if ok else None


def _collect(rx: MulticastSocket, want: int, out: list[Datagram], stop: threading.Event
             ) -> None:
    while len(out) < want and not stop.is_set():
        try:
            out.extend(rx.recv_batch(256, timeout_s=0.5))
        except mcastkit.ReceiveTimeoutError:
            continue


def test_threaded_send_batch_sends_each_payload_once_and_intact(
        netns: Netns, impl: str, mcast_port: int) -> None:
    """14.1: several threads calling ``send_batch(method="mmsg")`` on one socket: every
    payload arrives intact and once, and the counts add up (what was received plus what
    the kernel dropped is what the return values claim). The ctypes path used to reuse
    its iovec/buffer arrays without a lock while ctypes released the GIL."""
    group = fresh_group4(31)
    threads, rounds, per = 6, 25, 40
    total = threads * rounds * per
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=8 << 20)
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo")
    got: list[Datagram] = []
    stop = threading.Event()
    reader = threading.Thread(target=_collect, args=(rx, total, got, stop))
    returns: list[int] = []
    errors: list[BaseException] = []

    def send(t: int) -> None:
        try:
            for r in range(rounds):
                batch = [_payload(t, r * per + i) for i in range(per)]
                returns.append(tx.send_batch(batch, group, mcast_port, method="mmsg"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with rx, tx:
        reader.start()
        senders = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
        for s in senders:
            s.start()
        for s in senders:
            s.join()
        reader.join(timeout=10)
        stop.set()
        reader.join()
        drops = rx.kernel_drops()
    assert not errors
    assert sum(returns) == total
    seen = [_check(d.data) for d in got]
    assert None not in seen, f"{seen.count(None)} corrupted datagrams"
    assert len(set(seen)) == len(seen), f"{len(seen) - len(set(seen))} duplicates"
    assert len(seen) + drops == total, f"received {len(seen)} + dropped {drops} != {total}"


def test_kernel_drops_stay_exact_with_two_receiving_threads(
        netns: Netns, impl: str, mcast_port: int) -> None:
    """14.6: two threads receiving with metadata while the kernel drops: the counter only
    moves forward and ends at the kernel's last reported total (it used to move back
    when threads finished out of order and count the difference twice)."""
    group = fresh_group4(32)
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo", metadata=True,
                                rcvbuf_bytes=2048)
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo")
    seen: list[int] = []
    stop = threading.Event()

    def read(batch: bool) -> None:
        while not stop.is_set():
            try:
                got = rx.recv_batch(4, timeout_s=0.05) if batch else [rx.recv(0.05)]
            except mcastkit.ReceiveTimeoutError:
                continue
            seen.extend(d.drops for d in got if d.drops is not None)

    readers = [threading.Thread(target=read, args=(b,))
               for b in (True, True, True, False, False)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # many thread switches: out-of-order finishes are likely
    try:
        with rx, tx:
            for r in readers:
                r.start()
            for _ in range(600):
                tx.send_batch([b"x" * 200] * 20, group, mcast_port)
            tx.send(b"last")  # carries the final total once the queue drains
            stop.set()
            for r in readers:
                r.join()
            # what is still queued (nothing left: a timeout error)
            with contextlib.suppress(mcastkit.ReceiveTimeoutError, BlockingIOError):
                seen.extend(d.drops for d in rx.recv_many(1 << 16, timeout_s=0)
                            if d.drops is not None)
            live = rx.kernel_drops()
    finally:
        stop.set()
        sys.setswitchinterval(switch)
    assert seen, "the kernel dropped nothing; the test needs drops"
    assert rx.stats.kernel_drops == max(seen) <= live


def test_batch_reader_never_makes_a_concurrent_recv_non_blocking(
        netns: Netns, impl: str, mcast_port: int) -> None:
    """14.6: one thread in ``recv_batch`` (the pure-Python path used to switch the shared
    socket to non-blocking for its drain) and one in a blocking ``recv()``: the blocking
    one waits; it never gets a BlockingIOError."""
    group = fresh_group4(33)
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=1 << 20)
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo")
    total = 400
    got: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def blocking_recv() -> None:
        try:
            while not done.is_set():
                rx.recv()
                got.append(1)
        except mcastkit.ClosedError:
            pass
        except BaseException as exc:
            errors.append(exc)

    def batches() -> None:  # blocking too: the old pure-Python drain flipped the socket
        while not done.is_set():
            try:
                got.extend(1 for _ in rx.recv_batch(8))
            except mcastkit.ClosedError:
                return

    threads = [threading.Thread(target=blocking_recv), threading.Thread(target=batches)]
    with tx:
        for t in threads:
            t.start()
        for i in range(total):
            tx.send(b"%d" % i)
            if i % 50 == 0 and errors:
                break
        end = time.monotonic() + 10  # a bound, not a speed check: all arrive long before
        while (len(got) < total and not errors and threads[0].is_alive()
               and time.monotonic() < end):
            threads[1].join(timeout=0.01)
        done.set()
        rx.close()  # wakes the blocking recv
        for t in threads:
            t.join()
    assert not errors, f"recv() raised {errors[0]!r} while recv_batch ran"
    assert len(got) == total
