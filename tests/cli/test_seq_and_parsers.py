"""The sequence payload format, StreamStats and the /proc and firewall parsers."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from mcastkit import seq as _seq
from mcastkit.cli import _procnet
from tests.support.addrs import G4, G6, G6_OTHER, lab_host


def test_pack_parse_roundtrip_and_padding() -> None:
    data = _seq.pack(0xDEADBEEF, 42, 123456789, 100)
    assert len(data) == 100
    h = _seq.parse(data)
    assert h == _seq.SeqHeader(_seq.Kind.DATA, 0xDEADBEEF, 42, 123456789, 100)


def test_parse_rejects_foreign_payloads() -> None:
    assert _seq.parse(b"hello world") is None
    assert _seq.parse(b"X" * 64) is None
    bad_version = bytearray(_seq.pack(1, 1, 1))
    bad_version[4] = 9
    assert _seq.parse(bytes(bad_version)) is None


@given(st.binary(max_size=80))
def test_parse_never_raises(data: bytes) -> None:
    _seq.parse(data)
    _seq.parse_iperf2(data)


def test_reply_carries_probe_and_responder() -> None:
    probe = _seq.parse(_seq.pack(7, 3, 99, kind=_seq.Kind.PROBE))
    assert probe is not None
    reply = _seq.pack_reply(probe, 0xABCD)
    h = _seq.parse(reply)
    assert h is not None and h.kind is _seq.Kind.REPLY
    assert (h.stream_id, h.seq, h.ts_ns) == (7, 3, 99)
    assert _seq.parse_reply_responder(reply) == 0xABCD


def _feed(seqs: list[int], **kw: int) -> _seq.StreamStats:
    s = _seq.StreamStats(**kw)
    for i, n in enumerate(seqs):
        s.add("a", n, 100, float(i))
    return s


def test_stats_clean_stream() -> None:
    t = _feed(list(range(10))).total()
    assert (t.datagrams, t.expected, t.lost, t.reordered, t.duplicates) == (10, 10, 0, 0, 0)
    assert t.pps > 0


def test_stats_loss_reorder_duplicate() -> None:
    t = _feed([0, 1, 3, 2, 2, 5, 7]).total()
    assert t.expected == 8
    assert t.lost == 2  # 4 and 6
    assert t.reordered == 1
    assert t.duplicates == 1


def test_stats_window_is_bounded() -> None:
    s = _feed([0, 100, 1], window=16)
    t = s.total()
    assert t.reordered == 1 and t.duplicates == 0  # too late to tell: counted once


def test_stats_bounded_number_of_streams() -> None:
    s = _seq.StreamStats(max_streams=3)
    for k in range(10):
        s.add(k, 0, 10, 0.0)
    assert len(s) == 3 and s.evicted == 7


def test_stats_end_marker_reveals_tail_loss() -> None:
    s = _feed(list(range(5)))
    s.set_expected("a", 8)
    t = s.total()
    assert t.expected == 8 and t.lost == 3 and round(t.loss_pct) == 38


def test_parse_iperf2() -> None:
    assert _seq.parse_iperf2(struct.pack(">iII", 5, 1, 2) + bytes(20)) == (5, False)
    assert _seq.parse_iperf2(struct.pack(">iII", -9, 1, 2)) == (9, True)
    assert _seq.parse_iperf2(b"abc") is None


IGMP = """Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     2      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
\t\t\t\t0100FFEF     1 0:00000000\t\t0
"""
IGMP6 = ("1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
         "1    lo              ff150000000000000000000000000009     1 00000004 0\n")
IF_INET6 = ("fe800000000000000000000000000001 02 40 20 40     eth0\n"
            "00000000000000000000000000000001 01 80 10 80       lo\n"
            "fe800000000000000000000000000002 03 40 20 c8     eth1\n")
SNMP = ("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
        "Udp: 10 0 3 5 3 0\n")


def test_procnet_parsers() -> None:
    assert _procnet.parse_igmp(IGMP) == [("lo", "224.0.0.1"), ("lo", G4)]
    assert _procnet.parse_igmp6(IGMP6) == [("lo", "ff02::1"), ("lo", G6_OTHER)]
    v6 = _procnet.parse_if_inet6(IF_INET6)
    assert [(a.ifname, a.tentative, a.dad_failed) for a in v6] == [
        ("eth0", True, False), ("lo", False, False), ("eth1", True, True)]
    assert _procnet.parse_snmp(SNMP)["Udp"]["RcvbufErrors"] == 3
    assert _procnet.parse_snmp6("Udp6RcvbufErrors 4\nbad line here\n") == {"Udp6RcvbufErrors": 4}


def _rs(*rules: list[dict[str, object]], policy: str = "accept") -> dict[str, object]:
    items: list[dict[str, object]] = [
        {"chain": {"family": "inet", "table": "t", "name": "in", "hook": "input",
                   "prio": 0, "type": "filter", "policy": policy}},
        {"chain": {"family": "inet", "table": "t", "name": "sub"}}]
    for i, expr in enumerate(rules, 2):
        chain = "sub" if any("sub-rule" in e for e in expr) else "in"
        items.append({"rule": {"family": "inet", "table": "t", "chain": chain, "handle": i,
                               "expr": [e for e in expr if "sub-rule" not in e]}})
    return {"nftables": items}


def _m(left: dict[str, object], right: object, op: str = "==") -> dict[str, object]:
    return {"match": {"op": op, "left": left, "right": right}}


DPORT = {"payload": {"protocol": "udp", "field": "dport"}}
DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
IIF = {"meta": {"key": "iifname"}}
DROP: dict[str, object] = {"drop": None}
ACCEPT: dict[str, object] = {"accept": None}


def test_nft_evaluator_on_json() -> None:
    from mcastkit.cli._nft import Packet, evaluate

    p = Packet(4, "eth0", G4, "udp", 5005)
    igmp = Packet(4, "eth0", "224.0.0.1", "igmp")
    ports = {"set": [4000, {"range": [5000, 5010]}]}
    v = evaluate(_rs([_m(DPORT, ports), DROP]), p)
    assert v is not None and v.handle == 2 and v.certain and (v.table, v.chain) == ("t", "in")
    assert evaluate(_rs([_m(DPORT, ports), DROP]), Packet(4, "eth0", G4, "udp",
                                                          6000)) is None
    assert evaluate(_rs([_m(DPORT, ports), DROP]), igmp) is None
    pfx = {"prefix": {"addr": "239.0.0.0", "len": 8}}
    assert evaluate(_rs([_m(DADDR, pfx), DROP]), p) is not None
    assert evaluate(_rs([_m(DADDR, pfx, "!="), DROP]), p) is None
    # an IPv4 match never applies to an IPv6 packet
    assert evaluate(_rs([_m(DADDR, pfx), DROP]), Packet(6, "eth0", G6, "udp", 1)) is None
    # accept before the drop; a drop for another interface (wildcard too)
    assert evaluate(_rs([_m(DPORT, 5005), ACCEPT], [_m(DPORT, 5005), DROP]), p) is None
    assert evaluate(_rs([_m(IIF, "wlan*"), DROP]), p) is None
    assert evaluate(_rs([_m(IIF, "eth*"), DROP]), p) is not None
    # the policy, and a jump into a chain that drops
    v = evaluate(_rs(policy="drop"), p)
    assert v is not None and v.handle is None and v.rule == "policy drop"
    v = evaluate(_rs([{"jump": {"target": "sub"}}], [{"sub-rule": 1}, _m(DPORT, 5005),
                                                     {"reject": None}]), p)
    assert v is not None and v.chain == "sub" and v.handle == 3
    # a source address cannot be judged: "may drop" (not certain)
    v = evaluate(_rs([_m(SADDR, lab_host(0, 9)), _m(DPORT, 5005), DROP]), p)
    assert v is not None and not v.certain
    # an accept that may not apply does not hide a later drop, which is then uncertain
    v = evaluate(_rs([_m(SADDR, lab_host(0, 9)), ACCEPT], [_m(DPORT, 5005), DROP]), p)
    assert v is not None and v.handle == 3 and not v.certain
    # IGMP by protocol name or number, pkttype multicast
    proto = {"payload": {"protocol": "ip", "field": "protocol"}}
    assert evaluate(_rs([_m(proto, "igmp"), DROP]), igmp) is not None
    assert evaluate(_rs([_m({"meta": {"key": "l4proto"}}, 2), DROP]), igmp) is not None
    assert evaluate(_rs([_m({"meta": {"key": "pkttype"}}, "multicast"), DROP]), p) is not None


def test_iptables_scanner_when_nft_is_unreadable() -> None:
    from mcastkit.cli._firewall import scan_iptables

    ipt = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 5000 -j DROP\n"
           "-A INPUT -p igmp -j REJECT\n-A INPUT -p tcp --dport 5000 -j DROP\nCOMMIT\n")
    assert len(scan_iptables(ipt, 5000)) == 2
    assert len(scan_iptables(ipt, 5001)) == 1
