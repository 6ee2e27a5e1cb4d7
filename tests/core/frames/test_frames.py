"""Unit tests for mcastkit._frames: checksums against an independent word-by-word
computation and published vectors, build -> parse round trips, IP fragments and IPv6
extension headers, and fuzzing that every parser (the link layers of _linklayer too)
raises nothing but McastValueError. MACs and link layers: test_linklayer.py.

Must not: open sockets (the kernel's verdict on these frames lives in
tests/core/frames/test_rawsend.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mcastkit._errors import ErrorCode, McastValueError
from mcastkit._frames import (
    BROADCAST_MAC,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    LINKTYPES,
    build_ethernet_frame,
    build_udp_frame,
    build_udp_packet,
    build_udp_segment,
    ipv4_header_checksum,
    multicast_mac,
    parse_ethernet,
    parse_ip_packet,
    parse_link,
    parse_linux_sll,
    parse_linux_sll2,
    parse_raw_ip,
    parse_udp,
    udp_checksum,
)
from tests.support.addrs import G4, G6, SRC4, VETH_A, VETH_B, VETH_BCAST

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
SRC_MAC = bytes.fromhex("02005e100001")


# ------------------------------------------------------------------ independent reference


def ref_checksum(data: bytes) -> int:
    """RFC 1071 done the slow, obvious way: add 16-bit words, fold carries each step."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ref_udp_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    seg = segment[:6] + b"\x00\x00" + segment[8:]
    if len(src) == 4:
        pseudo = src + dst + bytes([0, 17]) + len(seg).to_bytes(2, "big")
    else:
        pseudo = src + dst + len(seg).to_bytes(4, "big") + bytes([0, 0, 0, 17])
    c = ref_checksum(pseudo + seg)
    return c or 0xFFFF


# ------------------------------------------------------------------ strategies

v4_any = st.integers(0, 2**32 - 1).map(V4)
v6_any = st.integers(0, 2**128 - 1).map(V6)
v4_group = st.integers(0xE0000000, 0xEFFFFFFF).map(V4)
v6_group = st.integers(0, 2**120 - 1).map(lambda n: V6((0xFF << 120) | n))
port = st.integers(0, 65535)
payload = st.binary(max_size=300)


@st.composite
def packets(draw: st.DrawFn) -> dict[str, object]:
    version = draw(st.sampled_from([4, 6]))
    src = draw(v4_any if version == 4 else v6_any)
    dst = draw(v4_group if version == 4 else v6_group)
    return {
        "src": src, "dst": dst, "sport": draw(port), "dport": draw(port),
        "payload": draw(payload), "ttl": draw(st.integers(0, 255)),
        "dscp": draw(st.integers(0, 63)), "ecn": draw(st.integers(0, 3)),
        "dont_fragment": draw(st.booleans()) if version == 4 else False,
        "ident": draw(st.integers(0, 0xFFFF)) if version == 4 else 0,
        "flow_label": draw(st.integers(0, 0xFFFFF)) if version == 6 else 0,
    }


def _build(p: dict[str, object]) -> bytes:
    return build_udp_packet(**p)  # type: ignore[arg-type]


# ------------------------------------------------------------------ checksums


def test_ipv4_header_checksum_published_vector() -> None:
    # the worked example of the IPv4 header checksum (checksum field zeroed): 0xb861
    head = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ipv4_header_checksum(head) == 0xB861
    # the field's current content is ignored
    assert ipv4_header_checksum(head[:10] + b"\xb8\x61" + head[12:]) == 0xB861


@given(st.binary(min_size=20, max_size=60).filter(lambda b: len(b) % 4 == 0))
def test_ipv4_header_checksum_matches_reference(head: bytes) -> None:
    assert ipv4_header_checksum(head) == ref_checksum(head[:10] + b"\0\0" + head[12:])


def test_ipv4_header_checksum_of_a_header_summing_to_all_ones_is_zero() -> None:
    # set the identification word to the checksum of the rest: the words then sum to
    # 0xffff (ones' complement -0), whose complement 0 is the right checksum, not 0xffff
    head = bytearray(bytes.fromhex("450000730000400040110000c0a80001c0a800c7"))
    head[4:6] = ipv4_header_checksum(bytes(head)).to_bytes(2, "big")
    assert ref_checksum(bytes(head)) == 0
    assert ipv4_header_checksum(bytes(head)) == 0


