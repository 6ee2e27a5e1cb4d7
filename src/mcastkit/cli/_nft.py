"""Which nftables rule decides a multicast packet's fate, from ``nft -j list ruleset``.

Owns: a small evaluator of nft's JSON ruleset for one packet as it arrives on an
interface (the multicast UDP datagram, or an IGMP report): base chains of the input
path in hook and priority order (an accept ends one base chain, a drop ends all), rules
in order, jumps and gotos, and three-valued matches (a condition it cannot decide, such
as a source address, makes the verdict "maybe"). A :class:`Verdict` names the family,
table, chain and rule handle, so a fix can be inserted right before the rule that
drops, in the table that really holds it.
Must not: run nft (the caller passes the parsed JSON), change anything, or guess from
the text form of a ruleset.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Packet", "Verdict", "evaluate"]

# the hooks a received packet passes, in order, per nft family
_HOOKS = {"netdev": ("ingress",), "ip": ("prerouting", "input"),
          "ip6": ("prerouting", "input"), "inet": ("prerouting", "input")}
_HOOK_ORDER = {"ingress": 0, "prerouting": 1, "input": 2}
_PKTTYPE = {"host": 0, "broadcast": 1, "multicast": 2, "other": 3}
_PROTO = {"igmp": 2, "udp": 17, "tcp": 6, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58}
_ICMP6 = {"mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
          "mld-listener-reduction": 132, "mld2-listener-report": 143}


@dataclass(frozen=True, slots=True)
class Packet:
    """The packet to judge: what arrives on ``iifname`` for ``daddr``."""

    version: int  # 4 or 6
    iifname: str
    daddr: str
    l4proto: str  # "udp", "igmp" or "ipv6-icmp" (MLD)
    dport: int | None = None
    pkttype: str = "multicast"
    icmp_type: int | None = None  # MLD: 130 query


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where the packet's fate is decided.

    ``action`` is "drop" (a drop/reject rule or a drop policy) or "accept"; ``certain``
    is False when a condition on the way could not be evaluated (the rule *may* match).
    ``handle`` is None for a chain policy. ``packets`` is the rule's counter, if any.
    """

    action: str
    family: str
    table: str
    chain: str
    handle: int | None
    rule: str
    certain: bool
    packets: int | None = None


def _tables(ruleset: Mapping[str, Any]) -> tuple[dict[tuple[str, str, str], dict[str, Any]],
                                                 dict[tuple[str, str, str], list[dict[str, Any]]]]:
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in ruleset.get("nftables", []):
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
    return chains, rules


# ----------------------------------------------------------------------------- matching

def _value_of(left: Mapping[str, Any], p: Packet) -> tuple[bool, Any]:
    """(known, value) of the packet field ``left`` names; ``(True, None)`` means the
    field does not exist for this packet (an IPv4 field of an IPv6 packet: no match)."""
    if "meta" in left:
        key = left["meta"].get("key")
        if key in ("iifname", "iif"):
            return True, p.iifname
        if key == "pkttype":
            return True, p.pkttype
        if key == "l4proto":
            return True, p.l4proto
        if key == "nfproto":
            return True, "ipv4" if p.version == 4 else "ipv6"
        return False, None
    if "payload" in left:
        proto, field = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("ip", "ip6"):
            if (proto == "ip") != (p.version == 4):
                return True, None
            if field == "daddr":
                return True, ipaddress.ip_address(p.daddr)
            if field in ("protocol", "nexthdr"):
                return True, p.l4proto
            return False, None
        if proto == "icmpv6":
            if p.l4proto != "ipv6-icmp":
                return True, None
            return (True, p.icmp_type) if field == "type" else (False, None)
        if proto in ("udp", "th"):
            if p.l4proto != "udp" and proto == "udp":
                return True, None
            if field == "dport":
                return True, p.dport
            return False, None
        return False, None
    if "ct" in left and left["ct"].get("key") == "state":
        return True, "new"  # multicast UDP is never a reply: conntrack sees it as new
    return False, None


def _one(right: Any, value: Any) -> bool:
    if isinstance(right, dict):
        if "prefix" in right:
            pfx = right["prefix"]
            net = ipaddress.ip_network(f"{pfx['addr']}/{pfx['len']}", strict=False)
            return isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address) and \
                value.version == net.version and value in net
        if "range" in right:
            lo, hi = right["range"]
            if isinstance(value, int):
                return int(lo) <= value <= int(hi)
            try:
                return bool(ipaddress.ip_address(lo) <= value <= ipaddress.ip_address(hi))
            except (TypeError, ValueError):
                return False
        if "set" in right:
            return any(_one(x, value) for x in right["set"])
        return False
    if isinstance(right, list):
        return any(_one(x, value) for x in right)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        try:
            return value == ipaddress.ip_address(str(right))
        except ValueError:
            return False
    if isinstance(value, str) and isinstance(right, str):
        if right in _PROTO and value in _PROTO:
            return _PROTO[right] == _PROTO[value]
        return fnmatch.fnmatchcase(value, right.replace("\\*", "*"))
    if isinstance(value, int) and isinstance(right, str):
        return _ICMP6.get(right, -1) == value
    if isinstance(value, str) and isinstance(right, int):
        return _PROTO.get(value, _PKTTYPE.get(value, -1)) == right
    return bool(value == right)


