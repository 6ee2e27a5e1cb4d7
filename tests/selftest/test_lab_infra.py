"""Tests of the test infrastructure itself, with standard-library sockets only."""

from __future__ import annotations

import ipaddress
import os
import select
import shutil
import socket
import struct
import sys
import threading
import time

import pytest
from tests.support import kernelstate as ks
from tests.support.addrs import G4, asm4, asm6, lab_host, ssm4
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns, current_netns_id, our_namespaces, wait_until
from tests.support.sniff import Sniffer
from tests.support.topology import H1, H2, H4, Lab, VethLoop, VethPair, new_group, new_port

from mcastkit._platform._linux import (
    IP_MULTICAST_ALL,
    IP_RECVTTL,
    IPV6_MULTICAST_ALL,
    MCAST_JOIN_SOURCE_GROUP,
)
from mcastkit._platform._structs import pack_group_source_req

pytest_plugins = ["tests.support.fixtures"]  # no-op when tests/conftest.py already loads it

SENTINEL = b"sentinel"

# --- helpers ---------------------------------------------------------------------------


def receiver(ns: Netns, group: str, port: int, ifname: str = "eth0") -> socket.socket:
    """A socket in ``ns`` joined to ``group`` on ``ifname`` that reports the TTL."""
    v6 = ":" in group
    with ns.enter():
        idx = socket.if_nametoindex(ifname)
        if v6:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            s.bind(("::", port))
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", idx)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            s.bind(("0.0.0.0", port))
            mreqn = socket.inet_aton(group) + bytes(4) + struct.pack("@i", idx)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    return s


