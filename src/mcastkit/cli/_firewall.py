"""The firewall findings of ``mcastkit doctor``: ask nftables which rule drops the group.

Owns: reading ``nft -j list ruleset`` (the kernel's own structured view), judging the
group's UDP datagrams and IGMP queries with :mod:`mcastkit.cli._nft`, and turning a drop
into a :class:`Finding` whose fix commands insert an accept *before* the rule that drops
(``nft insert rule FAMILY TABLE CHAIN position HANDLE ...``), in the table and chain
that really hold it. Rule counters, when present, say whether the kernel saw packets hit
that rule. ``iptables-save`` text is scanned only where nft cannot be read.
Must not: change any rule (it prints the commands), make socket calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from mcastkit import Endpoint

from ._doctor_checks import Finding, run_tool
from ._nft import Packet, Verdict, evaluate

__all__ = ["check_firewall", "nft_ruleset", "scan_iptables"]


def nft_ruleset() -> dict[str, Any] | None:
    """The parsed ``nft -j list ruleset``, or None where nft cannot be run or read."""
    text = run_tool("nft", "-j", "list", "ruleset")
    if text is None:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _packets(ep: Endpoint | None, ifname: str) -> list[tuple[str, Packet, str]]:
    """(what, packet, accept-match) for the traffic the target needs to receive."""
    out: list[tuple[str, Packet, str]] = []
    iif = f"iifname {ifname} " if ifname else ""
    if ep is not None and ep.port:
        v = ep.group.version
        ipk = "ip" if v == 4 else "ip6"
        out.append((f"UDP {ep.group} port {ep.port}",
                    Packet(v, ifname, str(ep.group), "udp", ep.port),
                    f"{iif}{ipk} daddr {ep.group} udp dport {ep.port} accept"))
    if ep is None or ep.group.version == 4:
        # IGMP queries (224.0.0.1) must reach the host, or routers and snooping switches
        # stop forwarding after the membership times out
        out.append(("IGMP", Packet(4, ifname, "224.0.0.1", "igmp"),
                    f"{iif}ip protocol igmp accept"))
    if ep is None or ep.group.version == 6:
        # MLD queries (ff02::1, ICMPv6 130): the same for IPv6
        out.append(("MLD queries", Packet(6, ifname, "ff02::1", "ipv6-icmp", icmp_type=130),
                    f"{iif}icmpv6 type mld-listener-query accept"))
    return out


def _fix(v: Verdict, match: str) -> str:
    where = f"{v.family} {v.table} {v.chain}"
    if v.handle is None:  # the chain's policy: accept at the top of the chain
        return f"nft insert rule {where} {match}"
    return f"nft insert rule {where} position {v.handle} {match}"


def _finding(what: str, v: Verdict, match: str) -> Finding:
    rule = (f"rule handle {v.handle} ({v.rule})" if v.handle is not None else
            "its policy drop")
    seen = (f"; its counter shows {v.packets} packet(s) dropped" if v.packets else "")
    certain = "" if v.certain else (" may drop (it depends on a condition doctor cannot "
                                    "judge, such as the sender's address)")
    cmd = _fix(v, match)
    return Finding(
        "firewall", "error" if v.certain else "warning",
        f"nft table {v.family} {v.table}, chain {v.chain}: {rule}{certain or ' drops'} "
        f"{what}",
        "a firewall that drops the port hides the datagrams from every receiver; one that "
        "drops IGMP hides this host's memberships from routers and snooping switches"
        + seen,
        "insert an accept before that rule (the command below)", (cmd,))


def check_firewall(ep: Endpoint | None, ifname: str,
                   ruleset: dict[str, Any] | None = None) -> list[Finding]:
    """Firewall findings for the target on ``ifname`` (nft first, then iptables text)."""
    rs = ruleset if ruleset is not None else nft_ruleset()
    if rs is None:
        return _iptables_findings(ep.port if ep is not None else 0)
    out = [_finding(what, v, match) for what, pkt, match in _packets(ep, ifname)
           if (v := evaluate(rs, pkt)) is not None]
    if not out:
        what = (f"UDP port {ep.port} of {ep.group}" if ep is not None and ep.port else
                "IGMP and MLD queries")
        out.append(Finding("firewall", "ok",
                           f"nftables lets {what} in on {ifname or 'any interface'}"))
    return out


# ------------------------------------------------------------------- iptables (no nft)

def _ports_in(spec: str) -> Iterable[tuple[int, int]]:
    for part in re.split(r"[,{}\s]+", spec):
        if not part:
            continue
        a, _, b = part.partition("-")
        if a.isdigit():
            yield int(a), int(b) if b.isdigit() else int(a)


_IPT_DPORT = re.compile(r"--dports?\s+(\S+)")


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


def _iptables_findings(port: int) -> list[Finding]:
    out: list[Finding] = []
    readable = False
    for tool in ("iptables-save", "ip6tables-save"):
        text = run_tool(tool)
        if text is None:
            continue
        readable = True
        for rule in scan_iptables(text, port):
            out.append(Finding(
                "firewall", "warning", f"{tool} rule may drop UDP port {port} or IGMP: {rule}",
                "nft could not be read, so this is judged from the rule's text",
                "insert an accept before it (iptables -I INPUT N ...), where N is its "
                "position in 'iptables -L INPUT --line-numbers'"))
    if not readable:
        out.append(Finding("firewall", "info", "firewall rules not readable here",
                           "neither 'nft -j list ruleset' nor 'iptables-save' could be run",
                           "run as root to include the firewall checks"))
    elif not out:
        out.append(Finding("firewall", "ok", "no iptables rule drops IGMP"
                           + (f" or UDP port {port}" if port else "")))
    return out
