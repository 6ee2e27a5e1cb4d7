"""No storms: two relays between the same LANs, and a relay whose two interfaces are
bridged together. Every copy is counted; the bounds are those of docs/relay.md."""

from __future__ import annotations

import time

import pytest

from tests.support.relay_topo import (
    Bridged,
    Parallel,
    RelayProc,
    mcast_socket,
    receiver,
    totals,
    wait_joined,
)
from tests.support.topology import new_group, new_port

pytestmark = pytest.mark.kernel


def _count(counts: dict[bytes, int], n: int) -> int:
    return sum(counts.get(f"d{i}".encode(), 0) for i in range(n))


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_two_parallel_relays_each_forward_every_datagram_once(parallel: Parallel,
                                                              v6: bool) -> None:
    port, g = new_port(), new_group(v6=v6)
    ep = f"[{g}]:{port}" if v6 else f"{g}:{port}"
    relays = [RelayProc(r, "lan-a", "lan-b", "--group", ep) for r in (parallel.r1,
                                                                       parallel.r2)]
    try:
        for r in (parallel.r1, parallel.r2):
            wait_joined(r, g, "lan-a")
            wait_joined(r, g, "lan-b")
        n = 80  # small enough that no receive buffer overflows while we read afterwards
        with receiver(parallel.a, ep, "br0") as rxa, receiver(parallel.b, ep, "br0") as rxb:
            tx = mcast_socket(parallel.a, 6 if v6 else 4, "br0")
            for i in range(n):
                tx.sendto(f"d{i}".encode(), (g, port))
                if i % 50 == 49:
                    time.sleep(0.01)
            time.sleep(0.3)  # let the copies settle before the sentinel
            txb = mcast_socket(parallel.b, 6 if v6 else 4, "br0")
            txb.sendto(b"end", (g, port))  # from B: the last thing either side hears
            on_a = _count_until(rxa, b"end", 1)  # A: its own loopback + relays' copies
            on_b = _count_until(rxb, b"end", 1)
            tx.close()
            txb.close()
        # each relay relays each datagram exactly once (in one direction or the other) and
        # suppresses the other relay's copy: 2 relays -> 2 copies in all, never more
        copies_b = _count(on_b, n)
        copies_a = _count(on_a, n) - n
        assert copies_a + copies_b == 2 * n, (copies_a, copies_b)
        assert max(on_b.get(f"d{i}".encode(), 0) for i in range(n)) <= 2
        stats = [r.wait_stats(lambda s: totals(s)["relayed"] >= n) for r in relays]
        time.sleep(0.5)
        stats = [r.last() for r in relays]
        assert sum(totals(s)["relayed"] for s in stats) == 2 * (n + 1)
        assert sum(totals(s)["loop_suppressed"] for s in stats) == 2 * (n + 1)
    finally:
        for r in relays:
            r.stop()


def _count_until(rx: object, sentinel: bytes, sentinel_copies: int) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    deadline = time.monotonic() + 10
    while counts.get(sentinel, 0) < sentinel_copies:
        d = rx.recv(timeout_s=max(0.1, deadline - time.monotonic()))  # type: ignore[attr-defined]
        counts[d.data] = counts.get(d.data, 0) + 1
    return counts


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_bridged_interfaces_relay_once_and_suppress_the_echo(bridged: Bridged,
                                                             v6: bool) -> None:
    port, g = new_port(), new_group(v6=v6)
    ep = f"[{g}]:{port}" if v6 else f"{g}:{port}"
    rp = RelayProc(bridged.r, "lan-a", "lan-b", "--group", ep)
    try:
        wait_joined(bridged.r, g, "lan-a")
        wait_joined(bridged.r, g, "lan-b")
        n = 80
        with receiver(bridged.lan, ep, "br0") as rx:
            tx = mcast_socket(bridged.lan, 6 if v6 else 4, "br0")
            for i in range(n):
                tx.sendto(f"d{i}".encode(), (g, port))
            time.sleep(0.3)
            tx.sendto(b"end", (g, port))
            got = _count_until(rx, b"end", 1)
            tx.close()
        # the LAN hears each datagram from its sender and at most one relayed copy
        assert _count(got, n) <= 2 * n
        st = rp.wait_stats(lambda s: totals(s)["relayed"] >= n + 1)
        time.sleep(0.5)
        t = totals(rp.last())
        # the original arrives on both ports: relayed once, the other copy suppressed by
        # the recent-datagram rule. The relay's own copy comes back on the other port:
        # IPv4 drops it in the kernel (a local source address is a martian), IPv6 hands
        # it over and the own-address rule suppresses it.
        assert t["relayed"] == n + 1
        assert t["received"] in (2 * (n + 1), 3 * (n + 1)), t
        assert t["loop_suppressed"] == t["received"] - t["relayed"]
        assert st
    finally:
        rp.stop()
