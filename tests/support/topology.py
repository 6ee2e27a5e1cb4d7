"""Test topologies built from namespaces: the 7-namespace lab, a veth pair, a veth loop.

The lab (docs: /work/shared/docs/lab.md §3.1)::

   LAN A 198.18.1.0/24 (br-a)      LAN B 198.18.2.0/24 (br-b)      LAN C 198.18.3.0/24
   h1 .10 eth0 (sender)             h2 .10 eth0 (receiver)          h4 .10 eth0
   h3 .11 eth0                      r1 eth-b .1   r2 eth-b .2       r2 eth-c .1 (direct veth)
   r1 eth-a .1
   br-a, br-b: IGMPv3/MLDv2 snooping bridges with a querier, in namespace "sw";
   router ports a-r1 and b-r2 are permanent router ports (mcast_router 2).
   r1: eth-a -> eth-b, r2: eth-b -> eth-c for 239.255.0.0/16, 232.0.0.0/8, ff15::/16.

Forwarding is one way (A -> B -> C). A datagram sent from h1 with TTL 1 stays on LAN A,
TTL 2 also reaches LAN B (arriving with TTL 1), TTL 3 also LAN C. The first packets of a
new (S,G) are lost while the router resolves it: call ``Lab.prime(group)`` before
counting (it sends one datagram to port 9, which nobody listens on, and waits until the
routers show the resolved (S,G)).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType

from tests.support import kernelstate
from tests.support.addrs import (
    ASM_NET4,
    ASM_NET6,
    SSM_NET4,
    VETH_A,
    VETH_B,
    asm4,
    asm6,
    lab_host,
    ssm4,
)
from tests.support.netns import Netns, our_namespaces, veth, wait_until

# Addresses (only 198.18.0.0/15).
H1, H3, R1_A = lab_host(1, 10), lab_host(1, 11), lab_host(1, 1)
H2, R1_B, R2_B = lab_host(2, 10), lab_host(2, 1), lab_host(2, 2)
H4, R2_C = lab_host(3, 10), lab_host(3, 1)
LAN_A, LAN_B, LAN_C = f"{lab_host(1, 0)}/24", f"{lab_host(2, 0)}/24", f"{lab_host(3, 0)}/24"
ADDR = {"h1": H1, "h3": H3, "h2": H2, "h4": H4, "r1": R1_A, "r2": R2_B}
LAN_OF = {"h1": "A", "h3": "A", "h2": "B", "h4": "C"}
ROUTED_PREFIXES = (ASM_NET4, SSM_NET4, ASM_NET6)
NAMES = ("sw", "h1", "h3", "r1", "h2", "r2", "h4")
HOST_IF = "eth0"  # every host's interface name
BRIDGE_PORT = {"h1": "a-h1", "h3": "a-h3", "h2": "b-h2"}  # h4 hangs off r2 directly
PRIME_PORT = 9  # nothing listens here; the priming datagram is harmless

MROUTE_PY = Path(__file__).with_name("mroute.py")

_groups = itertools.count(1)
_ports = itertools.count(20000)
_labs = itertools.count(1)
_running: set[Lab] = set()


@atexit.register
def _down_all() -> None:  # safety net: a lab left up by a crashed run
    for lab in list(_running):
        with contextlib.suppress(Exception):
            lab.down()


def new_group(v6: bool = False, ssm: bool = False) -> str:
    """A group no other test in this process has used (239.255.200+.x, 232.255.x.x, ff15::)."""
    n = next(_groups)
    if v6:
        return asm6(f"{0x1000 + n:x}")
    if ssm:
        return ssm4(255, n // 250, n % 250 + 1)
    return asm4(200 + n // 250, n % 250 + 1)


def new_port() -> int:
    """A UDP port no other test in this process has used (20000 upwards)."""
    return next(_ports)


def _send_one(ns: Netns, group: str, port: int, ttl: int, payload: bytes = b"prime") -> None:
    v6 = ":" in group
    with ns.enter():
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            idx = socket.if_nametoindex(HOST_IF)
            if v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
                mreqn = bytes(8) + idx.to_bytes(4, sys.byteorder)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            s.sendto(payload, (group, port))


class Lab:
    """The 3-LAN, 2-router lab. ``with Lab() as lab:`` or ``lab.up()`` / ``lab.down()``.

    ``router``: "python" (tests/support/mroute.py, default) or "smcroute" (default taken from
    env ``MCAST_LAB_ROUTER``; falls back to python with a warning if smcrouted is
    missing). ``r2_c_ttl_threshold``: IPv4 TTL threshold on r2's LAN-C interface.
    """

    def __init__(self, router: str | None = None, r2_c_ttl_threshold: int | None = None) -> None:
        kind = router or os.environ.get("MCAST_LAB_ROUTER", "python")
        if kind not in ("python", "smcroute"):
            raise ValueError(f"unknown router {kind!r}")
        if kind == "smcroute" and shutil.which("smcrouted") is None:
            warnings.warn("smcrouted not installed; lab uses mroute.py", stacklevel=2)
            kind = "python"
        self.router_kind = kind
        self.threshold = r2_c_ttl_threshold
        self.tag = f"L{next(_labs)}"
        self.ns: dict[str, Netns] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.rundir = ""
        self.up_seconds = self.down_seconds = 0.0

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def host(self, name: str) -> Netns:
        """The namespace of h1, h2, h3, h4, r1, r2 or sw."""
        return self.ns[name]

    # --- build ------------------------------------------------------------------------
    def up(self) -> None:
        t0 = time.monotonic()
        self.rundir = tempfile.mkdtemp(prefix=f"mcast-{self.tag}-")
        _running.add(self)
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self.up_seconds = time.monotonic() - t0

    def _build(self) -> None:
        for n in NAMES:
            self.ns[n] = Netns(f"{self.tag}{n}")
        sw = self.ns["sw"]
        for br in ("br-a", "br-b"):
            sw.ip("link", "add", br, "type", "bridge", "mcast_snooping", "1",
                  "mcast_querier", "1", "mcast_igmp_version", "3", "mcast_mld_version", "2",
                  "mcast_query_interval", "1000", "mcast_query_response_interval", "200",
                  "mcast_startup_query_interval", "100")
            sw.ip("link", "set", br, "up")
        links = [("h1", "eth0", "a-h1"), ("h3", "eth0", "a-h3"), ("r1", "eth-a", "a-r1"),
                 ("r1", "eth-b", "b-r1"), ("h2", "eth0", "b-h2"), ("r2", "eth-b", "b-r2")]
        for host, ifname, port in links:
            veth(self.ns[host], ifname, sw, port)
            sw.ip("link", "set", port, "master", "br-a" if port[0] == "a" else "br-b")
        veth(self.ns["r2"], "eth-c", self.ns["h4"], "eth0")
        # smcrouted/mroute.py send no queries: mark router ports by hand (lab.md §3.5.1).
        for port in ("a-r1", "b-r2"):
            sw.ip("link", "set", "dev", port, "type", "bridge_slave", "mcast_router", "2")
        plan = {
            "h1": [("eth0", H1 + "/24"), ("default", R1_A)],
            "h3": [("eth0", H3 + "/24"), ("default", R1_A)],
            "r1": [("eth-a", R1_A + "/24"), ("eth-b", R1_B + "/24"), (LAN_C, R2_B)],
            "h2": [("eth0", H2 + "/24"), ("default", R1_B), (LAN_C, R2_B)],
            "r2": [("eth-b", R2_B + "/24"), ("eth-c", R2_C + "/24"), ("default", R1_B)],
            "h4": [("eth0", H4 + "/24"), ("default", R2_C)],
        }
        for host, items in plan.items():
            for a, b in items:
                if a.startswith("eth"):
                    self.ns[host].addr_add(a, b)
                else:
                    self.ns[host].route_add(a, "via", b)
        for r in ("r1", "r2"):
            self.ns[r].sysctl("net.ipv4.ip_forward", 1)
            self.ns[r].sysctl("net.ipv6.conf.all.forwarding", 1)
        self._start_router("r1", "eth-a", ["eth-b"])
        c = f"eth-c:{self.threshold}" if self.threshold else "eth-c"
        self._start_router("r2", "eth-b", [c])
        for r, want in (("r1", {"eth-a", "eth-b"}), ("r2", {"eth-b", "eth-c"})):
            wait_until(lambda r=r, want=want: self._vifs_ready(r, want), 10.0,  # type: ignore[misc]
                       what=f"{r} multicast VIFs ({self.router_kind})")
        for h in ("h1", "h2", "h3", "h4"):  # IPv6 link-local usable (DAD is off)
            self.ns[h].link_local(HOST_IF)

    def _start_router(self, r: str, iif: str, oifs: list[str]) -> None:
        log = open(os.path.join(self.rundir, f"{r}.log"), "wb")  # noqa: SIM115
        if self.router_kind == "python":
            cmd = [sys.executable, str(MROUTE_PY), "--iif", iif]
            for o in oifs:
                cmd += ["--oif", o]
            for p in ROUTED_PREFIXES:
                cmd += ["--prefix", p]
        else:
            conf = os.path.join(self.rundir, f"{r}.conf")
            lines = [f"phyint {iif} enable"]
            for o in oifs:
                name, _, thr = o.partition(":")
                lines.append(f"phyint {name} enable" + (f" ttl-threshold {thr}" if thr else ""))
            for p in ROUTED_PREFIXES:
                lines += [f"mroute from {iif} group {p} to {o.partition(':')[0]}" for o in oifs]
            Path(conf).write_text("\n".join(lines) + "\n")
            base = os.path.join(self.rundir, r)
            cmd = ["smcrouted", "-n", "-N", "-f", conf, "-P", base + ".pid", "-u",
                   base + ".sock", "-l", "debug"]
        # `ip netns exec` execs the command, so Popen.pid is the router's own PID.
        self.procs[r] = self.ns[r].popen(*cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log.close()

    def _vifs_ready(self, r: str, want: set[str]) -> bool:
        proc = self.procs[r]
        if proc.poll() is not None:
            raise RuntimeError(f"{r} router exited {proc.returncode}: {self.router_log(r)}")
        with self.ns[r].enter():
            return (set(kernelstate.mroute_vifs().values()) >= want
                    and set(kernelstate.mroute_vifs(v6=True).values()) >= want)

    def router_log(self, r: str) -> str:
        try:
            return Path(self.rundir, f"{r}.log").read_text(errors="replace")
        except OSError:
            return ""

    # --- helpers for tests ------------------------------------------------------------
    def source_of(self, host: str, v6: bool) -> str:
        """The source address a host's multicast datagrams carry (link-local for IPv6)."""
        return self.ns[host].link_local(HOST_IF) if v6 else ADDR[host]

    def routes(self, r: str, v6: bool = False) -> dict[tuple[str, str], dict[int, int]]:
        """The router's kernel MFC: {(source, group): {oif vif: ttl threshold}}."""
        with self.ns[r].enter():
            return kernelstate.mroute_cache(v6)

    def prime(self, group: str, src: str = "h1", ttl: int = 3, timeout: float = 10.0) -> None:
        """Resolve (S,G) on every router on the path so no later datagram is lost.

        Sends one datagram to ``PRIME_PORT`` and waits until each router on the path
        shows the resolved (S,G). Receivers on other ports see nothing; UDP NoPorts
        counters on the LANs reached may increase by one (take deltas after priming)."""
        v6 = ":" in group
        source = self.source_of(src, v6)
        # From LAN A r1 always sees it, r2 only if r1 forwards it (TTL > 1).
        path = {"A": ["r1", "r2"] if ttl > 1 else ["r1"], "B": ["r2"], "C": []}[LAN_OF[src]]
        _send_one(self.ns[src], group, PRIME_PORT, ttl)
        for r in path:
            wait_until(lambda r=r: self.routes(r, v6).get((source, group)),  # type: ignore[misc]
                       timeout, what=f"({source}, {group}) resolved on {r}")

    def wait_members(self, group: str, *hosts: str, timeout: float = 10.0) -> None:
        """Wait until the snooping bridges have learnt each host's membership of ``group``.

        A join's IGMP/MLD report leaves the host a few milliseconds after setsockopt
        returns, so a sender that starts at once races it. Once the bridges have elected
        their querier they no longer flood unknown groups, and the race loses datagrams
        (observed: 0/3 delivered on LAN A and B after ~20 s of lab uptime). On a real
        network receivers join before senders start; tests say so with this wait."""
        ports = [BRIDGE_PORT[h] for h in hosts if h in BRIDGE_PORT]

        def learnt() -> bool:
            text = self.mdb()
            return all(f"port {p} grp {group} " in text for p in ports)

        wait_until(learnt, timeout, what=f"bridges learnt {group} on {', '.join(ports)}")

    def send(self, src: str, group: str, port: int, payload: bytes, ttl: int) -> None:
        """Send one datagram from host ``src`` out of its eth0 with TTL/hop limit ``ttl``."""
        _send_one(self.ns[src], group, port, ttl, payload)

    def mdb(self) -> str:
        """``bridge -d mdb show`` in the switch namespace (snooping state)."""
        return self.ns["sw"].run("bridge", "-d", "mdb", "show").stdout

    # --- teardown --------------------------------------------------------------------
    def down(self) -> None:
        """Stop routers (by their own PID), delete namespaces, check nothing is left."""
        t0 = time.monotonic()
        _running.discard(self)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for ns in self.ns.values():
            ns.delete()
        left = [n for n in our_namespaces() if n.split("-", 1)[1].startswith(self.tag)]
        alive = [r for r, p in self.procs.items() if p.poll() is None]
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
        self.down_seconds = time.monotonic() - t0
        if left or alive:
            raise RuntimeError(f"lab teardown left namespaces {left} routers {alive}")


