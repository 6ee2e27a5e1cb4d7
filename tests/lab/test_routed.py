"""Lab tier: TTL / hop-limit scoping and SSM across the lab's multicast routers.

Owns: TTL 1/2/3 reaching 1/2/3 LANs for IPv4 239.255/16 and IPv6 ff15::/16 with the
arrival TTL checked in metadata (technique #8), and SSM (S,G) across r1 delivering only
S=h1 while an ASM control socket on the same host receives both h1 and h3.
Must not: change the shared lab's topology; count routed datagrams before
``lab.prime`` resolved the (S,G) (field notes D4); prove non-delivery with a sleep (a
TTL-3 sentinel from the same socket follows every burst along the same path).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from mcastkit import Datagram, MulticastSocket, ReceiveTimeoutError
from tests.support.kernel import WAIT_S, drain
from tests.support.topology import HOST_IF, Lab, new_group

pytestmark = pytest.mark.lab

RECEIVERS = {"h3": 0, "h2": 1, "h4": 2}  # host -> routers between h1 and it
BURST = 5


@contextlib.contextmanager
def _receivers(lab: Lab, version: int, group: str, port: int,
               hosts: dict[str, int]) -> Iterator[dict[str, MulticastSocket]]:
    socks: dict[str, MulticastSocket] = {}
    try:
        for h in hosts:
            with lab.host(h).enter():
                s = MulticastSocket(version, interface=HOST_IF, metadata=True)
                socks[h] = s
                s.bind(port)
                s.join(group)
        lab.wait_members(group, *hosts)
        yield socks
    finally:
        for s in socks.values():
            s.close()


def _collect_until_sentinel(lab: Lab, host: str, s: MulticastSocket) -> list[Datagram]:
    out: list[Datagram] = []
    with lab.host(host).enter():
        while not out or out[-1].data != b"sentinel":
            out.append(s.recv(WAIT_S))
        out += drain(s)
    return out


@pytest.mark.parametrize("ttl", [1, 2, 3])
@pytest.mark.parametrize("version", [4, 6])
def test_ttl_reaches_exactly_ttl_lans(lab: Lab, mcast_port: int, version: int,
                                      ttl: int) -> None:
    group = new_group(v6=version == 6)
    lab.prime(group, src="h1", ttl=3)
    with _receivers(lab, version, group, mcast_port, RECEIVERS) as rx, \
            lab.host("h1").enter(), \
            MulticastSocket(version, interface=HOST_IF, ttl=ttl) as tx:
        for i in range(BURST):
            tx.sendto(b"burst%d" % i, group, mcast_port)
        tx.set_ttl(3)
        tx.sendto(b"sentinel", group, mcast_port)
        for host, hops in RECEIVERS.items():
            got = _collect_until_sentinel(lab, host, rx[host])
            bursts = [d for d in got if d.data.startswith(b"burst")]
            want = BURST if ttl > hops else 0
            assert len(bursts) == want, f"{host} ({hops} routers away), ttl {ttl}"
            assert [d.data for d in bursts] == [b"burst%d" % i for i in range(want)]
            assert all(d.ttl == ttl - hops for d in bursts)  # each router took one
            assert got[-1].ttl == 3 - hops and got[-1].group == group
            assert rx[host].stats.filtered == 0


@pytest.mark.parametrize("version", [4, 6])
def test_ssm_across_the_router_delivers_only_the_joined_source(
    lab: Lab, mcast_port: int, version: int
) -> None:
    v6 = version == 6
    group = new_group(v6=v6, ssm=not v6)
    s_h1, s_h3 = lab.source_of("h1", v6), lab.source_of("h3", v6)
    lab.prime(group, src="h1", ttl=2)
    lab.prime(group, src="h3", ttl=2)
    with lab.host("h2").enter():
        ssm = MulticastSocket(version, interface=HOST_IF, metadata=True, reuse_address=True)
        asm = MulticastSocket(version, interface=HOST_IF, metadata=True, reuse_address=True)
        ssm.bind(mcast_port)
        asm.bind(mcast_port)
        ssm.join_source(s_h1, group)
        asm.join(group)
    lab.wait_members(group, "h2")
    with ssm, asm:
        for host, tag in (("h3", b"h3"), ("h1", b"h1")):
            with lab.host(host).enter(), \
                    MulticastSocket(version, interface=HOST_IF, ttl=2) as tx:
                for i in range(BURST):
                    tx.sendto(tag + b"-%d" % i, group, mcast_port)
        with lab.host("h1").enter(), MulticastSocket(version, interface=HOST_IF, ttl=2) as tx:
            tx.sendto(b"sentinel", group, mcast_port)
        with lab.host("h2").enter():
            seen_asm: list[Datagram] = []
            while sum(d.data == b"sentinel" for d in seen_asm) == 0 or len(seen_asm) < 11:
                seen_asm.append(asm.recv(WAIT_S))
            seen_ssm = drain(ssm)  # same delivery pass on h2: it holds its share by now

        def src(d: Datagram) -> str:
            return d.source.split("%")[0]

        by_src_asm = {s_h1: 0, s_h3: 0}
        for d in seen_asm:
            by_src_asm[src(d)] += 1
        assert by_src_asm == {s_h1: BURST + 1, s_h3: BURST}  # the control sees both
        assert {src(d) for d in seen_ssm} == {s_h1}
        assert [d.data for d in seen_ssm] == [b"h1-%d" % i for i in range(BURST)] + [b"sentinel"]
        assert all(d.ttl == 1 for d in seen_ssm)  # one router crossed


@pytest.mark.parametrize("version", [4, 6])
def test_g4_min_ttl_255_rejects_a_datagram_forwarded_by_a_router(
    lab: Lab, mcast_port: int, version: int
) -> None:
    """Security goal G4 (GTSM, RFC 5082): h1's TTL-255 datagram crosses r1 and reaches h2
    with 254, so a receiver with ``min_ttl=255`` drops and counts it; r1's own TTL-255
    datagram on LAN B (on-link) is accepted, and is the sentinel."""
    group = new_group(v6=version == 6)
    lab.prime(group, src="h1", ttl=3)
    with lab.host("h2").enter():
        rx = MulticastSocket(version, interface=HOST_IF, min_ttl=255)
        rx.bind(mcast_port)
        rx.join(group)
    lab.wait_members(group, "h2")
    with rx:
        with lab.host("h1").enter(), \
                MulticastSocket(version, interface=HOST_IF, ttl=255) as tx:
            tx.sendto(b"forwarded", group, mcast_port)
        with lab.host("r1").enter(), \
                MulticastSocket(version, interface="eth-b", ttl=255) as onlink:
            onlink.sendto(b"on-link", group, mcast_port)
        with lab.host("h2").enter():
            got: list[Datagram] = []
            # both reach the socket in either order; recv() returns only the on-link one
            # and counts the forwarded one as it passes: poll until both were seen
            deadline = time.monotonic() + WAIT_S
            while (not got or rx.stats.ttl_filtered == 0) and time.monotonic() < deadline:
                with contextlib.suppress(ReceiveTimeoutError):
                    got.append(rx.recv(0.05))
            got += drain(rx)
        assert [(d.data, d.ttl) for d in got] == [(b"on-link", 255)]
        assert rx.stats.ttl_filtered == 1
