"""Small helpers shared by the kernel-tier tests (tests/core) and the lab tests.

Owns: unique group names for this tier, receiving with one generous timeout, draining a
socket without waiting, and the "one delivery pass" rule used to prove non-delivery.
Must not: sleep to prove that something did not arrive, create namespaces (the fixtures
in tests/support/fixtures.py do), or touch any interface outside a test namespace.

Why draining without waiting proves non-delivery: Linux delivers one multicast datagram
to every matching socket of a namespace in a single pass (``__udp4_lib_mcast_deliver`` /
``__udp6_lib_mcast_deliver`` clone it to all of them before returning). So once one
socket holds datagram X, every other socket that was going to get X already has it
queued; a non-blocking drain of the others then shows exactly who got it.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from mcastkit import Datagram, MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import UNICAST4, asm4, asm6, lab_host, ssm4, ssm6
from tests.support.netns import wait_until
from tests.support.topology import VethPair

WAIT_S = 5.0  # the one generous timeout per wait
_n = itertools.count(1)


def group4() -> str:
    """A fresh IPv4 ASM group for this tier (239.255.100-199.x)."""
    n = next(_n)
    return asm4(100 + n // 250, n % 250 + 1)


def group_ssm4() -> str:
    """A fresh IPv4 SSM group (232.200.x.x)."""
    n = next(_n)
    return ssm4(200, n // 250, n % 250 + 1)


def group6() -> str:
    """A fresh IPv6 site-scope group (ff15::a:x)."""
    return asm6(f"a:{next(_n):x}")


def drain(sock: MulticastSocket) -> list[Datagram]:
    """Everything already queued on ``sock``, without waiting."""
    out: list[Datagram] = []
    sock.setblocking(False)
    try:
        while True:
            try:
                out.append(sock.recv())
            except BlockingIOError:
                break
    finally:
        sock.setblocking(True)
    return out


def drain_raw(sock: socket.socket) -> list[bytes]:
    """Everything already queued on a plain socket, without waiting."""
    out: list[bytes] = []
    sock.setblocking(False)
    try:
        while True:
            try:
                out.append(sock.recv(65535))
            except BlockingIOError:
                break
    finally:
        sock.setblocking(True)
    return out


def raw_join4(sock: socket.socket, group: str, ifindex: int) -> None:
    """A plain ``IP_ADD_MEMBERSHIP`` with ``ip_mreqn`` by index (for control sockets)."""
    mreqn = socket.inet_aton(group) + bytes(4) + struct.pack("=i", ifindex)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def raw_join6(sock: socket.socket, group: str, ifindex: int) -> None:
    """A plain ``IPV6_JOIN_GROUP`` (for control sockets)."""
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def raw_mcast_if4(sock: socket.socket, ifindex: int) -> None:
    """``IP_MULTICAST_IF`` by index on a plain socket."""
    mreqn = bytes(8) + ifindex.to_bytes(4, sys.byteorder)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)


def groups_on(dev: str, table: set[tuple[str, str]]) -> set[str]:
    """The groups of ``dev`` in a ``kernelstate.igmp_groups()``-style set."""
    return {g for d, g in table if d == dev}


# --------------------------------------------------------------------------- family env


class Env:
    """One place to send and receive multicast for a given IP version.

    IPv4: the test namespace's ``lo`` (multicast works there without the MULTICAST
    flag). IPv6: a veth pair ``va``<->``vb`` in one namespace, joined and sent on ``va``
    (``lo`` cannot carry IPv6 multicast, field notes E3); the copy that reaches the
    socket is the sender's loopback copy on ``va``.
    """

    def __init__(self, version: int, ifname: str) -> None:
        self.version = version
        self.ifname = ifname
        self.ifindex = socket.if_nametoindex(ifname)

    def group(self) -> str:
        return group4() if self.version == 4 else group6()

    def rx(self, **kw: object) -> MulticastSocket:
        """A receiver with ``interface=ifname`` (metadata on unless given), bound to port 0."""
        kw.setdefault("metadata", True)
        kw.setdefault("interface", self.ifname)
        s = MulticastSocket(self.version, **kw)  # type: ignore[arg-type]
        s.bind(0)
        return s

    def tx(self, **kw: object) -> MulticastSocket:
        kw.setdefault("interface", self.ifname)
        return MulticastSocket(self.version, **kw)  # type: ignore[arg-type]

    def igmp(self) -> set[str]:
        """Groups the kernel holds on ``ifname`` (``/proc/net/igmp`` or ``igmp6``)."""
        from tests.support import kernelstate

        table = kernelstate.igmp_groups() if self.version == 4 else kernelstate.igmp6_groups()
        return groups_on(self.ifname, table)


@pytest.fixture(params=[4, 6], ids=["v4", "v6"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """IPv4 on ``lo`` in a fresh namespace, or IPv6 on a veth loop (test thread inside)."""
    if request.param == 4:
        request.getfixturevalue("netns")
        yield Env(4, "lo")
    else:
        request.getfixturevalue("veth_loop")
        yield Env(6, "va")


def add_sources(env: Env) -> tuple[str, str]:
    """Two extra local unicast addresses to send from (IPv4 on ``lo``, IPv6 link-local
    on ``va``), so tests can tell sources apart. ``ip`` inherits the thread's namespace."""
    import subprocess

    if env.version == 4:
        pair = (UNICAST4, lab_host(5, 2))
        for a in pair:
            subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True)
    else:
        pair = ("fe80::5", "fe80::6")
        for a in pair:
            subprocess.run(["ip", "-6", "addr", "add", f"{a}/64", "dev", env.ifname, "nodad"],
                           check=True)
        # The kernel joins each new address's solicited-node group later, from its DAD
        # work (even with nodad). A group joined after the test's own joins goes to the
        # head of the device's list, and /proc/net/mcfilter6 starts each device at that
        # head only (igmp6_mcf_get_first): the test's source filters would read empty.
        want = {(env.ifname, _solicited_node(a)) for a in pair}
        wait_until(lambda: want <= kernelstate.igmp6_groups(), WAIT_S,
                   what=f"solicited-node groups of {pair} joined on {env.ifname}")
    return pair


def _solicited_node(addr: str) -> str:
    """ff02::1:ffXX:XXXX, the group an IPv6 address's neighbour solicitations go to."""
    low = int(ipaddress.IPv6Address(addr)) & 0xFFFFFF
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low))


def sender_from(env: Env, source: str) -> socket.socket:
    """A plain socket that sends multicast out of ``env.ifname`` from ``source``."""
    if env.version == 4:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((source, 0))
        raw_mcast_if4(s, env.ifindex)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((source, 0, 0, env.ifindex))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, env.ifindex)
    return s


def ssm_group(env: Env) -> str:
    """A fresh source-specific group: 232.200.x.x or ff35::a:x."""
    return group_ssm4() if env.version == 4 else ssm6(f"a:{next(_n):x}")



def across_veth(pair: VethPair, group: str) -> tuple[MulticastSocket, MulticastSocket, int]:
    """A sender in namespace a (out of its ``eth0``, loopback off) and a receiver in b
    joined to ``group`` on b's ``eth0``: (tx, rx, rx's port). The caller closes both."""
    with pair.a.enter():
        tx = MulticastSocket(4, interface="eth0", loopback=False)
    with pair.b.enter():  # interfaces are looked up in the caller's namespace
        rx = MulticastSocket(4, rcvbuf_bytes=1 << 20)
        port = rx.bind(0)[1]
        rx.join(group, "eth0")
    return tx, rx, port
