"""Send shapes the fast paths must keep right (issue 13 items 6-7): sendto alternating
between destinations, send_batch with one payload, and errors on those paths."""

from __future__ import annotations

import pytest

import mcastkit
from mcastkit import ClosedError, DatagramTooLargeError
from tests.support.addrs import asm4
from tests.support.batch import WAIT
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G1 = asm4(5, 31)
G2 = asm4(5, 32)


def test_sendto_alternating_destinations(netns: Netns, impl: str, mcast_port: int) -> None:
    with mcastkit.open_receiver(f"{G1}:{mcast_port}", f"{G2}:{mcast_port}",
                                interface="lo", metadata=True) as rx, \
            mcastkit.MulticastSocket(4, interface="lo") as tx:
        for i in range(20):
            tx.sendto(b"%d" % i, G1 if i % 2 == 0 else G2, mcast_port)
        got = [rx.recv(WAIT) for _ in range(20)]
        assert [d.data for d in got] == [b"%d" % i for i in range(20)]
        assert [d.group for d in got] == [G1, G2] * 10


def test_sendto_many_destinations(netns: Netns, impl: str, mcast_port: int) -> None:
    """More destinations than any cache holds: every datagram still goes where it says."""
    groups = [asm4(6, i) for i in range(1, 101)]
    netns.sysctl("net.ipv4.igmp_max_memberships", 200)
    with mcastkit.open_receiver(*(f"{g}:{mcast_port}" for g in groups), interface="lo",
                                metadata=True, rcvbuf_bytes=1 << 20) as rx, \
            mcastkit.MulticastSocket(4, interface="lo") as tx:
        for _ in range(2):
            for g in groups:
                tx.sendto(g.encode(), g, mcast_port)
        got = [rx.recv(WAIT) for _ in range(200)]
        assert all(d.data == d.group.encode() for d in got if d.group)
        assert [d.group for d in got] == groups * 2


def test_send_batch_of_one(netns: Netns, impl: str, mcast_port: int) -> None:
    with mcastkit.open_receiver(f"{G1}:{mcast_port}", interface="lo") as rx, \
            mcastkit.MulticastSocket(4, interface="lo") as tx:
        for method in ("auto", "mmsg", "loop"):
            assert tx.send_batch([b"one-" + method.encode()], G1, mcast_port,
                                 method=method) == 1
        assert [rx.recv(WAIT).data for _ in range(3)] == [b"one-auto", b"one-mmsg",
                                                          b"one-loop"]
        with pytest.raises(DatagramTooLargeError) as ei:
            tx.send_batch([b"x" * 70_000], G1, mcast_port)
        assert ei.value.datagrams_sent == 0
        tx.close()
        with pytest.raises(ClosedError):
            tx.send_batch([b"late"], G1, mcast_port)
        with pytest.raises(ClosedError):
            tx.sendto(b"late", G1, mcast_port)
