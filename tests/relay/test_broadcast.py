"""Broadcast ports through the relay (issue 10: "broadcast ports too", Sonos on udp/6969):
LAN A <-> relay <-> LAN B in namespaces, plain sockets on both ends, the Sonos preset,
--preserve-source through the raw path, two parallel relays with counted copies, and two
sites joined by the encrypted tunnel."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mcastkit.relay import make_key_file
from tests.support.addrs import lab_host
from tests.support.netns import Netns
from tests.support.relay_topo import A4, R_B4, Bridged, Lans, Parallel, RelayProc, Sites
from tests.support.topology import new_port

pytestmark = pytest.mark.kernel

SONOS = 6969


def _bcast_tx(ns: Netns, ifname: str, bind_port: int = 0) -> socket.socket:
    """A plain broadcast sender in ``ns``, its limited broadcasts leaving ``ifname``."""
    with ns.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    s.bind(("", bind_port))
    return s


def _bcast_rx(ns: Netns, port: int) -> socket.socket:
    """A plain socket in ``ns`` bound to ``port`` on every address (gets broadcasts)."""
    with ns.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    return s


def _read_until(rx: socket.socket, sentinel: bytes, timeout: float = 10.0
                ) -> list[tuple[bytes, tuple[str, int]]]:
    got: list[tuple[bytes, tuple[str, int]]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1][0] != sentinel:
        rx.settimeout(max(0.1, deadline - time.monotonic()))
        data, addr = rx.recvfrom(65535)
        got.append((data, addr))
    return got


def _started(rp: RelayProc) -> dict[str, Any]:
    return rp.wait_stats(lambda s: "totals" in s, what="relay started")


@pytest.mark.parametrize("preserve", [False, True], ids=["relay-source", "preserve-source"])
def test_sonos_broadcast_crosses_once_and_never_comes_back(lans: Lans, preserve: bool
                                                           ) -> None:
    extra = ("--preserve-source",) if preserve else ()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--preset", "sonos", *extra)
    rxa, rxb = _bcast_rx(lans.a, SONOS), _bcast_rx(lans.b, SONOS)
    ta, tb = _bcast_tx(lans.a, "eth0"), _bcast_tx(lans.b, "eth0")
    sport = ta.getsockname()[1]
    try:
        _started(rp)
        n = 40
        for i in range(n):
            ta.sendto(f"d{i}".encode(), ("255.255.255.255", SONOS))
        ta.sendto(b"directed", (lab_host(21, 255), SONOS))  # the subnet's own broadcast
        ta.sendto(b"reply", (lab_host(21, 1), SONOS))  # unicast to the relay: not relayed
        time.sleep(0.3)
        tb.sendto(b"end", ("255.255.255.255", SONOS))  # from B: relayed to A last
        on_b = _read_until(rxb, b"end")
        on_a = _read_until(rxa, b"end")
    except Exception:
        print("RELAY", rp.last(), rp.stderr())
        raise
    finally:
        for s in (rxa, rxb, ta, tb):
            s.close()
        summary = rp.stop()
    want = [f"d{i}".encode() for i in range(n)] + [b"directed"]
    # B: every broadcast from A exactly once, in order, then its own "end" (loopback)
    assert [d for d, _ in on_b] == [*want, b"end"]
    # A: its own broadcasts (loopback), none relayed back, then B's "end" via the relay
    assert [d for d, _ in on_a] == [*want, b"end"]
    srcs_b = {a for d, a in on_b if d != b"end"}
    assert srcs_b == ({(A4, sport)} if preserve else {(R_B4, SONOS)}), srcs_b
    rule = summary["rules"]["sonos"]
    assert rule["out"]["lan-a->lan-b"]["relayed"] == n + 1
    assert rule["out"]["lan-b->lan-a"]["relayed"] == 1
    assert rule["in"]["lan-a"]["received"] >= n + 1
    t = summary["totals"]
    assert t["relayed"] == n + 2 and t["send_errors"] == 0
    # the only other thing the relay hears is its own limited broadcast, which the kernel
    # loops back to local sockets (not on the raw path): suppressed, never relayed
    assert summary["rules"]["(no rule)"]["in"]["lan-a"] == {
        "received": 1, "filtered": 1, "loop_suppressed": 0, "rate_limited": 0,
        "no_target": 0}  # the unicast "reply", counted and dropped
    assert t["filtered"] == 1
    assert t["received"] == t["relayed"] + t["loop_suppressed"] + t["filtered"]
    assert t["loop_suppressed"] == (0 if preserve else n + 2), t


def test_broadcast_port_spellings_relay_the_same(lans: Lans) -> None:
    port = new_port()
    rp = RelayProc(lans.r, "lan-a", "lan-b", "--group", f"255.255.255.255:{port}")
    rxb = _bcast_rx(lans.b, port)
    ta = _bcast_tx(lans.a, "eth0")
    try:
        _started(rp)
        ta.sendto(b"x", ("255.255.255.255", port))
        ta.sendto(b"end", ("255.255.255.255", port))
        assert [d for d, _ in _read_until(rxb, b"end")] == [b"x", b"end"]
    finally:
        rxb.close()
        ta.close()
        summary = rp.stop()
    assert summary["rules"][f"bcast{port}"]["out"]["lan-a->lan-b"]["relayed"] == 2


def test_two_parallel_relays_give_two_counted_copies(parallel: Parallel) -> None:
    port = new_port()
    relays = [RelayProc(r, "lan-a", "lan-b", "--broadcast-port", str(port))
              for r in (parallel.r1, parallel.r2)]
    rxa, rxb = _bcast_rx(parallel.a, port), _bcast_rx(parallel.b, port)
    ta, tb = _bcast_tx(parallel.a, "br0"), _bcast_tx(parallel.b, "br0")
    try:
        for r in relays:
            _started(r)
        n = 60
        for i in range(n):
            ta.sendto(f"d{i}".encode(), ("255.255.255.255", port))
            if i % 20 == 19:
                time.sleep(0.01)
        time.sleep(0.3)
        tb.sendto(b"end", ("255.255.255.255", port))
        on_b = _read_until(rxb, b"end")
        time.sleep(0.3)
        on_a = _read_until(rxa, b"end")
        on_a += _read_until(rxa, b"end")  # both relays bring B's "end" to A
    finally:
        for s in (rxa, rxb, ta, tb):
            s.close()
        summaries = [r.stop() for r in relays]
    count_b = {d: sum(1 for x, _ in on_b if x == d) for d, _ in on_b}
    count_a = {d: sum(1 for x, _ in on_a if x == d) for d, _ in on_a}
    data = [f"d{i}".encode() for i in range(n)]
    # each relay relays each broadcast once (one way or the other) and suppresses the
    # other relay's copy: two relays give two copies in all, never more
    copies_b = sum(count_b.get(d, 0) for d in data)
    copies_a = sum(count_a.get(d, 0) for d in data) - n  # minus A's own loopback
    assert copies_a + copies_b == 2 * n, (copies_a, copies_b)
    assert max(count_b.get(d, 0) for d in data) <= 2
    assert count_a[b"end"] == 2
    relayed = sum(s["totals"]["relayed"] for s in summaries)
    suppressed = sum(s["totals"]["loop_suppressed"] for s in summaries)
    assert relayed == 2 * (n + 1), summaries
    # per relay and datagram: the other relay's copy, and its own looped-back output
    assert suppressed == 2 * relayed, summaries
    for s in summaries:
        out = s["rules"][f"bcast{port}"]["out"]
        assert sum(row["relayed"] for row in out.values()) == s["totals"]["relayed"]


def test_broadcast_through_the_tunnel(sites: Sites, tmp_path: Path) -> None:
    key = str(tmp_path / "relay.key")
    make_key_file(key)
    port = new_port()
    common = ("--key-file", key, "-i", "lan", "--broadcast-port", str(port))
    ra = RelayProc(sites.ra, "--tunnel-listen", "7777", *common)
    rb = RelayProc(sites.rb, "--tunnel-connect", f"{lab_host(41, 2)}:7777", *common)
    rxb = _bcast_rx(sites.b, port)
    ta = _bcast_tx(sites.a, "eth0")
    try:
        for r in (ra, rb):
            r.wait_stats(lambda s: (s.get("tunnel") or {}).get("state") == "up",
                         what="tunnel up")
        n = 20
        for i in range(n):
            ta.sendto(f"t{i}".encode(), ("255.255.255.255", port))
        ta.sendto(b"end", (lab_host(31, 255), port))
        got = _read_until(rxb, b"end")
    finally:
        rxb.close()
        ta.close()
        sa, sb = ra.stop(), rb.stop()
    assert [d for d, _ in got] == [*(f"t{i}".encode() for i in range(n)), b"end"]
    assert {a for _, a in got} == {(lab_host(32, 1), port)}  # the far relay's address
    rule = f"bcast{port}"
    assert sa["rules"][rule]["out"]["lan->tunnel"]["relayed"] == n + 1
    assert sb["rules"][rule]["out"]["tunnel->lan"]["relayed"] == n + 1
    # the far relay hears its own broadcasts (kernel loopback) and drops them (rule 2)
    assert sb["rules"][rule]["in"]["lan"]["loop_suppressed"] == n + 1
    assert sa["totals"]["relayed"] == n + 1 and sb["totals"]["relayed"] == n + 1


def test_bridged_interfaces_relay_each_broadcast_once(bridged: Bridged) -> None:
    port = new_port()
    rp = RelayProc(bridged.r, "lan-a", "lan-b", "--broadcast-port", str(port))
    rx = _bcast_rx(bridged.lan, port)
    tx = _bcast_tx(bridged.lan, "br0")
    try:
        _started(rp)
        n = 40
        for i in range(n):
            tx.sendto(f"d{i}".encode(), ("255.255.255.255", port))
        time.sleep(0.3)
        tx.sendto(b"end", ("255.255.255.255", port))
        got = _read_until(rx, b"end")
        got += _read_until(rx, b"end")  # its own copy and the relayed one, in either order
        time.sleep(0.5)
    finally:
        rx.close()
        tx.close()
        summary = rp.stop()
    counts = {d: sum(1 for x, _ in got if x == d) for d, _ in got}
    # the LAN hears each broadcast from its sender and exactly one relayed copy
    assert all(counts.get(f"d{i}".encode()) == 2 for i in range(n)), counts
    t = summary["totals"]
    assert t["relayed"] == n + 1, t
    assert t["filtered"] == 0 and t["send_errors"] == 0
    # each original arrives on both ports (one relayed, one suppressed) and the relay's
    # own broadcast comes back once (the kernel's loopback copy; the copy through the
    # bridge IPv4 drops as a martian): three arrivals, one relayed, two suppressed
    assert t["received"] == 3 * (n + 1), t
    assert t["loop_suppressed"] == 2 * (n + 1), t
