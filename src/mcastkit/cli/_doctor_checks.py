"""The host checks of ``mcastkit doctor`` that read kernel state (no firewall).

Owns: :class:`Finding` (severity, why, fix text and the fix *commands*, each runnable as
written), and the checks of an interface (down, no MULTICAST flag, no carrier, no IPv4
address for an IPv4 group, IPv6 over ``lo``), reverse-path filtering, the membership
limit, buffer sysctls, the receive/send backend this install uses (the C accelerator or a
fallback), IPv6 DAD, the TTL needed to reach a peer behind a router (the
kernel's route to it), and UDP error counters judged over a time window (an old burst
is history, not a problem).
Must not: change any setting, make socket calls (it reads /proc and asks ``ip``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field

from mcastkit import Interface, _io

from ._procnet import parse_if_inet6, parse_snmp, parse_snmp6, read_net, read_sysctl

__all__ = [
    "Finding",
    "check_backend",
    "check_buffers",
    "check_counters",
    "check_dad",
    "check_interface",
    "check_memberships",
    "check_rp_filter",
    "check_ttl",
    "read_counters",
    "run_tool",
]

USEFUL_RMEM = 8 * 1024 * 1024
DEFAULT_MAX_MEMBERSHIPS = 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``check`` is a stable id (``rp_filter``, ``firewall``...).

    ``fix`` explains the fix; ``commands`` are shell commands that apply it, runnable as
    written (empty when the fix needs a choice only the user can make).
    """

    check: str
    severity: str
    title: str
    detail: str = ""
    fix: str = ""
    commands: tuple[str, ...] = field(default=())

    @property
    def problem(self) -> bool:
        return self.severity in ("warning", "error")


