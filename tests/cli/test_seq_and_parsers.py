"""The sequence payload format, StreamStats and the /proc and firewall parsers."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from mcastkit.cli import _procnet, _seq
from mcastkit.cli.commands import doctor


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
    assert _procnet.parse_igmp(IGMP) == [("lo", "224.0.0.1"), ("lo", "239.255.0.1")]
    assert _procnet.parse_igmp6(IGMP6) == [("lo", "ff02::1"), ("lo", "ff15::9")]
    v6 = _procnet.parse_if_inet6(IF_INET6)
    assert [(a.ifname, a.tentative, a.dad_failed) for a in v6] == [
        ("eth0", True, False), ("lo", False, False), ("eth1", True, True)]
    assert _procnet.parse_snmp(SNMP)["Udp"]["RcvbufErrors"] == 3
    assert _procnet.parse_snmp6("Udp6RcvbufErrors 4\nbad line here\n") == {"Udp6RcvbufErrors": 4}


def test_firewall_scanners() -> None:
    nft = """table inet filter {
        chain input {
                type filter hook input priority filter; policy accept;
                udp dport { 4000, 5000-5010 } drop
                ip protocol igmp drop
                tcp dport 22 drop
        }
}"""
    hits = doctor.scan_nft(nft, 5005)
    assert len(hits) == 2
    assert doctor.scan_nft(nft, 6000) == ["ip protocol igmp drop"]
    ipt = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 5000 -j DROP\n"
           "-A INPUT -p igmp -j REJECT\n-A INPUT -p tcp --dport 5000 -j DROP\nCOMMIT\n")
    assert len(doctor.scan_iptables(ipt, 5000)) == 2
    assert len(doctor.scan_iptables(ipt, 5001)) == 1
