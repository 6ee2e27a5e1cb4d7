"""Unit tests for mcastkit._linklayer (through mcastkit._frames, which re-exports it): the
multicast MAC mapping, MAC text, and the capture link layers (Ethernet with VLAN tags,
Linux SLL/SLL2, raw IP, loopback). Fuzzing of every parser is in test_frames.py.

Must not: open sockets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit._errors import ErrorCode, McastValueError
from mcastkit._frames import (
    BROADCAST_MAC,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    build_udp_packet,
    destination_mac,
    format_mac,
    multicast_mac,
    parse_ethernet,
    parse_link,
    parse_linux_sll,
    parse_linux_sll2,
    parse_mac,
    parse_raw_ip,
)
from tests.support.addrs import G4, G6, SRC4, SSDP4, VETH_A, VETH_BCAST, asm4, asm6

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
SRC_MAC = bytes.fromhex("02005e100001")
v4_group = st.integers(0xE0000000, 0xEFFFFFFF).map(V4)
v6_group = st.integers(0, 2**120 - 1).map(lambda n: V6((0xFF << 120) | n))


# ------------------------------------------------------------------ MAC addresses


@pytest.mark.parametrize(("group", "mac"), [
    (G4, "01:00:5e:7f:00:01"),
    ("224.128.1.1", "01:00:5e:00:01:01"),  # bit 23 of the group is dropped (RFC 1112)
    (SSDP4, "01:00:5e:7f:ff:fa"),
    ("224.0.0.251", "01:00:5e:00:00:fb"),
    (G6, "33:33:00:00:00:01"),
    ("ff02::fb", "33:33:00:00:00:fb"),
    (asm6("1:ff12:3456"), "33:33:ff:12:34:56"),
])
def test_multicast_mac_known_values(group: str, mac: str) -> None:
    assert format_mac(multicast_mac(ipaddress.ip_address(group))) == mac
    assert multicast_mac(group) == parse_mac(mac)  # text is accepted too


@given(v4_group)
def test_multicast_mac_v4_keeps_the_low_23_bits(g: V4) -> None:
    mac = multicast_mac(g)
    assert mac[:3] == b"\x01\x00\x5e"
    assert int.from_bytes(mac[3:], "big") == int(g) & 0x7FFFFF


@given(v6_group)
def test_multicast_mac_v6_keeps_the_low_32_bits(g: V6) -> None:
    mac = multicast_mac(g)
    assert mac[:2] == b"\x33\x33" and mac[2:] == g.packed[12:]


@pytest.mark.parametrize("addr", [SRC4, "255.255.255.255", "fe80::1", "::1"])
def test_multicast_mac_refuses_non_multicast(addr: str) -> None:
    with pytest.raises(McastValueError, match="not a multicast") as e:
        multicast_mac(ipaddress.ip_address(addr))
    assert e.value.code == ErrorCode.NOT_MULTICAST


def test_destination_mac() -> None:
    assert destination_mac(V4("255.255.255.255")) == BROADCAST_MAC == b"\xff" * 6
    assert destination_mac(V4(asm4(1, 2))) == multicast_mac(V4(asm4(1, 2)))
    with pytest.raises(McastValueError, match="dst_mac="):
        destination_mac(V4(VETH_BCAST))  # directed broadcast: the subnet is not known


@given(st.binary(min_size=6, max_size=6), st.sampled_from(":-"), st.booleans())
def test_mac_text_round_trip(mac: bytes, sep: str, upper: bool) -> None:
    text = format_mac(mac)
    assert text == text.lower() and len(text) == 17
    variant = text.replace(":", sep)
    assert parse_mac(variant.upper() if upper else variant) == mac


@pytest.mark.parametrize("text", [
    "", "02:00:5e:10:00", "02:00:5e:10:00:01:02", "02005e100001", "02:00-5e:10:00:01",
    "2:0:5e:10:0:1", "02:00:5e:10:00:0g", "0200.5e10.0001", " ", "02:00:5e:10:00:01:",
])
def test_parse_mac_rejects_other_forms_naming_the_expected_one(text: str) -> None:
    with pytest.raises(McastValueError, match=r"aa|02:00:5e:10:00:01") as e:
        parse_mac(text)
    assert e.value.code == ErrorCode.BAD_ADDRESS


@given(st.text(max_size=20))
def test_parse_mac_arbitrary_text_only_raises_mcast_value_error(text: str) -> None:
    with contextlib.suppress(McastValueError):
        assert len(parse_mac(text)) == 6


@pytest.mark.parametrize("bad", [b"", b"\x01" * 5, b"\x01" * 7, "02:00:5e:10:00:01"])
def test_format_mac_rejects_wrong_lengths(bad: bytes) -> None:
    with pytest.raises(McastValueError, match="6 bytes"):
        format_mac(bad)


# ------------------------------------------------------------------ capture link layers


def test_vlan_tags_are_skipped_and_reported() -> None:
    inner = build_udp_packet(VETH_A, G4, 1, 2, b"v")
    frame = (multicast_mac(G4) + SRC_MAC + b"\x88\xa8" + (100).to_bytes(2, "big")
             + b"\x81\x00" + (0x2000 | 42).to_bytes(2, "big") + b"\x08\x00" + inner)
    link = parse_ethernet(frame)
    assert (link.vlan, link.ethertype, link.payload) == ((100, 42), ETHERTYPE_IPV4, inner)


def test_linux_sll_and_sll2() -> None:
    inner = build_udp_packet("fe80::1", G6, 1, 2, b"s")
    sll = struct.pack("!HHH8sH", 2, 1, 6, SRC_MAC + b"\0\0", ETHERTYPE_IPV6) + inner
    a = parse_linux_sll(sll)
    assert (a.linktype, a.ethertype, a.src_mac, a.packet_type, a.payload) == (
        113, ETHERTYPE_IPV6, SRC_MAC, 2, inner)
    sll2 = struct.pack("!HHiHBB8s", ETHERTYPE_IPV6, 0, 7, 1, 4, 6, SRC_MAC + b"\0\0") + inner
    b = parse_linux_sll2(sll2)
    assert (b.linktype, b.ethertype, b.ifindex, b.packet_type, b.src_mac, b.payload) == (
        276, ETHERTYPE_IPV6, 7, 4, SRC_MAC, inner)
    assert parse_link(113, sll) == a and parse_link(276, sll2) == b


def test_raw_ip_and_loopback_linktypes() -> None:
    p4 = build_udp_packet(VETH_A, G4, 1, 2, b"r")
    p6 = build_udp_packet("fe80::1", G6, 1, 2, b"r")
    assert parse_link(101, p4).ethertype == ETHERTYPE_IPV4
    assert parse_link(101, p6).ethertype == ETHERTYPE_IPV6
    assert parse_link(228, p4).payload == p4 and parse_link(229, p6).payload == p6
    assert parse_link(0, (2).to_bytes(4, "little") + p4).payload == p4
    assert parse_link(0, (30).to_bytes(4, "big") + p6).ethertype == ETHERTYPE_IPV6
    assert parse_link(108, (24).to_bytes(4, "big") + p6).payload == p6
    with pytest.raises(McastValueError, match="address family"):
        parse_link(108, (7).to_bytes(4, "big") + p4)
    with pytest.raises(McastValueError, match="version field 5"):
        parse_raw_ip(b"\x50")
    with pytest.raises(McastValueError, match=r"unsupported link type 147.*Ethernet"):
        parse_link(147, p4)
