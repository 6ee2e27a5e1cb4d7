"""``mcastkit doctor``: find and explain what stops multicast on this host.

Owns: the checks (route and join, interface flags, rp_filter, membership limit, buffer
sysctls, firewall rules, IP_MULTICAST_ALL, IPv6 DAD, UDP error counters), each a
:class:`Finding` with a severity and a fix. Exit 1 when any finding is a problem
(warning or error).
Must not: change any setting; make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from mcastkit import (
    Endpoint,
    ErrorCode,
    Group,
    Interface,
    McastError,
    MulticastSocket,
    list_interfaces,
    parse_endpoint,
)

from .._common import CliError, emit_json, interface_of
from .._env import Env
from .._procnet import parse_if_inet6, parse_snmp, parse_snmp6, read_net, read_sysctl
from .._status import ExitStatus

HELP = "check this host for common multicast problems and explain the fixes"
DESCRIPTION = """\
Check the current network namespace for what commonly breaks multicast: no route or
no usable interface for the group, an interface that is down or lacks the MULTICAST
flag, strict reverse-path filtering on a multi-homed host, a low
igmp_max_memberships, small socket buffers, firewall rules dropping IGMP or the port,
IPv6 addresses still in duplicate address detection, and UDP buffer error counters.
Each finding has a severity (ok, info, warning, error) and a fix. Exit status 1 when
any warning or error is found. Nothing is changed."""
EXAMPLES = """\
  mcastkit doctor
  mcastkit doctor 239.255.0.1:5000 -i eth0
  mcastkit doctor [ff15::1]:5000 -i eth0 --json
  mcastkit doctor 239.255.0.1 --all        # also show the checks that passed"""

