"""The accelerator's ring is made on the first read, grows with the traffic, and keeps a
batch's payload small; datagrams of every size arrive whole and in order, including the
large ones it reads straight into their bytes (issue 13 item 7)."""

from __future__ import annotations

import select
import socket

import pytest

import mcastkit
from tests.support.addrs import asm4
from tests.support.batch import WAIT, ring_read
from tests.support.memory import live_rss_kib, skip_under_asan
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(5, 22)


def test_mixed_sizes_arrive_whole_in_order(netns: Netns, impl: str, mcast_port: int) -> None:
    sizes = [64, 5000, 19_000, 25_000, 64, 8000, 1400, 20_000, 30_000, 64] * 3
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=20_000,
                                rcvbuf_bytes=8 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        for i, n in enumerate(sizes):
            tx.send(bytes([i % 251]) * n)
        got = []
        while len(got) < len(sizes):
            got += rx.recv_batch(256, WAIT)
        for i, (n, d) in enumerate(zip(sizes, got, strict=True)):
            assert d.truncated == (n > 20_000), (i, n)
            assert d.data == bytes([i % 251]) * min(n, 20_000), (i, n)
        assert rx.stats.truncated == sum(n > 20_000 for n in sizes)


def test_ring_is_made_lazily_and_grows_with_the_traffic(
        netns: Netns, mcast_port: int) -> None:
    from mcastkit._io import _c

    if _c.Ring is None:
        pytest.skip("the accelerator is not built")
    ring = _c.Ring(socket.AF_INET, 65535, 256)
    assert ring.slots == 0  # nothing allocated before the first read
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=8 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        tx.send(b"z")
        assert select.select([rx.fileno()], [], [], WAIT)[0]
        assert len(ring.recv(rx.fileno(), 256)) == 1
        small = ring.slots
        assert 1 <= small <= 8
        tx.send_batch([b"b"] * 200, G, mcast_port)
        assert len(ring.recv(rx.fileno(), 256)) == 200
        assert small < ring.slots <= 128  # grew, within 8 MiB of 64 KiB slots


def test_large_datagrams_come_a_few_per_batch(netns: Netns, impl: str,
                                              mcast_port: int) -> None:
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=16 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        for i in range(24):
            tx.send(bytes([i]) * 60_000)
        got = rx.recv_batch(256, WAIT)
        batches = [len(got)]
        while sum(batches) < 24:
            more = rx.recv_batch(256, WAIT)
            batches.append(len(more))
            got += more
        assert [d.data for d in got] == [bytes([i]) * 60_000 for i in range(24)]
        if impl == "c":  # the accelerator bounds a batch of large datagrams (512 KiB of
            assert max(batches[1:]) <= 8  # buffers) once it has seen how large they are


def test_a_burst_of_large_datagrams_leaves_no_resident_overflow(
        netns: Netns, mcast_port: int) -> None:
    """A ring grown by small datagrams (128 slots) takes a burst of 60000 B datagrams in
    one ring read, which writes into the slots' overflow blocks (7 MB); once the ring has
    switched to direct reads those pages are given back, not kept resident for the life
    of the socket."""
    from mcastkit._io import _c

    if _c.Ring is None:
        pytest.skip("the accelerator is not built")
    ring = _c.Ring(socket.AF_INET, 65535, 256)
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=32 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        for _ in range(4):  # small datagrams, enough to fill the ring as it grows
            tx.send_batch([b"s" * 64] * 256, G, mcast_port)
            assert len(ring_read(ring, rx.fileno(), 256)) == 256
        assert ring.slots == 128, ring.slots
        before = live_rss_kib()
        for i in range(110):
            tx.send(bytes([i]) * 60_000)
        assert select.select([rx.fileno()], [], [], WAIT)[0]
        big = ring.recv(rx.fileno(), 256)  # one ring read: the last read saw 64 B
        assert len(big) >= 100 and all(len(d.data) == 60_000 for d in big)
        del big
        grown = live_rss_kib() - before
    skip_under_asan()  # (scripts/asan-batch has run the read path above)
    assert grown < 2048, f"{grown} KiB still resident after the burst was dropped"
