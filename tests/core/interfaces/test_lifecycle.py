"""Field notes §2 group B (interface and address lifecycle) against the real kernel.

Owns: B1/B2 link down and up, B3 interface deleted and re-created (``refresh_interfaces``
and teardown when the interface is gone), B4 stale interface address (we join and leave
by index, so /proc/net/igmp is clean after leave and close), B5 IPv6 sends during DAD,
B6 duplicate copies on two interfaces of one segment.
Must not: prove non-delivery with a sleep; create interfaces outside test namespaces.
"""

from __future__ import annotations

import errno
import socket

import pytest

from mcastkit import ErrorCode, MulticastSocket, SendError
from tests.support import kernelstate
from tests.support.addrs import asm6, lab_host, ssm4
from tests.support.kernel import WAIT_S, drain, group4, group6, groups_on, raw_join4
from tests.support.netns import Netns, veth, wait_until
from tests.support.topology import VethLoop, VethPair

pytestmark = pytest.mark.kernel


def _g(version: int) -> str:
    return group4() if version == 4 else group6()


def _held(version: int, dev: str = "eth0") -> set[str]:
    return groups_on(dev, kernelstate.igmp_groups() if version == 4
                     else kernelstate.igmp6_groups())


def _recreate(pair: VethPair) -> None:
    """Delete eth0 (both ends go) and build it again: same names, new indexes."""
    pair.b.ip("link", "del", "eth0")
    veth(pair.a, "eth0", pair.b, "eth0")
    pair.a.addr_add("eth0", pair.addr_a + "/24")
    pair.b.addr_add("eth0", pair.addr_b + "/24")
    pair.a.link_local("eth0")
    pair.b.link_local("eth0")


# --------------------------------------------------------------------------- B1 / B2


@pytest.mark.parametrize("version", [4, 6])
def test_b1_b2_link_down_keeps_membership_and_delivery_resumes(veth_pair: VethPair,
                                                               version: int) -> None:
    g = _g(version)
    with veth_pair.b.enter():
        rx = MulticastSocket(version, metadata=True)
        port = rx.bind(0)[1]
        rx.join(g, "eth0")
    with veth_pair.a.enter():
        tx = MulticastSocket(version, interface="eth0")
    with rx, tx:
        veth_pair.b.ip("link", "set", "eth0", "down")
        with veth_pair.b.enter():
            assert g in _held(version)  # B1: the membership stays
        # the kernel drops it at the link: with IP_RECVERR that is a transient
        # SendError, counted, never a silent success (issue 14.5)
        with pytest.raises(SendError) as ei:
            tx.sendto(b"while down", g, port)
        assert ei.value.transient and tx.stats.send_drops == 1
        veth_pair.b.ip("link", "set", "eth0", "up")
        veth_pair.b.link_local("eth0")
        with veth_pair.b.enter():

            def resumed() -> bytes:
                tx.sendto(b"sentinel", g, port)
                return b"".join(d.data for d in drain(rx))

            got = wait_until(resumed, WAIT_S, what="delivery after link up")
            assert got.startswith(b"sentinel") and b"while down" not in got
            assert [m.ifname for m in rx.memberships] == ["eth0"]
            assert g in _held(version)


# --------------------------------------------------------------------------- B3


@pytest.mark.parametrize("version", [4, 6])
def test_b3_recreated_interface_is_rejoined_by_refresh(veth_pair: VethPair,
                                                       version: int) -> None:
    g = _g(version)
    with veth_pair.b.enter():
        rx = MulticastSocket(version, metadata=True, reuse_address=True)
        port = rx.bind(0)[1]
        rx.join(g, "eth0")  # chosen by name: eligible for re-join
        old_index = veth_pair.ifindex_b
        _recreate(veth_pair)
        new_index = socket.if_nametoindex("eth0")
        assert new_index != old_index
        assert g not in _held(version)  # the kernel dropped it with the device
        with MulticastSocket(version, reuse_address=True, metadata=True) as control, rx:
            control.bind(port)
            control.join(g, "eth0")
            with veth_pair.a.enter(), MulticastSocket(version, interface="eth0") as tx:
                tx.sendto(b"before refresh", g, port)
                assert control.recv(WAIT_S).data == b"before refresh"
                # B3: the old socket gets nothing. (IPv6's kernel check ignores the
                # interface and does queue it; our metadata check drops and counts it.)
                assert drain(rx) == []
                assert rx.stats.filtered == (1 if version == 6 else 0)
                done = rx.refresh_interfaces()
                assert [(m.group, m.ifindex) for m in done] == [(g, new_index)]
                assert rx.memberships[0].ifindex == new_index
                tx.sendto(b"after refresh", g, port)
                d = rx.recv(WAIT_S)
                assert (d.data, d.interface) == (b"after refresh", new_index)
                assert rx.refresh_interfaces() == []  # nothing more to do
        control_gone = _held(version)
        assert g not in control_gone  # both closed: nothing left on the new eth0