SEVERITIES = ("ok", "info", "warning", "error")
USEFUL_RMEM = 8 * 1024 * 1024
DEFAULT_MAX_MEMBERSHIPS = 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``check`` is a stable id (``rp_filter``, ``firewall``...)."""

    check: str
    severity: str
    title: str
    detail: str = ""
    fix: str = ""

    @property
    def problem(self) -> bool:
        return self.severity in ("warning", "error")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="GROUP[:PORT]",
                   help="group (and port) to check the route, join and firewall for")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface to check (name, index or address); default: the route's")
    p.add_argument("--all", action="store_true", help="also print the checks that passed")


def _target(text: str | None) -> Endpoint | None:
    if text is None:
        return None
    try:
        return parse_endpoint(text, default_port=0)
    except McastError as exc:
        raise CliError(f"GROUP {text!r}: {exc.message}", ExitStatus.USAGE) from None


# ----------------------------------------------------------------------------- checks

def check_join(ep: Endpoint | None, iface: Interface | None) -> tuple[list[Finding],
                                                                         Interface | None]:
    """Join the group for real (through the core) to find the interface and any error."""
    if ep is None:
        return [Finding("route", "info", "no GROUP given: route and join not checked",
                        fix="run 'mcastkit doctor GROUP[:PORT] -i IFACE'")], iface
    out: list[Finding] = []
    g: Group = ep.group
    try:
        with MulticastSocket(g.version, interface=iface) as s:
            s.bind(0)
            m = s.join_source(ep.source, g) if ep.source is not None else s.join(g)
            chosen = iface
            if chosen is None:
                chosen = next((i for i in list_interfaces() if i.index == m.ifindex), None)
            out.append(Finding("join", "ok", f"joined {g} on {m.ifname}"))
            return out, chosen
    except McastError as exc:
        if exc.code is ErrorCode.NO_ROUTE:
            out.append(Finding(
                "route", "error", f"no multicast route for {g}",
                "there is no route that covers the group, so the kernel cannot choose an "
                "interface for joins and sends (typical of containers and hosts without a "
                "default route)",
                f"pass -i IFACE to every program, or add a route: "
                f"ip route add {'224.0.0.0/4' if g.version == 4 else 'ff00::/8'} dev IFACE"))
        else:
            out.append(Finding("join", "error", f"joining {g} failed", exc.message,
                               "see the detail; 'mcastkit interfaces' lists the interfaces"))
        return out, iface


def check_interface(itf: Interface) -> list[Finding]:
    fl = itf.flags
    if fl is None:
        return [Finding("interface", "warning", f"{itf.name}: flags unreadable")]
    out: list[Finding] = []
    if not fl.up:
        out.append(Finding("interface", "error", f"{itf.name} is down",
                           "nothing is sent or received on an interface that is down",
                           f"ip link set dev {itf.name} up"))
    if not fl.multicast:
        if fl.loopback:
            out.append(Finding("interface", "info", f"{itf.name} has no MULTICAST flag",
                               "loopback still delivers multicast locally when the socket "
                               "is pinned to it (-i lo)"))
        else:
            out.append(Finding("interface", "error", f"{itf.name} lacks the MULTICAST flag",
                               "the kernel refuses to send multicast out of it and will not "
                               "report joins on it",
                               f"ip link set dev {itf.name} multicast on"))
    if not out:
        out.append(Finding("interface", "ok", f"{itf.name} is up with MULTICAST (mtu {itf.mtu})"))
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
            out.append(Finding(
                "rp_filter", "warning",
                f"strict reverse-path filtering (rp_filter=1) on {itf.name} of a multi-homed host",
                f"{len(homed)} interfaces have IPv4 addresses; multicast from a source whose "
                f"unicast route points out of another interface is dropped silently "
                f"(all={all_v}, {itf.name}={own}; the higher value wins)",
                f"sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{itf.name}.rp_filter=2 "
                "(loose), or route the sources via this interface"))
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
        return [Finding(
            "igmp_max_memberships", "warning",
            f"net.ipv4.igmp_max_memberships is {n} (default {DEFAULT_MAX_MEMBERSHIPS})",
            f"one socket cannot join more than {n} IPv4 groups; further joins fail with "
            "ENOBUFS",
            "sysctl -w net.ipv4.igmp_max_memberships=1024")]
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
            out.append(Finding(
                "buffers", "info", f"{key} = {n} B ({n // 1024} KiB)",
                "a high-rate stream (tens of thousands of datagrams/s) overflows a small "
                "receive buffer in bursts; see RcvbufErrors",
                f"sysctl -w {key}={USEFUL_RMEM}; then 'mcastkit listen --rcvbuf {USEFUL_RMEM}'"
                if key.endswith("max") else f"sysctl -w {key}=1048576"))
        else:
            out.append(Finding("buffers", "ok", f"{key} = {n} B"))
    return out


def _ports_in(spec: str) -> Iterable[tuple[int, int]]:
    for part in re.split(r"[,{}\s]+", spec):
        if not part:
            continue
        a, _, b = part.partition("-")
        if a.isdigit():
            yield int(a), int(b) if b.isdigit() else int(a)


_NFT_DPORT = re.compile(r"udp\s+dport\s+(\{[^}]*\}|\S+)")
_IPT_DPORT = re.compile(r"--dports?\s+(\S+)")


def scan_nft(text: str, port: int) -> list[str]:
    """Rules of an ``nft list ruleset`` that drop IGMP or UDP ``port`` (or a drop policy)."""
    hits: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if "policy drop" in line and "input" in line:
            hits.append(line)
            continue
        if not re.search(r"\b(drop|reject)\b", line):
            continue
        if "igmp" in line or "ip protocol 2 " in line:
            hits.append(line)
            continue
        m = _NFT_DPORT.search(line)
        if port and m and any(lo <= port <= hi for lo, hi in _ports_in(m.group(1))):
            hits.append(line)
    return hits


def scan_iptables(text: str, port: int) -> list[str]:
    """Rules of ``iptables-save`` output that drop IGMP or UDP ``port`` (or a drop policy)."""
    hits: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(":INPUT DROP"):
            hits.append(line)
            continue
        if not re.search(r"-j (DROP|REJECT)\b", line):
            continue
        if re.search(r"-p (igmp|2)\b", line):
            hits.append(line)
            continue
        m = _IPT_DPORT.search(line)
        if port and "udp" in line and m and any(
                lo <= port <= hi for lo, hi in _ports_in(m.group(1).replace(":", "-"))):
            hits.append(line)
    return hits


def _run_tool(*cmd: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def check_firewall(port: int) -> list[Finding]:
    out: list[Finding] = []
    readable = False
    for tool, cmd, scan in (("nft", ("nft", "list", "ruleset"), scan_nft),
                            ("iptables", ("iptables-save",), scan_iptables),
                            ("ip6tables", ("ip6tables-save",), scan_iptables)):
        text = _run_tool(*cmd)
        if text is None:
            continue
        readable = True
        for rule in scan(text, port):
            what = f"UDP port {port} or IGMP" if port else "IGMP"
            out.append(Finding(
                "firewall", "warning", f"{tool} rule may drop {what}: {rule}",
                "a firewall that drops IGMP hides joins from switches and routers; one that "
                "drops the port hides the datagrams from every receiver",
                "add an accept rule before it, e.g. nft add rule inet filter input "
                f"ip protocol igmp accept; nft add rule inet filter input udp dport "
                f"{port or 'PORT'} accept"))
    if not readable:
        out.append(Finding("firewall", "info", "firewall rules not readable here",
                           "neither 'nft list ruleset' nor 'iptables-save' could be run",
                           "run as root to include the firewall checks"))
    elif not out:
        out.append(Finding("firewall", "ok", "no firewall rule drops IGMP"
                           + (f" or UDP port {port}" if port else "")))
    return out


def check_multicast_all() -> list[Finding]:
    return [Finding(
        "multicast_all", "info", "IP_MULTICAST_ALL defaults to 1 on Linux",
        "a socket bound to 0.0.0.0:PORT receives every group that any socket of this "
        "namespace joined on that port; mcastkit turns it off on its own sockets",
        "in other programs set IP_MULTICAST_ALL=0 or bind to the group address")]


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


def check_counters() -> list[Finding]:
    out: list[Finding] = []
    snmp = read_net("snmp")
    udp = parse_snmp(snmp).get("Udp", {}) if snmp else {}
    snmp6 = read_net("snmp6")
    u6 = parse_snmp6(snmp6) if snmp6 else {}
    for label, val in (("Udp RcvbufErrors", udp.get("RcvbufErrors", 0)),
                       ("Udp SndbufErrors", udp.get("SndbufErrors", 0)),
                       ("Udp6 RcvbufErrors", u6.get("Udp6RcvbufErrors", 0)),
                       ("Udp6 SndbufErrors", u6.get("Udp6SndbufErrors", 0))):
        if val > 0:
            rcv = "Rcv" in label
            out.append(Finding(
                "udp_errors", "warning", f"{label} = {val}",
                "datagrams were dropped because a socket buffer was full"
                if rcv else "sends failed because the send buffer was full",
                "raise net.core.rmem_max and use a bigger receive buffer (--rcvbuf), or read "
                "faster" if rcv else "pace the sender (--rate) or raise net.core.wmem_max"))
    if not out:
        out.append(Finding("udp_errors", "ok", "no UDP buffer errors counted"))
    return out


# ----------------------------------------------------------------------------- run

def diagnose(ep: Endpoint | None, iface: Interface | None) -> list[Finding]:
    """Every finding for ``ep`` on ``iface`` (None: the route's / all interfaces)."""
    findings, chosen = check_join(ep, iface)
    all_ifaces = list_interfaces()
    if chosen is not None:
        targets = [next((i for i in all_ifaces if i.index == chosen.index), chosen)]
    else:
        targets = [i for i in all_ifaces if not (i.flags and i.flags.loopback)] or all_ifaces
    for itf in targets:
        findings += check_interface(itf)
    findings += check_rp_filter(targets, all_ifaces)
    findings += check_memberships()
    findings += check_buffers()
    findings += check_firewall(ep.port if ep is not None else 0)
    findings += check_multicast_all()
    if ep is None or ep.group.version == 6:
        findings += check_dad(targets)
    findings += check_counters()
    return findings


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = _target(args.target)
    iface = interface_of(args.interface)
    findings = diagnose(ep, iface)
    problems = [f for f in findings if f.problem]
    for f in findings:
        if args.json:
            emit_json(env, {"type": "finding", **asdict(f), "problem": f.problem})
            continue
        if f.severity == "ok" and not args.all:
            continue
        env.out(f"[{f.severity.upper()}] {f.title}")
        if f.detail:
            env.out(f"    why: {f.detail}")
        if f.fix:
            env.out(f"    fix: {f.fix}")
    if args.json:
        emit_json(env, {"type": "summary", "findings": len(findings), "problems": len(problems)})
    else:
        env.out(f"{len(problems)} problem(s) found" if problems else "no problems found")
    return ExitStatus.ERROR if problems else ExitStatus.OK