@pytest.mark.parametrize("n", [0, 19, 22, 64])
def test_ipv4_header_checksum_refuses_bad_lengths(n: int) -> None:
    with pytest.raises(McastValueError):
        ipv4_header_checksum(bytes(n))


@given(st.one_of(st.tuples(v4_any, v4_any), st.tuples(v6_any, v6_any)),
       st.binary(min_size=8, max_size=600))
def test_udp_checksum_matches_reference(addrs: tuple[V4 | V6, V4 | V6], seg: bytes) -> None:
    src, dst = addrs
    assert udp_checksum(src, dst, seg) == ref_udp_checksum(src.packed, dst.packed, seg)


@pytest.mark.parametrize(("src", "dst"), [(VETH_A, G4), ("fe80::1", G6)])
def test_udp_checksum_zero_is_sent_as_ffff(src: str, dst: str) -> None:
    # choose the payload's last word so that the sum is all ones: the checksum computes to
    # 0, which must go on the wire as 0xffff (RFC 768; RFC 8200 forbids 0 outright)
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    seg = bytes(build_udp_segment(s, d, 5000, 6000, b"abcd\0\0"))
    fix = udp_checksum(s, d, seg[:6] + b"\0\0" + seg[8:])
    seg = seg[:12] + fix.to_bytes(2, "big")
    assert ref_checksum(ref_pseudo(s, d, seg) + seg[:6] + b"\0\0" + seg[8:]) == 0
    assert udp_checksum(s, d, seg) == 0xFFFF
    pkt = build_udp_packet(s, d, 5000, 6000, seg[8:])
    udp = parse_udp(parse_ip_packet(pkt))
    assert udp.checksum == 0xFFFF and udp.checksum_ok is True


def ref_pseudo(src: V4 | V6, dst: V4 | V6, seg: bytes) -> bytes:
    if src.version == 4:
        return src.packed + dst.packed + bytes([0, 17]) + len(seg).to_bytes(2, "big")
    return src.packed + dst.packed + len(seg).to_bytes(4, "big") + bytes([0, 0, 0, 17])


def test_udp_checksum_refuses_mixed_families_and_short_segments() -> None:
    with pytest.raises(McastValueError) as e:
        udp_checksum(V4(SRC4), V6(G6), bytes(8))
    assert e.value.code == ErrorCode.WRONG_FAMILY
    with pytest.raises(McastValueError, match="at least 8"):
        udp_checksum(V4(SRC4), V4(G4), bytes(7))


# ------------------------------------------------------------------ building + parsing


@given(packets())
def test_udp_packet_round_trip(p: dict[str, object]) -> None:
    raw = _build(p)
    ip = parse_ip_packet(raw)
    assert (ip.src, ip.dst, ip.ttl, ip.hop_limit, ip.dscp, ip.ecn, ip.protocol) == (
        p["src"], p["dst"], p["ttl"], p["ttl"], p["dscp"], p["ecn"], 17)
    assert not ip.is_fragment and ip.fragment_offset == 0
    if ip.version == 4:
        assert len(raw) == 28 + len(p["payload"])  # type: ignore[arg-type]
        assert (ip.ident, ip.dont_fragment, ip.header_checksum_ok) == (
            p["ident"], p["dont_fragment"], True)
        assert ref_checksum(raw[:20]) == 0  # a correct header sums to all ones
    else:
        assert len(raw) == 48 + len(p["payload"])  # type: ignore[arg-type]
        assert (ip.ident, ip.flow_label, ip.header_checksum_ok) == (None, p["flow_label"], None)
    udp = parse_udp(ip)
    assert (udp.sport, udp.dport, udp.payload, udp.checksum_ok) == (
        p["sport"], p["dport"], p["payload"], True)
    seg = ip.payload
    assert udp.checksum == ref_udp_checksum(ip.src.packed, ip.dst.packed, seg)


