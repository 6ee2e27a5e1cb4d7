"""Field notes §2 group C (send path) and option round-trips (technique #12), real kernel.

Owns: C1-C7, TTL/hop limit 0..255 with rejected edges, loopback toggles and their
delivery effect, DSCP, don't-fragment, buffer sizes as the kernel applied them.
Must not: prove non-delivery with a sleep; leave the test namespace.
"""

from __future__ import annotations

import errno
import socket

import pytest

from mcastkit import (
    DatagramTooLargeError,
    ErrorCode,
    McastOSError,
    McastValueError,
    MulticastSocket,
    SendError,
    open_sender,
)
from tests.support.kernel import WAIT_S, Env, drain, env, group4, group6
from tests.support.netns import Netns
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel
__all__ = ["env"]


# --------------------------------------------------------------------------- C1


@pytest.mark.parametrize("version", [4, 6])
def test_c1_send_without_route_or_interface_names_the_fix(netns: Netns, version: int) -> None:
    g = group4() if version == 4 else group6()
    with MulticastSocket(version) as tx:
        with pytest.raises(SendError) as ei:
            tx.sendto(b"x", g, 9)
        e = ei.value
        assert e.errno == errno.ENETUNREACH and e.code is ErrorCode.SEND_FAILED
        assert not e.transient
        assert "interface" in str(e)
        assert tx.stats.send_errors == 1


@pytest.mark.parametrize("version", [4, 6])
def test_c1_connect_without_route_names_the_fix(netns: Netns, version: int) -> None:
    g = group4() if version == 4 else group6()
    with MulticastSocket(version) as tx:
        with pytest.raises(McastOSError) as ei:
            tx.connect(g, 9)
        assert ei.value.errno == errno.ENETUNREACH
        assert "interface=" in str(ei.value)


def test_c1_no_route_through_a_chosen_interface_says_so(netns: Netns) -> None:
    """IPv6 on lo: the interface is set, yet there is no route; the message must not tell
    the user to set the interface again (field notes E3)."""
    with MulticastSocket(6, interface="lo") as tx:
        with pytest.raises(McastOSError) as ei:
            tx.connect(group6(), 9)
        assert "out of lo" in str(ei.value) and "veth" in str(ei.value)
        with pytest.raises(SendError) as es:
            tx.sendto(b"x", group6(), 9)
        assert "out of lo" in str(es.value)


def test_c1_explicit_interface_then_send_and_connect_work(netns: Netns) -> None:
    g = group4()
    with MulticastSocket(4, interface="lo", metadata=True) as rx, MulticastSocket(4) as tx:
        port = rx.bind(0)[1]
        rx.join(g)
        with pytest.raises(SendError):
            tx.sendto(b"no route", g, port)
        tx.set_interface("lo")
        tx.sendto(b"via lo", g, port)
        assert rx.recv(WAIT_S).data == b"via lo"
        with open_sender(f"{g}:{port}", interface="lo") as conn:
            conn.send(b"connected")
        d = rx.recv(WAIT_S)
        assert (d.data, d.interface) == (b"connected", socket.if_nametoindex("lo"))


# --------------------------------------------------------------------------- C2


def test_c2_ipv4_size_limit(netns: Netns) -> None:
    g = group4()
    with MulticastSocket(4, interface="lo") as rx, MulticastSocket(4, interface="lo") as tx:
        port = rx.bind(0)[1]
        rx.join(g)
        with pytest.raises(DatagramTooLargeError) as ei:
            tx.sendto(bytes(65508), g, port)
        assert ei.value.code is ErrorCode.DATAGRAM_TOO_LARGE and ei.value.errno == errno.EMSGSIZE
        assert isinstance(ei.value, SendError)
        assert tx.sendto(bytes(65507), g, port) == 65507
        d = rx.recv(WAIT_S)
        assert len(d.data) == 65507 and not d.truncated


@pytest.mark.parametrize(("version", "fits"), [(4, 1472), (6, 1452)])
def test_c2_dont_fragment_on_a_1500_mtu_veth(veth_pair: VethPair, version: int,
                                             fits: int) -> None:
    g = group4() if version == 4 else group6()
    with veth_pair.b.enter():
        rx = MulticastSocket(version, interface="eth0")
        port = rx.bind(0)[1]
        rx.join(g)
    with rx, veth_pair.a.enter(), \
            MulticastSocket(version, interface="eth0", dont_fragment=True) as tx:
        assert tx.dont_fragment
        for size in (fits + 1, 2000):
            with pytest.raises(DatagramTooLargeError) as ei:
                tx.sendto(bytes(size), g, port)
            assert ei.value.code is ErrorCode.DATAGRAM_TOO_LARGE
        tx.sendto(b"f" * fits, g, port)
        with veth_pair.b.enter():
            assert rx.recv(WAIT_S).data == b"f" * fits
        tx.set_dont_fragment(False)  # fragmented and reassembled
        assert not tx.dont_fragment
        tx.sendto(b"g" * 2000, g, port)
        with veth_pair.b.enter():
            assert rx.recv(WAIT_S).data == b"g" * 2000


