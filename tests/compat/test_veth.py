"""MCast across a veth pair (two namespaces the fixture made): loopback, don't-fragment,
IPv6, two instances in two namespaces talking both ways, and SourceIPAddress."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcastkit import MulticastSocket
from mcastkit.compat import MCast, MCastError
from tests.support.addrs import asm4, asm6, lab_host
from tests.support.compat import Recorder, pump
from tests.support.topology import VethLoop, VethPair

pytestmark = pytest.mark.kernel

G = asm4(11, 1)
G6 = asm6("11:1")
Make = Callable[..., MCast]


def _in(ns: object, fn: Callable[[], MCast]) -> MCast:
    with ns.enter():  # type: ignore[attr-defined]
        return fn()


def _rx(make: Make, group: str, port: int = 0, **settings: object) -> tuple[MCast, Recorder]:
    rec = Recorder()
    mc = rec.attach(make(interface="eth0", **settings))
    mc.local_port = port
    mc.multicast_group = group
    mc.active = True
    return mc, rec


def _tx(make: Make, group: str, port: int, **settings: object) -> MCast:
    mc = make(interface="eth0", **settings)
    mc.active = True
    mc.remote_host, mc.remote_port = group, port
    return mc


def test_loopback_off_silences_same_host_delivery(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.a.enter():
        rx, rec = _rx(make, G)
        quiet = _tx(make, G, rx.local_port)
        quiet.loopback = False
        loud = _tx(make, G, rx.local_port)
    quiet.send(b"forbidden")
    loud.send(b"sentinel")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"sentinel"]


def test_loopback_off_still_reaches_the_other_host(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.b.enter():
        rx, rec = _rx(make, G)
    with veth_pair.a.enter():
        tx = make(interface="eth0")
        tx.loopback = False  # before activation
        tx.active = True
        tx.remote_host, tx.remote_port = G, rx.local_port
    tx.send(b"across")
    pump([rx], lambda: bool(rec.data))
    assert rec.data[0].source_address == veth_pair.addr_a


def test_two_namespaces_talk_both_ways_ipv4(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.a.enter():
        a, ra = _rx(make, G)
    with veth_pair.b.enter():
        b, rb = _rx(make, G, port=a.local_port)
    for m in (a, b):
        m.remote_host, m.remote_port = G, a.local_port
    a.send(b"hello b")
    b.send(b"hello a")
    pump([a, b], lambda: b"hello a" in ra.payloads and b"hello b" in rb.payloads)
    assert any(e.source_address == veth_pair.addr_b for e in ra.data)
    assert any(e.source_address == veth_pair.addr_a for e in rb.data)


def test_two_namespaces_talk_both_ways_ipv6(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.a.enter():
        a, ra = _rx(make, G6, UseIPv6=True)
        assert a.local_host == f"{veth_pair.ll_a}%eth0"  # eth0's address, never "::"
    with veth_pair.b.enter():
        b, rb = _rx(make, G6, port=a.local_port, UseIPv6=True)
    for m in (a, b):
        m.remote_host, m.remote_port = G6, a.local_port
    a.send(b"hello b")
    b.send(b"hello a")
    pump([a, b], lambda: b"hello a" in ra.payloads and b"hello b" in rb.payloads)
    src = next(e.source_address for e in ra.data if e.datagram == b"hello a")
    assert src.split("%")[0] == veth_pair.ll_b


def test_ipv6_capture_gives_the_group(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.b.enter():
        rx, rec = _rx(make, G6, UseIPv6=True, CaptureIPPacketInfo=True)
        rec.attach(rx, capture_dest=True)
    with veth_pair.a.enter():
        tx = _tx(make, G6, rx.local_port, UseIPv6=True)
    tx.send(b"v6")
    pump([rx], lambda: bool(rec.data))
    assert rec.dest == [G6]


def test_ipv4_group_with_use_ipv6_is_refused(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.a.enter():
        mc = make(interface="eth0", UseIPv6=True)
        mc.multicast_group = G
        with pytest.raises(MCastError) as ei:
            mc.active = True
    assert ei.value.code == 121 and "UseIPv6" in ei.value.message
    assert not mc.active


def test_dont_fragment_gives_10040_above_the_mtu(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.b.enter():
        rx, rec = _rx(make, G, MaxPacketSize=65535)
    with veth_pair.a.enter():
        df = _tx(make, G, rx.local_port, DontFragment=True)
        frag = _tx(make, G, rx.local_port)
    with pytest.raises(MCastError) as ei:
        df.send(bytes(3000))  # veth MTU is 1500
    assert ei.value.code == 10040 and ei.value.message.startswith("[10040]")
    df.send(bytes(1000))  # under the MTU: fine
    frag.send(bytes(3000))  # without DF the kernel fragments
    pump([rx], lambda: len(rec.data) == 2)
    assert sorted(len(p) for p in rec.payloads) == [1000, 3000]


def test_source_ip_address_across_the_link(veth_pair: VethPair, make: Make) -> None:
    veth_pair.a.addr_add("eth0", f"{lab_host(9, 11)}/24")
    with veth_pair.b.enter():
        rx, rec = _rx(make, G)
    with veth_pair.a.enter():
        tx = _tx(make, G, rx.local_port, SourceIPAddress=lab_host(9, 11))
    tx.send(b"from .11")
    tx.config("SourceIPAddress=")
    tx.send(b"from .1")
    pump([rx], lambda: len(rec.data) == 2)
    assert {(e.datagram, e.source_address) for e in rec.data} == {
        (b"from .11", lab_host(9, 11)), (b"from .1", veth_pair.addr_a)}


def test_receive_interface_by_address(veth_pair: VethPair, make: Make) -> None:
    with veth_pair.b.enter():
        rec = Recorder()
        rx = rec.attach(make(interface=veth_pair.addr_b))
        rx.multicast_group = G
        rx.active = True
        assert rx.memberships == (f"{G} on eth0",)
    with veth_pair.a.enter():
        tx = _tx(make, G, rx.local_port)
    tx.send(b"x")
    pump([rx], lambda: bool(rec.data))


def test_leaving_a_group_joined_on_two_interfaces_leaves_both(
        veth_pair: VethPair, make: Make) -> None:
    """receive_interface changed while active, then the same group assigned again: the
    instance holds it on both interfaces. "-GROUP" and "" must leave it everywhere (they
    used to fail with the core's "pass interface=", which MCast has no way to give)."""
    from tests.support.kernelstate import igmp_groups

    with veth_pair.a.enter():
        mc = make(interface="lo")
        mc.multicast_group = asm4(11, 7)
        mc.active = True
        mc.receive_interface = "eth0"
        mc.multicast_group = asm4(11, 7)
        assert set(mc.memberships) == {f"{asm4(11, 7)} on lo", f"{asm4(11, 7)} on eth0"}
        assert {("lo", asm4(11, 7)), ("eth0", asm4(11, 7))} <= igmp_groups()
        mc.multicast_group = f"-{asm4(11, 7)}"
        assert mc.memberships == ()
        assert mc.groups == ()
        assert not {g for g in igmp_groups() if g[1] == asm4(11, 7)}
        # the same through "" (leave every group)
        mc.multicast_group = asm4(11, 7)
        mc.receive_interface = "lo"
        mc.multicast_group = asm4(11, 7)
        mc.multicast_group = ""
        assert mc.memberships == () and mc.groups == ()
        assert not {g for g in igmp_groups() if g[1] == asm4(11, 7)}


@pytest.mark.parametrize("capture", [False, True])
def test_ipv6_g1_leak_without_capture_ip_packet_info(veth_loop: VethLoop, make: Make,
                                                     capture: bool) -> None:
    """docs/compat.md, CaptureIPPacketInfo: an instance joined on va also gets the group
    arriving on vb when another socket joined it there, unless capture is on (then the
    datagram is filtered and counted). A sentinel arriving on va proves the absence."""
    g = asm6("11:2")
    with veth_loop.ns.enter():
        rec = Recorder()
        rx = rec.attach(make(interface="va", UseIPv6=True, ShareLocalPort=True,
                             CaptureIPPacketInfo=capture))
        rx.multicast_group = g
        rx.active = True
        port = rx.local_port
        other = MulticastSocket(6, reuse_address=True, reuse_port=True)
        wire_vb = MulticastSocket(6, interface="va", loopback=False)  # leaves va, arrives on vb
        wire_va = MulticastSocket(6, interface="vb", loopback=False)  # leaves vb, arrives on va
    with other, wire_vb, wire_va:
        other.bind(port)
        other.join(g, "vb")
        wire_vb.sendto(b"arrives on vb", g, port)
        wire_va.sendto(b"sentinel on va", g, port)
        pump([rx], lambda: b"sentinel on va" in rec.payloads)
    if capture:
        assert rec.payloads == [b"sentinel on va"]
        assert rx.stats.filtered == 1
    else:
        assert rec.payloads == [b"arrives on vb", b"sentinel on va"]  # the documented leak
        assert rx.stats.filtered == 0
