"""The accelerator's rings share one set of read buffers per thread: a ring keeps only its
size, so many busy sockets cost one ring's memory; a read entered from inside another
read in the same thread (a GC finalizer) and reads in several threads at once each get
buffers of their own (issue 13 item 7)."""

from __future__ import annotations

import gc
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import mcastkit
from tests.support.addrs import asm4
from tests.support.batch import WAIT, ring_read
from tests.support.memory import live_rss_kib, skip_under_asan
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(5, 23)


@pytest.fixture
def ring_type() -> Iterator[Any]:
    from mcastkit._io import _c

    if _c.Ring is None:
        pytest.skip("the accelerator is not built")
    yield _c.Ring


def test_a_read_inside_a_read_gets_its_own_buffers(netns: Netns, ring_type: Any,
                                                   mcast_port: int) -> None:
    """A finalizer that the GC runs while the first ring builds its Datagrams reads a
    second socket in the same thread: neither read sees the other's bytes."""
    p1, p2 = mcast_port, mcast_port + 1
    with mcastkit.open_receiver(f"{G}:{p1}", interface="lo", rcvbuf_bytes=4 << 20) as a, \
            mcastkit.open_receiver(f"{G}:{p2}", interface="lo",
                                   rcvbuf_bytes=4 << 20) as b, \
            mcastkit.open_sender(f"{G}:{p1}", interface="lo") as tx:
        ring_a, ring_b = ring_type(socket.AF_INET, 2048, 256), ring_type(socket.AF_INET,
                                                                         2048, 256)
        want_a = [b"A%03d" % i + b"a" * 200 for i in range(100)]
        want_b = [b"B%03d" % i + b"b" * 200 for i in range(100)]
        tx.send_batch(want_a, G, p1)
        tx.send_batch(want_b, G, p2)
        assert select.select([a.fileno()], [], [], WAIT)[0]
        assert select.select([b.fileno()], [], [], WAIT)[0]
        nested: list[list[bytes]] = []
        state = {"in_read": False, "collections": 0}

        class ReadsOnCollect:
            """Garbage that reads ring_b when the GC frees it, once ring_a's read is past
            its first collections (so in the middle of building its Datagrams)."""

            def __init__(self) -> None:
                self.me = self  # a cycle: only the GC frees it

            def __del__(self) -> None:
                if nested:
                    return
                if state["in_read"]:
                    state["collections"] += 1
                    if state["collections"] >= 3:
                        nested.append([d.data for d in ring_b.recv(b.fileno(), 256)])
                        return
                ReadsOnCollect()  # garbage again, for the next collection

        old = gc.get_threshold()
        gc.collect()
        try:
            gc.set_threshold(1)
            ReadsOnCollect()
            state["in_read"] = True
            got_a = [d.data for d in ring_a.recv(a.fileno(), 256)]
            state["in_read"] = False
        finally:
            gc.set_threshold(*old)
        assert len(got_a) > 10, "the read ended before the finalizer could run inside it"
        assert nested, "the finalizer did not run during the read"
        got_b = nested[0] + ring_read(ring_b, b.fileno(), 100 - len(nested[0]))
        got_a += ring_read(ring_a, a.fileno(), 100 - len(got_a))
    assert got_a == want_a
    assert got_b == want_b


def test_threads_read_at_once_with_buffers_of_their_own(netns: Netns, ring_type: Any,
                                                        mcast_port: int) -> None:
    """Four threads drain four sockets at the same time, each through rings of different
    recv_size (different slot layouts); every datagram comes out whole; the threads'
    buffers are freed as they exit (the sanitized run checks that)."""
    n, rounds, per = 4, 20, 150
    rxs = [mcastkit.open_receiver(f"{G}:{mcast_port + i}", interface="lo",
                                  rcvbuf_bytes=4 << 20) for i in range(n)]
    errors: list[BaseException] = []
    start = threading.Barrier(n + 1)

    def reader(i: int) -> None:
        try:
            ring = ring_type(socket.AF_INET, 1500 + 700 * i, 256)
            for r in range(rounds):
                start.wait()  # this round's datagrams are queued
                got = ring_read(ring, rxs[i].fileno(), per)
                assert got == [b"%d:%d:%03d" % (i, r, k) + b"x" * (100 * i) for k in range(per)]
                start.wait()  # every thread is done with it
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        with mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
            for r in range(rounds):
                for i in range(n):
                    tx.send_batch([b"%d:%d:%03d" % (i, r, k) + b"x" * (100 * i)
                                   for k in range(per)], G, mcast_port + i)
                start.wait()
                start.wait()
        for t in threads:
            t.join(60)
    finally:
        for rx in rxs:
            rx.close()
    assert not errors, errors[0]


def test_many_busy_rings_cost_one_rings_memory(netns: Netns, ring_type: Any,
                                               mcast_port: int) -> None:
    """300 rings, each grown to 128 slots by its own traffic: resident memory grows by far
    less than one ring's buffers each (~300 KiB a ring touched, 90 MB for 300)."""
    skip_under_asan()
    n, each = 300, 250
    rxs = [mcastkit.open_receiver(f"{G}:{mcast_port + i}", interface="lo",
                                  rcvbuf_bytes=1 << 20) for i in range(n)]
    try:
        rings = [ring_type(socket.AF_INET, 65535, 256) for _ in range(n)]
        before = live_rss_kib()
        with mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
            for i, (rx, ring) in enumerate(zip(rxs, rings, strict=True)):
                for _ in range(0, each, 125):  # one socket at a time: little kernel memory
                    tx.send_batch([b"m" * 1000] * 125, G, mcast_port + i)
                assert len(ring_read(ring, rx.fileno(), each)) == each, i
        assert {r.slots for r in rings} == {128}
        grown = live_rss_kib() - before
    finally:
        for rx in rxs:
            rx.close()
    assert grown < 24 * 1024, f"{grown} KiB resident for {n} rings"