def run_tool(*cmd: str, timeout: float = 10.0) -> str | None:
    """stdout of a tool that exited 0, or None (missing, failed, timed out)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def check_interface(itf: Interface, version: int | None) -> list[Finding]:
    """Flags, carrier and addresses of the interface used for ``version`` (None: any)."""
    fl = itf.flags
    if fl is None:
        return [Finding("interface", "warning", f"{itf.name}: flags unreadable")]
    out: list[Finding] = []
    n = itf.name
    if not fl.up:
        out.append(Finding("interface", "error", f"{n} is down",
                           "nothing is sent or received on an interface that is down",
                           f"bring it up: ip link set dev {n} up",
                           (f"ip link set dev {n} up",)))
    elif not fl.running and not fl.loopback:
        out.append(Finding("interface", "error", f"{n} is up but has no carrier (NO-CARRIER)",
                           "the link below it is down: a cable unplugged, a switch port "
                           "off, or the other end of a veth down; nothing goes in or out",
                           "connect the cable / enable the switch port; for a veth, bring "
                           "the other end up (ip link set dev PEER up in its namespace)"))
    if not fl.multicast:
        if fl.loopback:
            out.append(Finding("interface", "info", f"{n} has no MULTICAST flag",
                               "loopback still delivers IPv4 multicast locally when the "
                               "socket is pinned to it (-i lo)"))
        else:
            out.append(Finding("interface", "warning", f"{n} lacks the MULTICAST flag",
                               "Linux still joins and sends through it when a program names "
                               "it (-i), but software that picks interfaces by this flag "
                               "(multicast routing daemons such as smcroute, mDNS daemons) "
                               "leaves it out", f"ip link set dev {n} multicast on",
                               (f"ip link set dev {n} multicast on",)))
    if version == 6 and fl.loopback:
        out.append(Finding("interface", "error", f"IPv6 multicast does not work over {n}",
                           "Linux loops IPv6 multicast back only on an interface that can "
                           "send it; lo cannot, so joins succeed and nothing ever arrives",
                           "use a real or veth interface: -i eth0 (mcastkit interfaces "
                           "lists them)"))
    if version == 4 and not fl.loopback and not any(a.version == 4 for a in itf.addresses):
        out.append(Finding("interface", "warning", f"{n} has no IPv4 address",
                           "datagrams and IGMP reports leave from 0.0.0.0: many routers, "
                           "snooping switches and receivers drop them",
                           f"give it an address of its subnet: ip addr add ADDRESS/PREFIX "
                           f"dev {n}"))
    if not out:
        out.append(Finding("interface", "ok",
                           f"{n} is up, running, with MULTICAST (mtu {itf.mtu})"))
    return out


def check_rp_filter(targets: list[Interface], all_ifaces: list[Interface]) -> list[Finding]:
    homed = [i for i in all_ifaces
             if not (i.flags and i.flags.loopback) and any(a.version == 4 for a in i.addresses)]
    all_v = read_sysctl("net.ipv4.conf.all.rp_filter")
    out: list[Finding] = []
    for itf in targets:
        own = read_sysctl(f"net.ipv4.conf.{itf.name}.rp_filter")
        vals = [int(v) for v in (all_v, own) if v is not None and v.isdigit()]
        eff = max(vals) if vals else 0
        if eff == 1 and len(homed) >= 2:
            cmd = (f"sysctl -w net.ipv4.conf.all.rp_filter=2 "
                   f"net.ipv4.conf.{itf.name}.rp_filter=2")
            out.append(Finding(
                "rp_filter", "warning",
                f"strict reverse-path filtering (rp_filter=1) on {itf.name} of a multi-homed host",
                f"{len(homed)} interfaces have IPv4 addresses; multicast from a source whose "
                f"unicast route points out of another interface is dropped silently "
                f"(all={all_v}, {itf.name}={own}; the higher value wins)",
                f"{cmd} (loose), or route the sources via this interface", (cmd,)))
        else:
            out.append(Finding("rp_filter", "ok", f"rp_filter={eff} on {itf.name}"
                               + (" (single-homed)" if eff == 1 else "")))
    return out


def check_memberships() -> list[Finding]:
    v = read_sysctl("net.ipv4.igmp_max_memberships")
    if v is None or not v.isdigit():
        return [Finding("igmp_max_memberships", "info", "igmp_max_memberships unreadable")]
    n = int(v)
    if n < DEFAULT_MAX_MEMBERSHIPS:
        cmd = "sysctl -w net.ipv4.igmp_max_memberships=1024"
        return [Finding(
            "igmp_max_memberships", "warning",
            f"net.ipv4.igmp_max_memberships is {n} (default {DEFAULT_MAX_MEMBERSHIPS})",
            f"one socket cannot join more than {n} IPv4 groups; further joins fail with "
            "ENOBUFS", cmd, (cmd,))]
    return [Finding("igmp_max_memberships", "ok", f"igmp_max_memberships={n}")]


def check_buffers() -> list[Finding]:
    out: list[Finding] = []
    for key in ("net.core.rmem_max", "net.core.rmem_default"):
        v = read_sysctl(key)
        if v is None or not v.isdigit():
            out.append(Finding("buffers", "info", f"{key} unreadable here"))
            continue
        n = int(v)
        if n < USEFUL_RMEM:
            cmd = f"sysctl -w {key}={USEFUL_RMEM}" if key.endswith("max") else \
                f"sysctl -w {key}=1048576"
            out.append(Finding(
                "buffers", "info", f"{key} = {n} B ({n // 1024} KiB)",
                "a high-rate stream (tens of thousands of datagrams/s) overflows a small "
                "receive buffer in bursts; see RcvbufErrors",
                f"{cmd}; then 'mcastkit listen --rcvbuf 8M'" if key.endswith("max") else cmd))
        else:
            out.append(Finding("buffers", "ok", f"{key} = {n} B"))
    return out


def check_backend() -> list[Finding]:
    """Which batched receive/send backend runs here: the C accelerator, or a fallback
    (pip installs without it, after one warning, where no C compiler was found)."""
    impl = _io.current_impl()
    if impl == "c":
        return [Finding("backend", "ok", "the C accelerator is loaded (batched receive and "
                                         "send in C)")]
    if "c" in _io.available_impls():
        return [Finding("backend", "info", f"the {impl} backend is forced (MCASTKIT_BATCH); "
                        "the C accelerator is installed",
                        fix="unset MCASTKIT_BATCH to use the accelerator")]
    return [Finding(
        "backend", "info", f"the C accelerator is not built: batched I/O uses the {impl} "
        "fallback (correct, but several times slower per datagram at high rates)",
        "it is compiled when mcastkit is installed on a machine with a C compiler and the "
        "Python headers",
        "install gcc and the Python development headers, then reinstall mcastkit from "
        "source: pip install --force-reinstall --no-binary mcastkit mcastkit")]


def check_dad(targets: list[Interface]) -> list[Finding]:
    text = read_net("if_inet6")
    if text is None:
        return []
    names = {i.name for i in targets}
    out: list[Finding] = []
    for a in parse_if_inet6(text):
        if names and a.ifname not in names:
            continue
        if a.dad_failed:
            out.append(Finding("ipv6_dad", "error", f"{a.address} on {a.ifname} failed DAD",
                               "another host has the same address; it is unusable",
                               "change the address (or the MAC behind the link-local)"))
        elif a.tentative:
            out.append(Finding("ipv6_dad", "warning",
                               f"{a.address} on {a.ifname} is tentative (DAD in progress)",
                               "until DAD ends, binding to it fails and MLD reports go out "
                               "from ::; early IPv6 joins and sends can fail",
                               "wait a second, or turn DAD off for lab links: sysctl -w "
                               f"net.ipv6.conf.{a.ifname}.accept_dad=0"))
    return out


def check_ttl(peer: str | None, ttl: int) -> list[Finding]:
    """Is ``peer`` behind a router (the kernel's route to it has a gateway)? Then a TTL
    of 1 cannot reach it: every router decrements the TTL and drops it at 0."""
    if peer is None:
        return []
    text = run_tool("ip", "-j", "route", "get", peer)
    try:
        routes = json.loads(text) if text else []
    except ValueError:
        routes = []
    if not routes:
        return [Finding("ttl", "info", f"no route to the peer {peer}",
                        "the TTL needed to reach it cannot be judged",
                        "check the address, or add a route: ip route add PREFIX via ROUTER")]
    gw = routes[0].get("gateway")
    if gw is None:
        return [Finding("ttl", "ok", f"{peer} is on this link (TTL {ttl} reaches it)")]
    if ttl <= 1:
        return [Finding("ttl", "error",
                        f"{peer} is behind router {gw}: TTL {ttl} does not cross it",
                        "each multicast router decrements the TTL and drops datagrams that "
                        "arrive with TTL 1; 'mcastkit ping' then only says no peer answered",
                        "send with --ttl 2 or more (one more than the routers between), "
                        "e.g. mcastkit ping GROUP:PORT -i IFACE --ttl 2")]
    return [Finding("ttl", "ok", f"{peer} is behind router {gw}; TTL {ttl} crosses "
                                 f"{ttl - 1} router(s)")]


_COUNTERS = (("Udp RcvbufErrors", "Udp", "RcvbufErrors"),
             ("Udp SndbufErrors", "Udp", "SndbufErrors"),
             ("Udp6 RcvbufErrors", "Udp6", "Udp6RcvbufErrors"),
             ("Udp6 SndbufErrors", "Udp6", "Udp6SndbufErrors"))


def read_counters() -> dict[str, int]:
    """The UDP buffer error counters of this namespace, now."""
    snmp = read_net("snmp")
    udp = parse_snmp(snmp).get("Udp", {}) if snmp else {}
    snmp6 = read_net("snmp6")
    u6 = parse_snmp6(snmp6) if snmp6 else {}
    return {label: (udp if proto == "Udp" else u6).get(key, 0)
            for label, proto, key in _COUNTERS}


def check_counters(before: dict[str, int], after: dict[str, int], window_s: float
                   ) -> list[Finding]:
    """Counters that grew during the ``window_s`` seconds of this run are a problem; a
    total from earlier is reported as history (info), so an old burst does not fail
    every later run."""
    out: list[Finding] = []
    for label, _, _ in _COUNTERS:
        grew = after.get(label, 0) - before.get(label, 0)
        total = after.get(label, 0)
        rcv = "Rcv" in label
        why = ("datagrams were dropped because a socket buffer was full" if rcv else
               "sends failed because the send buffer was full")
        fix = ("raise net.core.rmem_max and use a bigger receive buffer (--rcvbuf 8M), or "
               "read faster" if rcv else "pace the sender (--rate) or raise "
               "net.core.wmem_max")
        if grew > 0:
            out.append(Finding("udp_errors", "warning",
                               f"{label} grew by {grew} in the last {window_s:g} s (now {total})",
                               why + ", right now", fix))
        elif total > 0:
            out.append(Finding("udp_errors", "info",
                               f"{label} = {total} since boot, none in the last {window_s:g} s",
                               why + " at some earlier time (an old burst: not happening now)"))
    if not out:
        out.append(Finding("udp_errors", "ok", "no UDP buffer errors counted"))
    return out