def test_b3_refresh_restores_source_specific_membership(veth_pair: VethPair) -> None:
    g = ssm4(200, 251, 1)
    with veth_pair.b.enter(), MulticastSocket(4) as rx:
        rx.join_source(veth_pair.addr_a, g, "eth0")
        _recreate(veth_pair)
        [m] = rx.refresh_interfaces()
        assert m.sources == frozenset({veth_pair.addr_a})
        rows = {(d, grp, s, inc) for d, grp, s, inc, _ in kernelstate.source_filters()}
        assert ("eth0", g, veth_pair.addr_a, 1) in rows


def test_b3_memberships_chosen_by_index_are_not_rejoined(veth_pair: VethPair) -> None:
    with veth_pair.b.enter(), MulticastSocket(4) as rx:
        rx.join(group4(), veth_pair.ifindex_b)
        _recreate(veth_pair)
        assert rx.refresh_interfaces() == []


@pytest.mark.parametrize("version", [4, 6])
def test_b3_leave_and_close_never_raise_when_the_interface_is_gone(
    veth_pair: VethPair, version: int
) -> None:
    g1, g2 = _g(version), _g(version)
    with veth_pair.b.enter():
        rx = MulticastSocket(version)
        rx.join(g1, "eth0")
        rx.join(g2, "eth0")
        veth_pair.b.ip("link", "del", "eth0")
        rx.leave(g1)  # by the remembered index; the kernel already dropped it
        assert [m.group for m in rx.memberships] == [g2]
        rx.close()
        rx.close()
        assert rx.closed


# --------------------------------------------------------------------------- B4


def _move_address(pair: VethPair, new: str) -> None:
    pair.b.ip("addr", "del", pair.addr_b + "/24", "dev", "eth0")
    pair.b.addr_add("eth0", new + "/24")


@pytest.mark.parametrize("how", ["leave", "close"])
def test_b4_join_by_address_then_address_changes_leaves_nothing_behind(
    veth_pair: VethPair, how: str
) -> None:
    g = group4()
    with veth_pair.b.enter():
        rx = MulticastSocket(4)
        m = rx.join(g, veth_pair.addr_b)  # given as an address, applied by index
        assert m.ifindex == veth_pair.ifindex_b
        _move_address(veth_pair, lab_host(9, 3))
        if how == "leave":
            rx.leave(g)
            assert g not in _held(4)
        rx.close()
        assert g not in _held(4)  # G11: nothing leaked


def test_b4_control_leave_by_stale_address_leaks_in_the_kernel(veth_pair: VethPair) -> None:
    """Positive control for the test above: the by-address API leaks (observed)."""
    g = group4()
    with veth_pair.b.enter():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            mreq = socket.inet_aton(g) + socket.inet_aton(veth_pair.addr_b)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            _move_address(veth_pair, lab_host(9, 3))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq)  # "succeeds"
        assert g in _held(4)  # still on eth0 after close


def test_b4_raw_join_by_index_does_not_leak(veth_pair: VethPair) -> None:
    g = group4()
    with veth_pair.b.enter():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            raw_join4(s, g, veth_pair.ifindex_b)
            _move_address(veth_pair, lab_host(9, 3))
        assert g not in _held(4)


# --------------------------------------------------------------------------- B5


