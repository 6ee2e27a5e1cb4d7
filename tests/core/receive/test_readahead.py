"""recv() reads ahead with the accelerator: it takes what is queued in one batch and serves
the next calls from it (issue 13 item 6). Order, counters, pending(), the other receive
calls, closing, and the selectors pattern that pending() exists for, on every backend."""

from __future__ import annotations

import selectors

import pytest

import mcastkit
from mcastkit import ClosedError, McastValueError, MulticastSocket
from tests.support.addrs import asm4
from tests.support.batch import WAIT
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(5, 21)


def _pair(port: int, **opts: object) -> tuple[MulticastSocket, MulticastSocket]:
    rx = mcastkit.open_receiver(f"{G}:{port}", interface="lo", rcvbuf_bytes=1 << 20, **opts)
    tx = mcastkit.open_sender(f"{G}:{port}", interface="lo")
    return rx, tx


@pytest.mark.parametrize("metadata", [False, True])
def test_recv_keeps_order_and_counts_only_what_it_returned(
        netns: Netns, impl: str, mcast_port: int, metadata: bool) -> None:
    rx, tx = _pair(mcast_port, metadata=metadata)
    with rx, tx:
        sent = [b"r%03d" % i for i in range(5)]
        for p in sent:
            tx.send(p)
        first = rx.recv(WAIT)
        assert first.data == sent[0]
        # the accelerator read the rest in the same batch; the fallbacks read one each
        assert rx.pending() == (4 if impl == "c" else 0)
        assert rx.stats.datagrams == 1 and rx.stats.bytes == len(sent[0])
        rest = [rx.recv(0).data for _ in range(4)]  # no wait: they are already here
        assert rest == sent[1:]
        assert rx.pending() == 0
        assert rx.stats.datagrams == 5 and rx.stats.bytes == sum(map(len, sent))
        with pytest.raises(BlockingIOError):
            rx.recv(0)


def test_recv_batch_and_recv_many_return_read_ahead_first(
        netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        for i in range(4):
            tx.send(b"a%d" % i)
        assert rx.recv(WAIT).data == b"a0"
        for i in range(4, 8):
            tx.send(b"a%d" % i)
        got = [d.data for d in rx.recv_many(2, WAIT)]
        while len(got) < 7:
            got += [d.data for d in rx.recv_batch(64, WAIT)]
        assert got == [b"a%d" % i for i in range(1, 8)]
        assert rx.pending() == 0 and rx.stats.datagrams == 8


def test_close_discards_read_ahead(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with tx:
        for i in range(3):
            tx.send(b"c%d" % i)
        assert rx.recv(WAIT).data == b"c0"
        assert rx.pending() == (2 if impl == "c" else 0)
        rx.close()
        assert rx.pending() == 0
        with pytest.raises(ClosedError):
            rx.recv(0)


def test_selector_loop_with_pending_gets_everything(
        netns: Netns, impl: str, mcast_port: int) -> None:
    """A datagram read ahead is not in the kernel queue any more, so the socket need not
    be readable: a selector loop asks pending() before it waits (as with ssl's)."""
    rx, tx = _pair(mcast_port)
    with rx, tx, selectors.DefaultSelector() as sel:
        sel.register(rx.fileno(), selectors.EVENT_READ)
        sent = [b"s%d" % i for i in range(6)]
        for p in sent:
            tx.send(p)
        got: list[bytes] = []
        while len(got) < len(sent):
            if rx.pending() == 0:
                assert sel.select(WAIT), "nothing became readable"
            got.append(rx.recv(0).data)
        assert got == sent
        assert rx.pending() == 0 and not sel.select(0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1"])
def test_bad_timeout_is_refused_while_datagrams_wait(
        netns: Netns, impl: str, mcast_port: int, bad: object) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        for i in range(3):
            tx.send(b"t%d" % i)
        assert rx.recv(WAIT).data == b"t0"
        with pytest.raises(McastValueError):
            rx.recv(bad)  # type: ignore[arg-type]
        assert [rx.recv(WAIT).data for _ in range(2)] == [b"t1", b"t2"]  # nothing lost