@given(packets(), st.data())
def test_a_flipped_bit_is_caught_by_a_checksum(p: dict[str, object], data: st.DataObject) -> None:
    raw = bytearray(_build(p))
    hdr = 20 if p["src"].version == 4 else 40  # type: ignore[attr-defined]
    # flip a bit in the UDP ports, length-preserving fields or payload
    at = data.draw(st.sampled_from([*range(hdr, hdr + 4), *range(hdr + 6, len(raw))]))
    raw[at] ^= 1 << data.draw(st.integers(0, 7))
    udp = parse_udp(parse_ip_packet(bytes(raw)))
    assert udp.checksum_ok is False or udp.checksum in (0, 0xFFFF)


def test_ipv4_header_corruption_is_reported_not_raised() -> None:
    raw = bytearray(build_udp_packet(VETH_A, G4, 1, 2, b"x", ttl=5))
    raw[8] = 6  # TTL changed without fixing the checksum
    assert parse_ip_packet(bytes(raw)).header_checksum_ok is False


def test_ipv4_without_udp_checksum_is_none_and_ipv6_zero_is_false() -> None:
    raw4 = bytearray(build_udp_packet(VETH_A, G4, 1, 2, b"x"))
    raw4[26:28] = b"\0\0"
    assert parse_udp(parse_ip_packet(bytes(raw4))).checksum_ok is None
    raw6 = bytearray(build_udp_packet("fe80::1", G6, 1, 2, b"x"))
    raw6[46:48] = b"\0\0"
    assert parse_udp(parse_ip_packet(bytes(raw6))).checksum_ok is False


def test_exact_header_bytes_ipv4_and_ipv6() -> None:
    raw = build_udp_packet(VETH_A, G4, 4000, 5000, b"hi", ttl=7, dscp=46,
                           dont_fragment=True, ident=0x1234)
    assert raw[:10] == bytes.fromhex("45b8001e12344000" "0711")
    raw6 = build_udp_packet("fe80::1", G6, 4000, 5000, b"hi", ttl=9, dscp=10, ecn=1,
                            flow_label=0xABCDE)
    assert raw6[:8] == bytes.fromhex("629abcde000a1109")


def test_padding_after_the_packet_is_ignored() -> None:
    raw = build_udp_packet(VETH_A, G4, 1, 2, b"abc")
    frame = build_ethernet_frame(multicast_mac(G4), SRC_MAC, ETHERTYPE_IPV4, raw)
    padded = frame + bytes(60 - len(frame))  # Ethernet minimum frame
    link = parse_ethernet(padded)
    assert parse_udp(parse_ip_packet(link.payload)).payload == b"abc"


@pytest.mark.parametrize(("kw", "match"), [
    ({"ttl": 256}, "ttl"), ({"ttl": -1}, "ttl"), ({"dscp": 64}, "dscp"), ({"ecn": 4}, "ecn"),
    ({"sport": 65536}, "source port"), ({"dport": -1}, "destination port"),
    ({"ident": 0x10000}, "ident"), ({"flow_label": 1}, "IPv6 field"),
    ({"payload": bytes(65508)}, "65507"), ({"ttl": True}, "ttl"),
    ({"dst": G6}, "different IP versions"), ({"src": "not-an-ip"}, "numeric"),
])
def test_build_refuses_bad_fields(kw: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"src": VETH_A, "dst": G4, "sport": 1,
                               "dport": 2, "payload": b""}
    args.update(kw)
    with pytest.raises(McastValueError, match=match):
        build_udp_packet(**args)  # type: ignore[arg-type]


def test_build_ipv6_refuses_ident_and_oversize() -> None:
    with pytest.raises(McastValueError, match="leave it 0 for IPv6"):
        build_udp_packet("fe80::1", G6, 1, 2, b"", ident=5)
    assert len(build_udp_packet("fe80::1", G6, 1, 2, bytes(65527))) == 40 + 65535
    with pytest.raises(McastValueError, match="65527"):
        build_udp_packet("fe80::1", G6, 1, 2, bytes(65528))