def recv_until(s: socket.socket, stop: bytes, timeout: float = 10.0) -> list[tuple[bytes, int]]:
    """(payload, ttl) of everything received up to and including ``stop``."""
    got: list[tuple[bytes, int]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1][0] != stop:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            raise TimeoutError(f"{stop!r} not received; got {got}")
        data, anc, _, _ = s.recvmsg(2048, 256)
        ttl = -1
        for lvl, typ, val in anc:
            if (lvl, typ) in ((socket.IPPROTO_IP, socket.IP_TTL),
                              (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):
                ttl = struct.unpack("@i", val[:4])[0]
        got.append((data, ttl))
    return got


def send_from(ns: Netns, group: str, port: int, payload: bytes, ttl: int,
              ifname: str = "eth0") -> None:
    with ns.enter():
        idx = socket.if_nametoindex(ifname)
        if ":" in group:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
                s.sendto(payload, (group, port))
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                mreqn = bytes(8) + struct.pack("@i", idx)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                s.sendto(payload, (group, port))


def warm_up(lab: Lab, group: str, port: int, socks: list[socket.socket], ttl: int) -> None:
    """Positive control: resend b"warm" until every receiver has one (snooping learned)."""
    lab.prime(group, ttl=ttl)
    pending = list(socks)
    deadline = time.monotonic() + 10
    while pending:
        assert time.monotonic() < deadline, "warm-up datagram never arrived"
        send_from(lab.host("h1"), group, port, b"warm", ttl)
        time.sleep(0.05)
        for s in list(pending):
            while select.select([s], [], [], 0)[0]:
                s.recv(2048)
                if s in pending:
                    pending.remove(s)
    # Flush late warm-ups: a sentinel marks the end of the warm-up phase.
    send_from(lab.host("h1"), group, port, b"warm-end", ttl)
    for s in socks:
        recv_until(s, b"warm-end")


# --- parsers on sample text ------------------------------------------------------------

IGMP_SAMPLE = """Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     3      V3
\t\t\t\t030201E8     1 0:00000000\t\t0
\t\t\t\t0100FFEF     1 0:00000000\t\t0
\t\t\t\t010000E0     1 0:00000000\t\t0
2\teth0      :     1      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
"""
IGMP6_SAMPLE = """1    lo              ff020000000000000000000000000001     1 0000000C 0
2    eth0            ff150000000000000000000000001001     1 00000004 0
"""
MCFILTER_SAMPLE = """Idx Device        MCA        SRC    INC    EXC
  1     lo 0xe8010203 0xc612010a      1      0
"""
MCFILTER6_SAMPLE = (
    "Idx Device                Multicast Address                   Source Address    INC    EXC\n"
    "  2   eth0 ff150000000000000000000000000003 fe800000000000000000000000000001     1     0\n"
)
SNMP_SAMPLE = """Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 10 2 497 5 497 0
"""
MRCACHE_SAMPLE = """Group    Origin   Iif     Pkts    Bytes    Wrong Oifs
0101FFEF 0A0112C6 0          1       33        0  1:4
"""
MR6CACHE_SAMPLE = (
    "Group                            Origin                           Iif      Pkts  Bytes\n"
    f"{ipaddress.IPv6Address(asm6('5')).exploded} fe80:0000:0000:0000:3c1d:dfff:fe5a:6777"
    " 0 1 53 0  1:1\n"
)


def test_parsers_on_sample_text() -> None:
    little = sys.byteorder == "little"
    groups = ks.parse_igmp(IGMP_SAMPLE)
    if little:
        assert groups == {("lo", ssm4(1, 2, 3)), ("lo", G4), ("lo", "224.0.0.1"),
                          ("eth0", "224.0.0.1")}
    assert ks.parse_igmp6(IGMP6_SAMPLE) == {("lo", "ff02::1"), ("eth0", asm6("1001"))}
    assert ks.parse_mcfilter(MCFILTER_SAMPLE) == {("lo", ssm4(1, 2, 3), lab_host(1, 10), 1, 0)}
    assert ks.parse_mcfilter6(MCFILTER6_SAMPLE) == {("eth0", asm6("3"), "fe80::1", 1, 0)}
    assert ks.parse_snmp(SNMP_SAMPLE)["Udp"]["RcvbufErrors"] == 497
    assert ks.parse_snmp6("Udp6InDatagrams 7\nUdpLite6InDatagrams 1\n") == {"InDatagrams": 7}
    if little:
        assert ks.parse_ip_mr_cache(MRCACHE_SAMPLE) == {(lab_host(1, 10), asm4(1, 1)): {1: 4}}
    assert ks.parse_ip_mr_cache(MR6CACHE_SAMPLE, v6=True) == {
        ("fe80::3c1d:dfff:fe5a:6777", asm6("5")): {1: 1}}
    udp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
           "  timeout inode ref pointer drops\n"
           " 1: 0100007F:1DB0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
           "        0 62459 2 0000000000000000 199\n")
    assert ks.parse_udp_drops(udp, 62459) == 199
    assert ks.parse_udp_drops(udp, 1) is None


# --- namespaces ------------------------------------------------------------------------


def test_fresh_netns_has_only_lo(netns: Netns) -> None:
    assert [n for _, n in socket.if_nameindex()] == ["lo"]
    assert netns.links() == ["lo"]
    assert netns.read_sysctl("net.ipv6.conf.default.accept_dad") == "0"
    assert {d for d, _ in ks.igmp_groups()} <= {"lo"}


def test_sockets_made_inside_enter_live_there(netns: Netns) -> None:
    other = Netns.fresh()
    try:
        port = new_port()
        with other.enter():
            inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            inner.bind(("127.0.0.1", port))
            with open("/proc/thread-self/net/udp") as f:
                assert ks.parse_udp_drops(f.read(), os.fstat(inner.fileno()).st_ino) == 0
        # Back in the fixture's namespace: the port is free here, the socket not listed.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as outer:
            outer.bind(("127.0.0.1", port))
        with pytest.raises(LookupError):
            ks.socket_drops(inner)
        with other.enter():
            assert ks.socket_drops(inner) == 0
        inner.close()
    finally:
        other.delete()