# --------------------------------------------------------------------------- C3


@pytest.mark.parametrize("version", [4, 6])
def test_c3_transient_enobufs_is_retried_counted_and_typed(veth_pair: VethPair,
                                                           version: int) -> None:
    """A tiny send buffer and a datagram cut into ~45 fragments: the kernel refuses
    with ENOBUFS. The library retries a bounded number of times, counts, then raises a
    *transient* SendError; the socket stays usable."""
    g = group4() if version == 4 else group6()
    with veth_pair.a.enter(), MulticastSocket(version, interface="eth0") as tx:
        tx.set_buffer_sizes(sndbuf_bytes=1)
        with pytest.raises(SendError) as ei:
            tx.sendto(bytes(65000), g, 9)
        e = ei.value
        assert e.errno == errno.ENOBUFS and e.transient
        assert e.code is ErrorCode.SEND_FAILED
        assert tx.stats.send_retries == 3 and tx.stats.send_errors == 1
        assert tx.sendto(b"small", g, 9) == 5


# --------------------------------------------------------------------------- C4 / #12 TTL


def test_c4_ttl_every_value_reads_back(env: Env) -> None:
    with env.tx() as tx:
        assert tx.ttl == 1  # the default keeps traffic on the link (G3)
        for ttl in range(256):
            tx.set_ttl(ttl)
            assert tx.ttl == ttl


@pytest.mark.parametrize("bad", [256, -1, -2, 1000, True, 1.5, "1"])
def test_c4_ttl_out_of_range_rejected_before_syscall(env: Env, bad: object) -> None:
    with env.tx(ttl=7) as tx:
        with pytest.raises(McastValueError) as ei:
            tx.set_ttl(bad)  # type: ignore[arg-type]
        assert ei.value.code is ErrorCode.BAD_VALUE and "0-255" in str(ei.value)
        assert tx.ttl == 7  # unchanged: -1 would have meant "default" to Linux
    with pytest.raises(McastValueError):
        MulticastSocket(env.version, ttl=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, 1, 2, 64, 255])
def test_c4_ttl_arrives_in_metadata(env: Env, ttl: int) -> None:
    """Local delivery is not routed, so the receiver sees the sender's value (0 too:
    TTL 0 keeps the datagram on this host)."""
    g = env.group()
    with env.rx() as rx, env.tx(ttl=ttl) as tx:
        rx.join(g)
        tx.sendto(b"t", g, rx.local_address[1])
        assert rx.recv(WAIT_S).ttl == ttl


# --------------------------------------------------------------------------- C5 loopback


def test_c5_loopback_toggles_read_back(env: Env) -> None:
    with env.tx() as tx:
        assert tx.loopback is True
        for on in (False, True, False, True):
            tx.set_loopback(on)
            assert tx.loopback is on
    with env.tx(loopback=False) as tx2:
        assert tx2.loopback is False


@pytest.mark.parametrize("version", [4, 6])
def test_c5_sender_loop_off_silences_every_local_socket(veth_pair: VethPair,
                                                        version: int) -> None:
    """Linux: IP_MULTICAST_LOOP is a *sender* setting; off, no socket on the sending
    host gets a copy (two local receivers), while the other host still does."""
    g = group4() if version == 4 else group6()
    with veth_pair.b.enter():
        remote = MulticastSocket(version, interface="eth0")
        port = remote.bind(0)[1]
        remote.join(g)
    with veth_pair.a.enter():
        local1 = MulticastSocket(version, interface="eth0", reuse_address=True)
        local1.bind(port)
        local1.join(g)
        local2 = MulticastSocket(version, interface="eth0", reuse_address=True)
        local2.bind(port)
        local2.join(g)
        tx = MulticastSocket(version, interface="eth0", loopback=False)
    with remote, local1, local2, tx:
        tx.sendto(b"quiet", g, port)
        with veth_pair.b.enter():
            assert remote.recv(WAIT_S).data == b"quiet"
        tx.set_loopback(True)
        tx.sendto(b"sentinel", g, port)
        with veth_pair.a.enter():
            assert local1.recv(WAIT_S).data == b"sentinel"
            assert [d.data for d in drain(local2)] == [b"sentinel"]
            assert drain(local1) == []