def test_b5_ipv6_send_during_dad_is_a_typed_error_then_works() -> None:
    from tests.support.fixtures import ensure_netns

    ensure_netns()
    a, b = Netns.fresh("dad"), Netns.fresh("dad")
    try:
        for ns in (a, b):  # the fixtures turn DAD off; this test needs it on
            ns.sysctl("net.ipv6.conf.all.accept_dad", 1)
            ns.sysctl("net.ipv6.conf.default.accept_dad", 1)
        veth(a, "eth0", b, "eth0")
        with a.enter(), MulticastSocket(6, interface="eth0") as tx:
            with pytest.raises(SendError) as ei:
                tx.sendto(b"too early", asm6("a:dad"), 9)
            e = ei.value
            assert e.errno == errno.EADDRNOTAVAIL and e.code is ErrorCode.SEND_FAILED
            assert "tentative" in str(e) and not e.transient

            def sent() -> bool:
                try:
                    tx.sendto(b"ok", asm6("a:dad"), 9)
                except SendError:
                    return False
                return True

            wait_until(sent, 10.0, what="link-local address leaves DAD")
    finally:
        a.delete()
        b.delete()


# --------------------------------------------------------------------------- B6


def test_b6_two_interfaces_on_one_segment_give_two_copies(veth_loop: VethLoop) -> None:
    g = group6()
    with MulticastSocket(6, metadata=True) as rx, MulticastSocket(6, interface="va") as tx:
        port = rx.bind(0)[1]
        rx.join(g, "va")
        rx.join(g, "vb")
        tx.sendto(b"dup", g, port)
        copies = [rx.recv(WAIT_S)]
        copies += drain(rx)
        assert sorted(d.interface or 0 for d in copies) == sorted(
            [veth_loop.ifindex_va, veth_loop.ifindex_vb])
        assert {d.group for d in copies} == {g} and {d.data for d in copies} == {b"dup"}
        rx.leave(g, "vb")  # one copy again
        tx.sendto(b"single", g, port)
        d = rx.recv(WAIT_S)
        assert d.interface == veth_loop.ifindex_va and drain(rx) == []


def test_b6_ipv4_two_copies_over_two_veths(netns: Netns) -> None:
    """IPv4 variant: a host with two veths to one peer namespace (one segment each side
    of a bridge is not needed: the peer sends out of both)."""
    peer = Netns.fresh("b6")
    try:
        veth(netns, "e1", peer, "p1")
        veth(netns, "e2", peer, "p2")
        netns.addr_add("e1", f"{lab_host(6, 1)}/24")
        netns.addr_add("e2", f"{lab_host(7, 1)}/24")
        peer.addr_add("p1", f"{lab_host(6, 2)}/24")
        peer.addr_add("p2", f"{lab_host(7, 2)}/24")
        g = group4()
        with MulticastSocket(4, metadata=True) as rx:
            port = rx.bind(0)[1]
            rx.join(g, "e1")
            rx.join(g, "e2")
            with peer.enter(), MulticastSocket(4, interface="p1") as t1, \
                    MulticastSocket(4, interface="p2") as t2:
                t1.sendto(b"dup", g, port)
                t2.sendto(b"dup", g, port)
            copies = [rx.recv(WAIT_S), rx.recv(WAIT_S)]
            assert {d.interface for d in copies} == {socket.if_nametoindex("e1"),
                                                     socket.if_nametoindex("e2")}
            assert drain(rx) == []
    finally:
        peer.delete()


@pytest.mark.parametrize("metadata", [True, False], ids=["meta", "plain"])
def test_g1_ipv6_kernel_ignores_the_interface_of_a_membership(veth_loop: VethLoop,
                                                              metadata: bool) -> None:
    """A socket joined G on va only. Another socket joins G on vb. A datagram arriving on
    vb reaches the va socket too (Linux ip6 checks the group, not the ifindex). With
    metadata on, mcastkit drops and counts it (stats.filtered); without, it cannot."""
    g = group6()
    with MulticastSocket(6, metadata=metadata, reuse_address=True) as on_va, \
            MulticastSocket(6, metadata=True, reuse_address=True) as on_vb, \
            MulticastSocket(6, interface="va", loopback=False) as tx:
        port = on_va.bind(0)[1]
        on_vb.bind(port)
        on_va.join(g, "va")
        on_vb.join(g, "vb")
        tx.sendto(b"arrives on vb", g, port)  # loop off: only the wire copy, on vb
        assert on_vb.recv(WAIT_S).interface == veth_loop.ifindex_vb
        leaked = drain(on_va)
        if metadata:
            assert leaked == [] and on_va.stats.filtered == 1
        else:
            assert [d.data for d in leaked] == [b"arrives on vb"]  # documented limit
