"""The core's route lookup for a join without interface (issue 8 item 5): rtnetlink
``RTM_GETROUTE`` → ``RTA_OIF``, so a route without a source address names its device.

Owns: the kernel test (``224.0.0.0/4 dev eth0`` on an interface without IPv4 address,
in a namespace) and the property tests of the route-answer decoder.
Must not: touch routes outside a test namespace.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit import MulticastSocket
from mcastkit._netlink import (
    NLMSG_ERROR,
    RTA_OIF,
    RTM_NEWROUTE,
    parse_route_oif,
    route_request,
)
from tests.support.addrs import G4
from tests.support.kernel import WAIT_S, group4
from tests.support.topology import VethPair, new_port

_HDR = struct.Struct("=IHHII")


def _answer(mtype: int, body: bytes) -> bytes:
    return _HDR.pack(_HDR.size + len(body), mtype, 0, 1, 0) + body


def _route(oif: int | None) -> bytes:
    rtmsg = struct.pack("=BBBBBBBBI", socket.AF_INET, 32, 0, 0, 254, 0, 0, 1, 0)
    attrs = struct.pack("=HHi", 8, RTA_OIF, oif) if oif is not None else b""
    return _answer(RTM_NEWROUTE, rtmsg + attrs)


def test_the_route_answer_decodes() -> None:
    assert parse_route_oif(_route(7)) == 7
    assert parse_route_oif(_route(None)) is None
    with pytest.raises(OSError) as e:
        parse_route_oif(_answer(NLMSG_ERROR, struct.pack("=i", -101) + bytes(16)))
    assert e.value.errno == 101
    req = route_request(socket.inet_aton(G4))
    assert len(req) == _HDR.unpack_from(req)[0] and req.endswith(socket.inet_aton(G4))


@given(st.binary(max_size=200))
def test_the_route_decoder_never_raises_anything_but_oserror(raw: bytes) -> None:
    try:
        got = parse_route_oif(raw)
    except OSError:
        return
    assert got is None or got > 0


@pytest.mark.kernel
def test_join_without_interface_follows_a_route_without_source_address(
        veth_pair: VethPair) -> None:
    """In b: ``224.0.0.0/4 dev eth0`` and eth0 has no IPv4 address. The connect probe
    finds no source address there (0.0.0.0), so only the route's device names eth0."""
    b, g, port = veth_pair.b, group4(), new_port()
    b.ip("-4", "addr", "flush", "dev", "eth0")
    b.ip("route", "add", "224.0.0.0/4", "dev", "eth0")
    with b.enter(), MulticastSocket(4) as rx:
        rx.bind(port)
        m = rx.join(g)
        assert (m.ifname, m.ifindex) == ("eth0", veth_pair.ifindex_b)
        with veth_pair.a.enter(), MulticastSocket(4, interface="eth0") as tx:
            tx.sendto(b"routed", g, port)
        d = rx.recv(WAIT_S)
        assert (d.data, d.source) == (b"routed", veth_pair.addr_a)