def test_c5_on_lo_the_wire_itself_is_local(netns: Netns) -> None:
    """Observed: sending *out of lo* delivers exactly one copy whatever the loop
    setting, because the transmission on lo is received by the same host."""
    g = group4()
    with MulticastSocket(4, interface="lo") as rx, \
            MulticastSocket(4, interface="lo", loopback=False) as tx:
        port = rx.bind(0)[1]
        rx.join(g)
        tx.sendto(b"a", g, port)
        tx.set_loopback(True)
        tx.sendto(b"b", g, port)
        got = [rx.recv(WAIT_S).data, rx.recv(WAIT_S).data]
        assert got == [b"a", b"b"] and drain(rx) == []


# --------------------------------------------------------------------------- DSCP, DF, buffers


def test_dscp_every_value_reads_back(env: Env) -> None:
    with env.tx() as tx:
        for v in range(64):
            tx.set_dscp(v)
            assert tx.dscp == v
        for bad in (64, -1):
            with pytest.raises(McastValueError):
                tx.set_dscp(bad)
        assert tx.dscp == 63


def test_dscp_arrives_in_the_tos_byte(netns: Netns) -> None:
    g = group4()
    with MulticastSocket(4, interface="lo", metadata=True) as rx, \
            MulticastSocket(4, interface="lo", dscp=46) as tx:
        port = rx.bind(0)[1]
        rx.join(g)
        rx.sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        tx.sendto(b"ef", g, port)
        assert rx.recv(WAIT_S).tos == 46 << 2


def test_dont_fragment_toggles(env: Env) -> None:
    with env.tx() as tx:
        assert tx.dont_fragment is False
        for on in (True, False, True):
            tx.set_dont_fragment(on)
            assert tx.dont_fragment is on


@pytest.mark.parametrize("req", [1, 4096, 65536, 10**7])
def test_buffer_sizes_report_what_the_kernel_applied(env: Env, req: int) -> None:
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    with open("/proc/sys/net/core/wmem_max") as f:
        wmem_max = int(f.read())
    with env.tx() as s:
        rcv, snd = s.set_buffer_sizes(rcvbuf_bytes=req, sndbuf_bytes=req)
        assert rcv == s.rcvbuf_bytes == s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert snd == s.sndbuf_bytes
        assert rcv == max(2 * min(req, rmem_max), 2304)  # SOCK_MIN_RCVBUF
        assert snd == max(2 * min(req, wmem_max), 4608)  # SOCK_MIN_SNDBUF
        with pytest.raises(McastValueError):
            s.set_buffer_sizes(rcvbuf_bytes=0)


# --------------------------------------------------------------------------- C6 / C7


def test_c6_connected_to_a_group_never_gets_icmp(netns: Netns) -> None:
    g = group4()
    with open_sender(f"{g}:9", interface="lo") as tx, MulticastSocket(4) as probe:
        tx.send(b"nobody listens")
        # sentinel: a unicast socket's ICMP error proves the stack has processed errors
        probe.connect("127.0.0.1", 9)
        probe.send(b"closed port")
        with pytest.raises(McastOSError) as ei:
            probe.recv(WAIT_S)
        assert ei.value.errno == errno.ECONNREFUSED
        assert tx.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        tx.setblocking(False)
        with pytest.raises(BlockingIOError):
            tx.recv()


def test_c7_connected_unicast_error_is_typed_and_clears(netns: Netns) -> None:
    with MulticastSocket(4) as c, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        peer.close()  # the port is now closed
        c.bind(0, "127.0.0.1")
        c.connect("127.0.0.1", port)
        c.send(b"to a closed port")
        with pytest.raises(McastOSError) as ei:
            c.recv(WAIT_S)
        assert ei.value.errno == errno.ECONNREFUSED and "refused" in str(ei.value)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:
            back.bind(("127.0.0.1", port))
            back.sendto(b"reply", c.local_address)
            assert c.recv(WAIT_S).data == b"reply"  # the error cleared; receiving goes on


def test_c7_unconnected_socket_sees_no_error(netns: Netns) -> None:
    with MulticastSocket(4) as c, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        c.bind(0, "127.0.0.1")
        peer.bind(("127.0.0.1", 0))
        closed = peer.getsockname()[1] + 1 if peer.getsockname()[1] < 65535 else 1024
        c.sendto(b"to a closed port", "127.0.0.1", closed)
        peer.sendto(b"sentinel", c.local_address)
        assert c.recv(WAIT_S).data == b"sentinel"
