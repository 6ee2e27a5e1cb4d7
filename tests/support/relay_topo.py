"""Namespaces for relay tests: LAN A <-> relay <-> LAN B, and two sites over a router.

Addresses come from 198.18.0.0/15 only; every namespace is made (and deleted) here.

``Lans`` (one relay)::

    a: eth0 198.18.21.10  ==  r: lan-a 198.18.21.1 | lan-b 198.18.22.1  ==  b: eth0 198.18.22.10

``Sites`` (two relays over a routed, unicast-only network; no multicast routing)::

    a: eth0 .31.10 == ra: lan .31.1 | wan .41.2 == rt: wa .41.1 | wb .42.1
        == rb: wan .42.2 | lan .32.1 == b: eth0 .32.10
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.support import kernelstate
from tests.support.addrs import lab_host
from tests.support.netns import Netns, veth, wait_until

A4, R_A4, R_B4, B4 = lab_host(21, 10), lab_host(21, 1), lab_host(22, 1), lab_host(22, 10)


class _Topo:
    """Namespaces made by one topology; ``close()`` deletes them all."""

    def __init__(self) -> None:
        self.made: list[Netns] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        raise NotImplementedError

    def _ns(self, tag: str) -> Netns:
        ns = Netns.fresh(tag)
        self.made.append(ns)
        return ns

    def close(self) -> None:
        for ns in self.made:
            ns.delete()


class Lans(_Topo):
    """Two LANs and one relay namespace between them."""

    def _build(self) -> None:
        self.a = self._ns("ra")
        self.r = self._ns("rr")
        self.b = self._ns("rb")
        veth(self.a, "eth0", self.r, "lan-a")
        veth(self.r, "lan-b", self.b, "eth0")
        self.a.addr_add("eth0", A4 + "/24")
        self.r.addr_add("lan-a", R_A4 + "/24")
        self.r.addr_add("lan-b", R_B4 + "/24")
        self.b.addr_add("eth0", B4 + "/24")
        self.ll_a = self.a.link_local("eth0")
        self.ll_b = self.b.link_local("eth0")
        self.r.link_local("lan-a")
        self.r.link_local("lan-b")


def route_table(ns: Netns, *specs: str) -> None:
    for s in specs:
        ns.ip("route", "add", *s.split())


class Sites(_Topo):
    """Two sites, each a LAN plus a relay, joined by a router that forwards unicast only."""

    def _build(self) -> None:
        self.a, self.ra, self.rt = self._ns("sa"), self._ns("sra"), self._ns("srt")
        self.rb, self.b = self._ns("srb"), self._ns("sb")
        veth(self.a, "eth0", self.ra, "lan")
        veth(self.ra, "wan", self.rt, "wa")
        veth(self.rt, "wb", self.rb, "wan")
        veth(self.rb, "lan", self.b, "eth0")
        for ns, ifn, cidr in ((self.a, "eth0", f"{lab_host(31, 10)}/24"),
                              (self.ra, "lan", f"{lab_host(31, 1)}/24"),
                              (self.ra, "wan", f"{lab_host(41, 2)}/24"),
                              (self.rt, "wa", f"{lab_host(41, 1)}/24"),
                              (self.rt, "wb", f"{lab_host(42, 1)}/24"),
                              (self.rb, "wan", f"{lab_host(42, 2)}/24"),
                              (self.rb, "lan", f"{lab_host(32, 1)}/24"),
                              (self.b, "eth0", f"{lab_host(32, 10)}/24")):
            ns.addr_add(ifn, cidr)
        self.rt.sysctl("net.ipv4.ip_forward", 1)
        route_table(self.ra, f"{lab_host(42, 0)}/24 via {lab_host(41, 1)}")
        route_table(self.rb, f"{lab_host(41, 0)}/24 via {lab_host(42, 1)}")
        self.ll_a = self.a.link_local("eth0")
        self.ll_b = self.b.link_local("eth0")
        self.ra.link_local("lan")
        self.rb.link_local("lan")


def memberships(ns: Netns) -> set[tuple[str, str]]:
    with ns.enter():
        return kernelstate.memberships()


def wait_joined(ns: Netns, group: str, ifname: str, timeout: float = 15.0) -> None:
    wait_until(lambda: (ifname, group) in memberships(ns), timeout,
               what=f"{group} joined on {ifname} in {ns.name}")


class RelayProc:
    """``python -m mcastkit relay ARGS --json`` in a namespace; collects its JSON lines."""

    def __init__(self, ns: Netns, *args: str, interval: float = 0.2) -> None:
        self.p = ns.popen(sys.executable, "-m", "mcastkit", "relay", *args, "--json",
                          "--interval", str(interval), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self._te = threading.Thread(target=self._read_err, daemon=True)
        self._te.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with contextlib.suppress(ValueError), self._lock:
                self.lines.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            with self._lock:
                self.err.append(line.rstrip("\n"))

    def last(self) -> dict[str, Any]:
        with self._lock:
            return self.lines[-1] if self.lines else {}

    def wait_stats(self, pred: Any, timeout: float = 15.0, what: str = "") -> dict[str, Any]:
        """Wait until a periodic stats line satisfies ``pred``; return it."""
        def probe() -> dict[str, Any] | None:
            if self.p.poll() is not None:
                raise AssertionError(f"relay exited {self.p.returncode}: {self.stderr()}")
            st = self.last()
            return st if st and pred(st) else None
        return wait_until(probe, timeout, interval=0.05, what=what or "relay stats")

    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self.err)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> dict[str, Any]:
        """Signal it, wait, and return its final summary line."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        self._t.join(5)
        self._te.join(5)
        summaries = [ln for ln in self.lines if ln.get("type") == "summary"]
        assert summaries, f"no summary; stderr: {self.stderr()}"
        return summaries[-1]