class VethPair:
    """Namespaces ``a`` and ``b`` joined by one veth pair ``eth0``<->``eth0``.

    a: 198.18.9.1/24, b: 198.18.9.2/24; IPv6 link-local addresses ready (DAD off)."""

    def __init__(self) -> None:
        self.a = Netns.fresh("pa")
        try:
            self.b = Netns.fresh("pb")
            veth(self.a, HOST_IF, self.b, HOST_IF)
            self.a.addr_add(HOST_IF, VETH_A + "/24")
            self.b.addr_add(HOST_IF, VETH_B + "/24")
            self.addr_a, self.addr_b = VETH_A, VETH_B
            self.ll_a = self.a.link_local(HOST_IF)
            self.ll_b = self.b.link_local(HOST_IF)
            self.ifindex_a = self.a.ifindex(HOST_IF)
            self.ifindex_b = self.b.ifindex(HOST_IF)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.a.delete()
        if hasattr(self, "b"):
            self.b.delete()


class VethLoop:
    """One namespace ``ns`` holding a veth pair ``va``<->``vb`` (IPv6 multicast on one
    host: ``lo`` cannot carry it). No IPv4 addresses; link-local addresses ready."""

    def __init__(self) -> None:
        self.ns = Netns.fresh("vl")
        try:
            veth(self.ns, "va", self.ns, "vb")
            self.ll_va = self.ns.link_local("va")
            self.ll_vb = self.ns.link_local("vb")
            self.ifindex_va = self.ns.ifindex("va")
            self.ifindex_vb = self.ns.ifindex("vb")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.ns.delete()