def test_proc_thread_self_follows_thread(netns: Netns) -> None:
    """/proc/thread-self/net follows the calling thread, /proc/net the main thread."""
    other = Netns.fresh()
    seen: dict[str, bool] = {}

    def worker() -> None:
        with other.enter(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ino = os.fstat(s.fileno()).st_ino
            for path in ("/proc/thread-self/net/udp", "/proc/self/net/udp", "/proc/net/udp"):
                with open(path) as f:
                    seen[path] = ks.parse_udp_drops(f.read(), ino) is not None

    try:
        assert threading.current_thread() is threading.main_thread()
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    finally:
        other.delete()
    assert seen == {"/proc/thread-self/net/udp": True, "/proc/self/net/udp": False,
                    "/proc/net/udp": False}


def test_enter_restores_namespace(netns: Netns) -> None:
    before = current_netns_id()
    other = Netns.fresh()
    try:
        with other.enter():
            assert current_netns_id() != before
        with pytest.raises(RuntimeError), other.enter():
            raise RuntimeError
        assert current_netns_id() == before
    finally:
        other.delete()


def test_veth_pair_udp_unicast(veth_pair: VethPair) -> None:
    port = new_port()
    with veth_pair.b.enter():
        r4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r4.bind((veth_pair.addr_b, port))
        r6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        r6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        r6.bind(("::", port))
    with veth_pair.a.enter():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"v4", (veth_pair.addr_b, port))
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.sendto(b"v6", (veth_pair.ll_b, port, 0, veth_pair.ifindex_a))
    for r, want, src in ((r4, b"v4", veth_pair.addr_a), (r6, b"v6", veth_pair.ll_a)):
        assert select.select([r], [], [], 10)[0]
        data, addr = r.recvfrom(100)
        assert (data, addr[0].split("%")[0]) == (want, src)
        r.close()


def test_veth_loop_ipv6_multicast(veth_loop: VethLoop) -> None:
    group, port = new_group(v6=True), new_port()
    r = receiver(veth_loop.ns, group, port, "vb")
    assert ("vb", group) in ks.igmp6_groups()
    send_from(veth_loop.ns, group, port, b"hello", 1, "va")
    send_from(veth_loop.ns, group, port, SENTINEL, 1, "va")
    assert recv_until(r, SENTINEL) == [(b"hello", 1), (SENTINEL, 1)]
    r.close()
    assert ("vb", group) not in ks.igmp6_groups()


def test_igmp_join_seen_and_gone_after_close(netns: Netns) -> None:
    group, ssm_group = new_group(), new_group(ssm=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + bytes(4) + struct.pack("@i", 1))
    # MCAST_JOIN_SOURCE_GROUP on lo (index 1): struct group_source_req
    s.setsockopt(socket.IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP,
                 pack_group_source_req(1, ipaddress.IPv4Address(ssm_group),
                                       ipaddress.IPv4Address(H1)))
    assert {("lo", group), ("lo", ssm_group)} <= ks.igmp_groups()
    assert ("lo", ssm_group, H1, 1, 0) in ks.source_filters()
    s.close()
    assert not {g for _, g in ks.igmp_groups()} & {group, ssm_group}
    assert not ks.source_filters()


def test_counters_and_socket_drops(netns: Netns) -> None:
    port, sent = new_port(), 200
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    r.bind(("127.0.0.1", port))
    before = ks.udp_counters()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as w:
        for _ in range(sent):
            w.sendto(b"x" * 500, ("127.0.0.1", port))

    delivered = 0

    def all_accounted() -> bool:  # InDatagrams counts on read, so read as we go
        nonlocal delivered
        while select.select([r], [], [], 0)[0]:
            r.recv(2048)
            delivered += 1
        return delivered + ks.socket_drops(r) == sent

    wait_until(all_accounted, what="every datagram delivered or counted as dropped")
    now = ks.udp_counters()
    assert now["InDatagrams"] - before["InDatagrams"] == delivered
    assert now["RcvbufErrors"] - before["RcvbufErrors"] == ks.socket_drops(r) > 0
    assert ks.rp_filter_drops() == 0
    assert set(ks.udp_counters(socket.AF_INET6)) >= {"InDatagrams", "RcvbufErrors"}
    r.close()