def _match(m: Mapping[str, Any], p: Packet) -> bool | None:
    """True / False, or None when the condition cannot be decided for this packet."""
    known, value = _value_of(m.get("left", {}), p)
    if not known:
        return None
    if value is None:
        return False
    hit = _one(m.get("right"), value)
    op = m.get("op", "==")
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    return None


def describe(expr: Iterable[Mapping[str, Any]]) -> str:
    """A short text form of a rule's expressions, for messages."""
    parts: list[str] = []
    for e in expr:
        if "match" in e:
            m = e["match"]
            left = m.get("left", {})
            name = (left.get("meta", {}).get("key") if "meta" in left else
                    " ".join(str(v) for v in left.get("payload", {}).values()) if "payload"
                    in left else next(iter(left), "?"))
            right = m.get("right")
            if isinstance(right, dict) and "prefix" in right:
                right = f"{right['prefix']['addr']}/{right['prefix']['len']}"
            op = "" if m.get("op") in ("==", "in") else f"{m.get('op')} "
            parts.append(f"{'meta ' if 'meta' in left else ''}{name} {op}{right}")
        elif "counter" in e:
            parts.append("counter")
        else:
            parts += [k for k in e if k in ("accept", "drop", "reject", "jump", "goto",
                                            "return")]
            for k in ("jump", "goto"):
                if k in e:
                    parts.append(str(e[k].get("target")))
    return " ".join(parts)


# ----------------------------------------------------------------------------- evaluation

def _run_chain(key: tuple[str, str, str], rules: Mapping[tuple[str, str, str],
               list[dict[str, Any]]], p: Packet, certain: bool, depth: int = 0
               ) -> tuple[Verdict | None, bool]:
    """(verdict or None to fall through, still certain)."""
    if depth > 16:
        return None, False
    for r in rules.get(key, []):
        ok: bool | None = True
        packets: int | None = None
        for e in r.get("expr", []):
            if "match" in e:
                m = _match(e["match"], p)
                if m is False:
                    ok = False
                    break
                if m is None:
                    ok = None
                continue
            if "counter" in e and isinstance(e["counter"], dict):
                packets = e["counter"].get("packets")
                continue
            verdict = next((k for k in ("accept", "drop", "reject") if k in e), None)
            here = certain and ok is True
            if verdict is not None:
                v = Verdict("accept" if verdict == "accept" else "drop", key[0], key[1],
                            key[2], r.get("handle"), describe(r.get("expr", [])), here,
                            packets)
                if ok is True or verdict != "accept":
                    return v, certain
                break  # an accept that may not apply: keep looking
            for k in ("jump", "goto"):
                if k in e:
                    sub = (key[0], key[1], e[k]["target"])
                    v2, c2 = _run_chain(sub, rules, p, here, depth + 1)
                    if v2 is not None and (v2.action == "drop" or ok is True):
                        return v2, c2
                    if k == "goto" and ok is True:
                        return None, c2
            if "return" in e and ok is True:
                return None, certain
        if ok is None:
            certain = False
    return None, certain


def evaluate(ruleset: Mapping[str, Any], p: Packet) -> Verdict | None:
    """The drop that stops ``p`` on its way in, or None when every base chain lets it
    through. A drop found only past an undecidable condition comes back with
    ``certain=False``."""
    chains, rules = _tables(ruleset)
    fam_ok = {"ip": p.version == 4, "ip6": p.version == 6, "inet": True, "netdev": True}
    base = [c for c in chains.values()
            if c.get("hook") in _HOOKS.get(c["family"], ()) and fam_ok.get(c["family"], False)
            and c.get("type", "filter") == "filter"
            and (c["family"] != "netdev" or c.get("dev") in (None, p.iifname))]
    base.sort(key=lambda c: (_HOOK_ORDER[c["hook"]], int(c.get("prio", 0))))
    for c in base:
        key = (c["family"], c["table"], c["name"])
        v, certain = _run_chain(key, rules, p, True)
        if v is not None and v.action == "drop":
            return v
        if v is None and c.get("policy") == "drop":
            return Verdict("drop", key[0], key[1], key[2], None, "policy drop", certain)
    return None
