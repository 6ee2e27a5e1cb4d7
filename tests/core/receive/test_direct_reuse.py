"""Large datagrams read straight into their bytes objects, which the accelerator sizes to
the traffic and reuses once the caller dropped them (issue 13 item 6): a datagram the
caller still holds never changes, a reused one forgets its old hash, and datagrams longer
or shorter than the ones before (or cut at ``recv_size``) still arrive whole and in order,
on every backend."""

from __future__ import annotations

import errno
import socket

import pytest

import mcastkit
from tests.support.addrs import asm4
from tests.support.batch import WAIT, drain
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(5, 23)


def _pattern(i: int, n: int) -> bytes:
    return bytes([(i * 7 + 1) % 251]) * n


def test_held_datagrams_never_change(netns: Netns, impl: str, mcast_port: int) -> None:
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=32 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        kept = []
        for rnd in range(6):  # many reads: buffers of dropped datagrams are reused
            for i in range(8):
                tx.send(_pattern(rnd * 8 + i, 60_000))
            got = drain(rx, 8, 256)
            kept.append(got[rnd % 8])  # keep one per round, drop the others
            ids = [bytes(d.data) for d in got]
            assert ids == [_pattern(rnd * 8 + i, 60_000) for i in range(8)]
        for rnd, d in enumerate(kept):
            assert d.data == _pattern(rnd * 8 + rnd % 8, 60_000), rnd


def test_reused_buffer_forgets_the_old_hash(netns: Netns, impl: str,
                                            mcast_port: int) -> None:
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=32 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        for i in range(40):
            tx.send(_pattern(i, 50_000) + i.to_bytes(4, "big"))
            d = rx.recv(WAIT)
            want = _pattern(i, 50_000) + i.to_bytes(4, "big")
            assert d.data == want
            assert hash(d.data) == hash(want), i  # a stale cached hash would differ
            assert {d.data: 1}.get(want) == 1
            del d  # dropped: its buffer may be read into again


def test_sizes_that_change_arrive_whole(netns: Netns, impl: str, mcast_port: int) -> None:
    # grows past the buffer sized to the last read, shrinks, and is cut at recv_size
    sizes = [6000, 6000, 60_000, 9000, 40_000, 65_000, 4096, 30_000, 64, 62_000] * 3
    recv_size = 61_000
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=recv_size,
                                rcvbuf_bytes=32 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        for i, n in enumerate(sizes):
            tx.send(_pattern(i, n))
        got = drain(rx, len(sizes), 3)
        for i, (n, d) in enumerate(zip(sizes, got, strict=True)):
            assert d.truncated == (n > recv_size), (i, n)
            assert d.data == _pattern(i, min(n, recv_size)), (i, n)
        assert rx.stats.truncated == sum(n > recv_size for n in sizes)
        assert rx.stats.bytes == sum(min(n, recv_size) for n in sizes)


def test_ring_read_takes_batch_and_summary_together(netns: Netns, mcast_port: int) -> None:
    from mcastkit._io import _c

    if _c.Ring is None:
        pytest.skip("the accelerator is not built")
    ring = _c.Ring(socket.AF_INET, 65535, 8)
    with mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=8 << 20) as rx, \
            mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
        with pytest.raises(BlockingIOError):
            ring.read(rx.sock, 4)
        for i in range(3):
            tx.send(_pattern(i, 5000))
        rx.recv_batch(1, WAIT)  # waited until the first is queued; it took that one
        got, summary = ring.read(rx.sock, 64)
        assert [d.data for d in got] == [_pattern(i, 5000) for i in (1, 2)]
        assert summary == (None, None, None, 10_000, 0)
        with pytest.raises(ValueError):
            ring.read(rx.sock, 0)
        kernel_sock = rx.sock
    with pytest.raises(OSError) as err:  # closed: fileno() is -1
        ring.read(kernel_sock, 4)
    assert err.value.errno == errno.EBADF