def mcast_socket(ns: Netns, version: int, ifname: str, ttl: int = 1) -> socket.socket:
    """A plain UDP sender in ``ns`` whose multicast goes out of ``ifname``."""
    fam = socket.AF_INET6 if version == 6 else socket.AF_INET
    with ns.enter():
        s = socket.socket(fam, socket.SOCK_DGRAM)
        idx = socket.if_nametoindex(ifname)
    if version == 6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                     bytes(8) + idx.to_bytes(4, sys.byteorder))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    return s


def totals(st: dict[str, Any]) -> dict[str, int]:
    t: dict[str, int] = st.get("totals", {})
    return t


def settle(seconds: float = 0.2) -> None:
    time.sleep(seconds)


@contextlib.contextmanager
def receiver(ns: Netns, endpoint: str, ifname: str = "eth0") -> Iterator[Any]:
    """An mcastkit receiver (metadata on) in ``ns`` joined on ``ifname``."""
    from mcastkit import open_receiver

    with ns.enter():
        rx = open_receiver(endpoint, interface=ifname, metadata=True)
    try:
        yield rx
    finally:
        rx.close()


def bridge(ns: Netns, name: str = "br0") -> None:
    """A bridge without multicast snooping (floods multicast like a dumb switch)."""
    ns.ip("link", "add", name, "type", "bridge", "mcast_snooping", "0")
    ns.ip("link", "set", name, "up")


def enslave(ns: Netns, port: str, br: str = "br0") -> None:
    ns.ip("link", "set", port, "master", br)


class Parallel(_Topo):
    """LAN A and LAN B (each a bridge in the host's namespace, address on the bridge)
    joined by two relays r1 and r2 (lan-a / lan-b each)."""

    def _build(self) -> None:
        self.a, self.b = self._ns("pa"), self._ns("pb")
        self.r1, self.r2 = self._ns("pr1"), self._ns("pr2")
        for host, lan, net in ((self.a, "lan-a", "21"), (self.b, "lan-b", "22")):
            bridge(host)
            host.addr_add("br0", f"{lab_host(net, 10)}/24")
            for k, r in ((1, self.r1), (2, self.r2)):
                veth(host, f"p{k}", r, lan)
                enslave(host, f"p{k}")
                r.addr_add(lan, f"{lab_host(net, k)}/24")
        for ns, ifn in ((self.a, "br0"), (self.b, "br0"), (self.r1, "lan-a"),
                        (self.r1, "lan-b"), (self.r2, "lan-a"), (self.r2, "lan-b")):
            ns.link_local(ifn)


class Bridged(_Topo):
    """One LAN (a bridge in namespace ``lan`` with host address 198.18.23.10) and a relay
    whose two interfaces lan-a and lan-b are both ports of that bridge: a loop."""

    def _build(self) -> None:
        self.lan, self.r = self._ns("bl"), self._ns("br")
        bridge(self.lan)
        self.lan.addr_add("br0", f"{lab_host(23, 10)}/24")
        for k, ifn in ((1, "lan-a"), (2, "lan-b")):
            veth(self.lan, f"p{k}", self.r, ifn)
            enslave(self.lan, f"p{k}")
            self.r.addr_add(ifn, f"{lab_host(23, k)}/24")
            self.r.link_local(ifn)
        self.lan.link_local("br0")


def drain_count(rx: Any, want_sentinel: bytes, timeout: float = 10.0) -> dict[bytes, int]:
    """Read until ``want_sentinel`` arrives; count each payload."""
    counts: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        d = rx.recv(timeout_s=max(0.1, deadline - time.monotonic()))
        counts[d.data] = counts.get(d.data, 0) + 1
        if d.data == want_sentinel:
            return counts