@given(packets(), st.booleans())
def test_udp_frame_round_trip(p: dict[str, object], explicit: bool) -> None:
    dst_mac = bytes.fromhex("0200000000aa") if explicit else None
    frame = build_udp_frame(SRC_MAC, dst_mac=dst_mac, **p)  # type: ignore[arg-type]
    link = parse_link(1, frame)
    assert link.src_mac == SRC_MAC
    assert link.dst_mac == (dst_mac or multicast_mac(p["dst"]))  # type: ignore[arg-type]
    assert link.ethertype == (ETHERTYPE_IPV4 if p["src"].version == 4  # type: ignore[attr-defined]
                              else ETHERTYPE_IPV6)
    assert link.payload == _build(p)


def test_udp_frame_broadcast_and_its_ipv6_refusal() -> None:
    f = build_udp_frame(SRC_MAC, VETH_A, "255.255.255.255", 1, 2, b"b")
    assert f[:6] == BROADCAST_MAC
    f2 = build_udp_frame(SRC_MAC, VETH_A, VETH_BCAST, 1, 2, b"b",
                         dst_mac=BROADCAST_MAC)
    assert parse_ip_packet(parse_ethernet(f2).payload).dst == V4(VETH_BCAST)
    with pytest.raises(McastValueError, match=r"IPv6 has no broadcast.*ff02::1") as e:
        build_udp_frame(SRC_MAC, "fe80::1", G6, 1, 2, b"", dst_mac=BROADCAST_MAC)
    assert e.value.code == ErrorCode.WRONG_FAMILY
    with pytest.raises(McastValueError, match="dst_mac="):
        build_udp_frame(SRC_MAC, VETH_A, VETH_B, 1, 2, b"")


@pytest.mark.parametrize(("src_mac", "match"), [
    (b"\x01\x00\x5e\x00\x00\x01", "group"), ("01:00:5e:00:00:01", "group"),
    (b"\x02" * 5, "6 bytes"), ("02:00:00:00:00", "malformed"), (None, "6 bytes"),
])
def test_ethernet_refuses_bad_source_macs(src_mac: bytes, match: str) -> None:
    with pytest.raises(McastValueError, match=match):
        build_ethernet_frame(BROADCAST_MAC, src_mac, ETHERTYPE_IPV4, b"")
    with pytest.raises(McastValueError, match="ethertype"):
        build_ethernet_frame(BROADCAST_MAC, SRC_MAC, 0x05DC, b"")


def test_ethernet_takes_macs_as_text_too() -> None:
    f = build_ethernet_frame("ff-ff-ff-ff-ff-ff", "02:00:5E:10:00:01", ETHERTYPE_IPV6, b"p")
    assert f == BROADCAST_MAC + SRC_MAC + b"\x86\xdd" + b"p"


# ------------------------------------------------------------------ fragments, extensions


def _v6(nxt: int, body: bytes, src: str = "fe80::1", dst: str = G6) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(body), nxt, 3) + V6(src).packed + V6(dst).packed \
        + body


def test_ipv6_extension_headers_are_skipped() -> None:
    udp = build_udp_segment("fe80::1", G6, 7, 8, b"ext")
    dstopts = bytes([17, 0]) + bytes([1, 4, 0, 0, 0, 0])  # PadN to 8 bytes
    routing = bytes([60, 1]) + bytes(14)  # 16 bytes
    hbh = bytes([43, 0]) + bytes([1, 4, 0, 0, 0, 0])
    ip = parse_ip_packet(_v6(0, hbh + routing + dstopts + udp))
    assert (ip.protocol, ip.ident, ip.is_fragment) == (17, None, False)
    assert parse_udp(ip).payload == b"ext"


def test_ipv6_fragment_header_is_reported() -> None:
    frag = struct.pack("!BBHI", 17, 0, (185 << 3) | 1, 0xDEADBEEF)
    ip = parse_ip_packet(_v6(44, frag + b"data"))
    assert (ip.protocol, ip.ident, ip.fragment_offset, ip.more_fragments) == (
        17, 0xDEADBEEF, 1480, True)
    assert ip.payload == b"data" and ip.is_fragment
    with pytest.raises(McastValueError, match="reassemble"):
        parse_udp(ip)
    with pytest.raises(McastValueError, match="two fragment headers"):
        parse_ip_packet(_v6(44, bytes([44, 0, 0, 1]) + bytes(4) + frag))


