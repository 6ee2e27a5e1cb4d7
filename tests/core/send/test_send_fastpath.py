"""MulticastSocket.sendto's cached destination: a new address or port is never sent to
the old one."""

from __future__ import annotations

import ipaddress

import pytest

import mcastkit
from tests.support.addrs import asm4
from tests.support.batch import WAIT
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G1 = asm4(5, 21)
G2 = asm4(5, 22)


def test_sendto_follows_every_change_of_target(netns: Netns, mcast_port: int) -> None:
    a = mcastkit.open_receiver(f"{G1}:{mcast_port}", interface="lo", metadata=True,
                                 reuse_port=True)
    b = mcastkit.open_receiver(f"{G2}:{mcast_port}", interface="lo", metadata=True,
                                 reuse_port=True)
    c = mcastkit.open_receiver(f"{G1}:{mcast_port + 1}", interface="lo", metadata=True,
                                 reuse_port=True)
    with a, b, c, mcastkit.MulticastSocket(4, interface="lo") as tx:
        same_text = "".join(list(G1))  # equal to G1 but another object
        plan = [(G1, mcast_port, a), (G2, mcast_port, b), (G1, mcast_port + 1, c),
                (same_text, mcast_port, a), (ipaddress.ip_address(G2), mcast_port, b),
                (G1, mcast_port, a)]
        for i, (addr, port, _) in enumerate(plan):
            tx.sendto(b"%d" % i, addr, port)
        for i, (addr, _port, rx) in enumerate(plan):
            d = rx.recv(WAIT)
            assert (d.data, d.group) == (b"%d" % i, str(addr))