# --- the lab ---------------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_lab_ttl_scoping(lab: Lab, v6: bool) -> None:
    group, port = new_group(v6=v6), new_port()
    names = ("h3", "h2", "h4")  # LAN A, B, C
    socks = [receiver(lab.host(n), group, port) for n in names]
    warm_up(lab, group, port, socks, ttl=3)
    for ttl in (1, 2, 3):
        send_from(lab.host("h1"), group, port, b"ttl%d" % ttl, ttl)
        send_from(lab.host("h1"), group, port, SENTINEL, 3)
        for hops, (name, s) in enumerate(zip(names, socks, strict=True)):
            got = recv_until(s, SENTINEL)
            want = [(b"ttl%d" % ttl, ttl - hops)] if ttl > hops else []
            assert got == [*want, (SENTINEL, 3 - hops)], (name, ttl)
    for s in socks:
        s.close()


@pytest.mark.lab
def test_lab_sniffer_counts_by_source(lab: Lab) -> None:
    group, port = new_group(), new_port()
    rx = receiver(lab.host("h4"), group, port)
    with lab.host("h4").enter():
        sn = Sniffer("eth0")
    warm_up(lab, group, port, [rx], ttl=3)
    lab.prime(group, src="h2", ttl=2)
    sn.poll()
    sn.frames.clear()
    for _ in range(5):
        send_from(lab.host("h1"), group, port, b"data", 3)
    send_from(lab.host("h2"), group, port, b"data", 2)
    send_from(lab.host("h1"), group, port, SENTINEL, 3)
    sn.wait_for(lambda f: f.payload == SENTINEL)
    assert sn.by_source(group, port) == {H1: 6, H2: 1}
    assert {f.ttl for f in sn.frames if f.dst == group} == {1}
    assert {f.dst for f in sn.frames if f.src == H4} == set()  # incoming only
    sn.close()
    rx.close()


ROUTERS = ["python", "smcroute"]


@pytest.mark.lab
@pytest.mark.parametrize("router", ROUTERS)
def test_lab_ttl_threshold_and_teardown(router: str) -> None:
    if router == "smcroute" and shutil.which("smcrouted") is None:
        require_or_skip("smcrouted is not installed")
    from tests.support.fixtures import ensure_netns

    ensure_netns()
    lab = Lab(router=router, r2_c_ttl_threshold=4)
    lab.up()
    try:
        group, port = new_group(), new_port()
        rx = receiver(lab.host("h4"), group, port)
        warm_up(lab, group, port, [rx], ttl=8)
        # TTL 5 arrives at r2 with 4, which does not exceed the threshold 4.
        send_from(lab.host("h1"), group, port, b"ttl5", 5)
        send_from(lab.host("h1"), group, port, SENTINEL, 6)
        assert recv_until(rx, SENTINEL) == [(SENTINEL, 4)]
        assert lab.routes("r2")[(H1, group)] == {1: 4}
        rx.close()
        pids = [p.pid for p in lab.procs.values()]
    finally:
        lab.down()
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert not [n for n in our_namespaces() if lab.tag in n]


@pytest.mark.kernel
def test_teardown_leaves_no_namespaces() -> None:
    from tests.support.fixtures import ensure_netns

    ensure_netns()
    mine = set(our_namespaces())
    pair, loop, ns = VethPair(), VethLoop(), Netns.fresh()
    assert len(set(our_namespaces()) - mine) == 4
    pair.close()
    loop.close()
    ns.delete()
    assert set(our_namespaces()) == mine


def test_require_or_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCAST_REQUIRE_NETNS", "1")
    with pytest.raises(pytest.fail.Exception):
        require_or_skip("demo")
    monkeypatch.delenv("MCAST_REQUIRE_NETNS")
    with pytest.raises(pytest.skip.Exception):
        require_or_skip("demo")
