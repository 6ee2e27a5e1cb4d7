"""Replaying captured broadcasts (issue 8 item 6): datagrams to 255.255.255.255 and to a
subnet's broadcast address, captured by tcpdump on the peer of a veth pair, are sent
again through a socket with ``broadcast=True``; a limited broadcast without an interface
is skipped and counted, never sent along the route's default.

Owns: that evidence. Must not: prove non-delivery with a sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcastkit import MulticastSocket
from mcastkit.capture import replay
from tests.support.addrs import VETH_BCAST
from tests.support.kernel import WAIT_S, drain
from tests.support.peers import PcapCapture
from tests.support.topology import VethPair, new_port

pytestmark = pytest.mark.kernel
LIMITED, DIRECTED = "255.255.255.255", VETH_BCAST


def test_captured_broadcasts_are_replayed(veth_pair: VethPair, tmp_path: Path) -> None:
    port = new_port()
    path = tmp_path / "bcast.pcap"
    with veth_pair.b.enter():
        rx = MulticastSocket(4, broadcast=True, metadata=True)
        rx.bind(port)
    with rx:
        cap = PcapCapture(veth_pair.b, port, 2, path)
        with veth_pair.a.enter(), MulticastSocket(4, broadcast=True, interface="eth0") as tx:
            tx.sendto(b"limited", LIMITED, port)
            tx.sendto(b"directed", DIRECTED, port)
        cap.frames()
        assert [(d.data, d.group) for d in (rx.recv(WAIT_S), rx.recv(WAIT_S))] == [
            (b"limited", LIMITED), (b"directed", DIRECTED)]
        with veth_pair.a.enter():
            rep = replay(str(path), interface="eth0", as_fast=True)
            assert (rep.sent, dict(rep.skipped)) == (2, {})
            got = [(d.data, d.group) for d in (rx.recv(WAIT_S), rx.recv(WAIT_S))]
            assert got == [(b"limited", LIMITED), (b"directed", DIRECTED)]
            rep = replay(str(path), speed=100.0)  # no interface: the limited one is skipped
            assert rep.sent == 1 and rep.skipped["broadcast_without_interface"] == 1
        assert [(d.data, d.group) for d in [rx.recv(WAIT_S)]] == [(b"directed", DIRECTED)]
        with veth_pair.b.enter():
            assert drain(rx) == []
