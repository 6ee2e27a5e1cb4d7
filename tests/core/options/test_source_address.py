"""The source address of sent datagrams (issue 8 item 4): the address the interface
was named by, or the interface's primary address when named by name or index, on
``lo`` and on a veth (IPv4: IP_MULTICAST_IF with an ``ip_mreqn`` carrying both the index
and the address). Before, on ``lo`` in a fresh namespace, receivers saw 0.0.0.0.

Owns: that evidence. Must not: touch interfaces outside the test namespaces.
"""

from __future__ import annotations

import pytest

from mcastkit import MulticastSocket
from tests.support.addrs import lab_host
from tests.support.kernel import WAIT_S, group4
from tests.support.netns import Netns
from tests.support.topology import VethPair, new_port

pytestmark = pytest.mark.kernel

SECOND = lab_host(9, 11)  # a second address on a's eth0
LO_EXTRA = lab_host(30, 1)  # an address added to lo


def _source(tx_spec: object, rx: MulticastSocket, g: str, port: int) -> str:
    with MulticastSocket(4, interface=tx_spec) as tx:  # type: ignore[arg-type]
        tx.sendto(b"x", g, port)
    return rx.recv(WAIT_S).source


def test_source_on_lo_is_the_named_or_primary_address(netns: Netns) -> None:
    netns.addr_add("lo", LO_EXTRA + "/32")
    g, port = group4(), new_port()
    with MulticastSocket(4, interface="lo") as rx:
        rx.bind(port)
        rx.join(g)
        idx = netns.ifindex("lo")
        assert [_source(s, rx, g, port) for s in ("lo", idx, str(idx), "127.0.0.1",
                                                   LO_EXTRA)] == [
            "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", LO_EXTRA]


def test_source_on_veth_is_the_named_or_primary_address(veth_pair: VethPair) -> None:
    veth_pair.a.addr_add("eth0", SECOND + "/24")
    g, port = group4(), new_port()
    with veth_pair.b.enter():
        rx = MulticastSocket(4, interface="eth0")
        rx.bind(port)
        rx.join(g)
    with rx, veth_pair.a.enter():
        got = [_source(s, rx, g, port) for s in ("eth0", veth_pair.ifindex_a,
                                                  veth_pair.addr_a, SECOND)]
        with MulticastSocket(4) as tx:  # set later, by address
            tx.set_interface(SECOND)
            tx.sendto(b"x", g, port)
            got.append(rx.recv(WAIT_S).source)
    assert got == [veth_pair.addr_a, veth_pair.addr_a, veth_pair.addr_a, SECOND, SECOND]