def test_ipv4_fragment_is_reported() -> None:
    raw = bytearray(build_udp_packet(VETH_A, G4, 1, 2, b"x" * 16, ident=77))
    raw[6:8] = (0x2000 | 2).to_bytes(2, "big")  # MF, offset 16 bytes
    raw[10:12] = ipv4_header_checksum(bytes(raw[:20])).to_bytes(2, "big")
    ip = parse_ip_packet(bytes(raw))
    assert (ip.ident, ip.fragment_offset, ip.more_fragments, ip.header_checksum_ok) == (
        77, 16, True, True)
    with pytest.raises(McastValueError, match="reassemble"):
        parse_udp(ip)


def test_ipv4_options_are_skipped() -> None:
    raw = build_udp_packet(VETH_A, G4, 1, 2, b"opt")
    opts = bytes([0x94, 4, 0, 0])  # router alert
    head = bytes([0x46]) + raw[1:2] + (len(raw) + 4).to_bytes(2, "big") + raw[4:20] + opts
    head = head[:10] + ipv4_header_checksum(head).to_bytes(2, "big") + head[12:]
    ip = parse_ip_packet(head + raw[20:])
    assert ip.header_checksum_ok and parse_udp(ip).payload == b"opt"


@pytest.mark.parametrize(("raw", "match"), [
    (b"", "truncated"), (b"\x45" + bytes(10), "truncated IPv4"),
    (b"\x44" + bytes(19), "under 20"), (b"\x60" + bytes(20), "truncated IPv6"),
    (b"\x75" + bytes(30), "version field is 7"),
])
def test_parse_ip_packet_errors_name_the_cause(raw: bytes, match: str) -> None:
    with pytest.raises(McastValueError, match=match):
        parse_ip_packet(raw)


def test_parse_udp_refuses_other_protocols_and_bad_lengths() -> None:
    pkt = parse_ip_packet(build_udp_packet(VETH_A, G4, 1, 2, b"abc"))
    with pytest.raises(McastValueError, match="not UDP"):
        parse_udp(dataclasses.replace(pkt, protocol=6))
    with pytest.raises(McastValueError, match="under 8"):
        parse_udp(dataclasses.replace(pkt, payload=b"\0\1\0\2\0\4\0\0"))
    with pytest.raises(McastValueError, match="truncated UDP"):
        parse_udp(dataclasses.replace(pkt, payload=pkt.payload[:-1]))


# ------------------------------------------------------------------ fuzzing: typed errors only

PARSERS = [parse_ethernet, parse_linux_sll, parse_linux_sll2, parse_raw_ip, parse_ip_packet]


def _decode_all(linktype: int, data: bytes) -> None:
    link = parse_link(linktype, data)
    ip = parse_ip_packet(link.payload)
    parse_udp(ip)


@given(st.sampled_from([*sorted(LINKTYPES), 2, 147]), st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_mcast_value_error(linktype: int, data: bytes) -> None:
    for parser in PARSERS:
        with contextlib.suppress(McastValueError):
            parser(data)
    with contextlib.suppress(McastValueError):
        _decode_all(linktype, data)


@given(packets(), st.data())
def test_mutated_frames_raise_only_mcast_value_error(p: dict[str, object],
                                                     data: st.DataObject) -> None:
    frame = bytearray(build_udp_frame(SRC_MAC, **p))  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(frame) - 1))
        frame[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    with contextlib.suppress(McastValueError):
        _decode_all(1, bytes(frame[:cut]))


@given(st.binary(min_size=40, max_size=40), st.lists(
    st.tuples(st.sampled_from([0, 43, 44, 60, 17, 59]), st.integers(0, 3)), max_size=5),
    st.binary(max_size=40))
def test_ipv6_extension_chains_raise_only_mcast_value_error(
        head: bytes, chain: list[tuple[int, int]], tail: bytes) -> None:
    body = b"".join(bytes([nxt, ln]) + bytes(6 + 8 * ln) for nxt, ln in chain) + tail
    assume(chain)
    raw = struct.pack("!IHBB", 6 << 28, len(body), chain[0][0], 1) + head[8:40] + body
    with contextlib.suppress(McastValueError):
        _decode_all(229, raw)
