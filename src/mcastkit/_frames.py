"""Ethernet, IPv4, IPv6 and UDP on the wire: building and parsing, as pure functions.

Owns: the Internet checksum (RFC 1071) with the UDP pseudo-headers (RFC 768, RFC 8200
§8.1), building whole UDP packets and Ethernet frames, and parsing IP packets and UDP
datagrams back from bytes. The link layer (MAC text, the multicast MAC mapping, Ethernet /
Linux cooked / raw IP capture headers) lives in ``_linklayer`` and is re-exported here,
so this module is the one import for the whole API.
Used by the raw sender (``_rawsend``), the relay and the pcap recorder/replayer.
Must not: open sockets or make any syscall; raise anything but :class:`McastValueError`
on malformed input (no IndexError / struct.error escapes a parser).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from ._addr import IPAddress
from ._errors import ErrorCode
from ._linklayer import (
    BROADCAST_MAC,
    ETH_HEADER,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPES,
    LinkFrame,
    as_ip,
    bad,
    destination_mac,
    format_mac,
    mac_bytes,
    multicast_mac,
    need,
    parse_ethernet,
    parse_link,
    parse_linux_sll,
    parse_linux_sll2,
    parse_mac,
    parse_raw_ip,
)

__all__ = [
    "BROADCAST_MAC",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "IPPROTO_UDP",
    "LINKTYPES",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "IPPacket",
    "LinkFrame",
    "UDPDatagram",
    "build_ethernet_frame",
    "build_udp_frame",
    "build_udp_packet",
    "build_udp_segment",
    "destination_mac",
    "format_mac",
    "ipv4_header_checksum",
    "mac_bytes",
    "multicast_mac",
    "parse_ethernet",
    "parse_ip_packet",
    "parse_link",
    "parse_linux_sll",
    "parse_linux_sll2",
    "parse_mac",
    "parse_raw_ip",
    "parse_udp",
    "udp_checksum",
]

IPPROTO_UDP: Final = 17

# IPv6 extension headers skipped on the way to the upper layer (RFC 8200 §4)
_V6_HOPOPTS, _V6_ROUTING, _V6_FRAGMENT, _V6_DSTOPTS = 0, 43, 44, 60

_V4: Final = struct.Struct("!BBHHHBBH4s4s")
_V6: Final = struct.Struct("!IHBB16s16s")
_UDP: Final = struct.Struct("!HHHH")
_PSEUDO4: Final = struct.Struct("!xBH")  # zero, protocol, UDP length
_PSEUDO6: Final = struct.Struct("!I3xB")  # UDP length, three zero bytes, next header

MAX_UDP_PAYLOAD_V4: Final = 65535 - 20 - 8
MAX_UDP_PAYLOAD_V6: Final = 65535 - 8


# --------------------------------------------------------------------------- checksums


def _ones_sum(data: bytes) -> int:
    """RFC 1071 ones' complement sum of 16-bit big-endian words, folded to 16 bits.

    2**16 = 1 (mod 0xffff), so the sum of the words equals the whole buffer read as one
    big-endian integer, modulo 0xffff; a non-zero buffer never sums to 0 in ones'
    complement, hence the 0 -> 0xffff fix-up.
    """
    if len(data) % 2:
        data += b"\0"
    n = int.from_bytes(data, "big")
    s = n % 0xFFFF
    return 0xFFFF if s == 0 and n else s


def _udp_sum(src: bytes, dst: bytes, segment: bytes) -> int:
    """The UDP checksum of a segment whose checksum field is zero, between packed
    addresses (4 or 16 bytes); 0 comes out as 0xffff."""
    if len(src) == 4:
        pseudo = src + dst + _PSEUDO4.pack(IPPROTO_UDP, len(segment))
    else:
        pseudo = src + dst + _PSEUDO6.pack(len(segment), IPPROTO_UDP)
    return (~_ones_sum(pseudo + segment) & 0xFFFF) or 0xFFFF


def udp_checksum(src: IPAddress | str, dst: IPAddress | str, segment: bytes) -> int:
    """The UDP checksum of ``segment`` (UDP header + payload) between ``src`` and ``dst``.

    The checksum field in ``segment`` (bytes 6-7) is taken as zero, whatever it holds.
    A computed 0 is returned as 0xffff (0 on the wire means "no checksum", RFC 768).

    Raises:
        McastValueError: mixed address families or a segment shorter than 8 bytes.
    """
    s, d = _same_family(src, dst)
    if len(segment) < 8:
        raise bad(f"a UDP segment is at least 8 bytes, got {len(segment)}")
    return _udp_sum(s.packed, d.packed, bytes(segment[:6]) + b"\0\0" + bytes(segment[8:]))


def ipv4_header_checksum(header: bytes) -> int:
    """The IPv4 header checksum (RFC 791/1071) of ``header``, options included; the
    checksum field (bytes 10-11) is taken as zero.

    Raises:
        McastValueError: fewer than 20 bytes, or a length that is not a multiple of 4.
    """
    if not 20 <= len(header) <= 60 or len(header) % 4:
        raise bad(f"an IPv4 header is 20-60 bytes in 4-byte steps, got {len(header)}")
    return ~_ones_sum(bytes(header[:10]) + b"\0\0" + bytes(header[12:])) & 0xFFFF


# --------------------------------------------------------------------------- building


def _same_family(src: IPAddress | str, dst: IPAddress | str) -> tuple[IPAddress, IPAddress]:
    s, d = as_ip(src, "source"), as_ip(dst, "destination")
    if s.version != d.version:
        raise bad(f"source {s} and destination {d} are of different IP versions; give an "
                  f"IPv{d.version} source", ErrorCode.WRONG_FAMILY)
    return s, d


def check_range(name: str, value: int, low: int, high: int) -> None:
    """Raise McastValueError unless ``value`` is an int (not a bool) in low..high."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _check_segment(s: IPAddress, sport: int, dport: int, payload: bytes) -> None:
    check_range("source port", sport, 0, 65535)
    check_range("destination port", dport, 0, 65535)
    limit = MAX_UDP_PAYLOAD_V4 if s.version == 4 else MAX_UDP_PAYLOAD_V6
    if len(payload) > limit:
        raise bad(f"UDP payload of {len(payload)} bytes is over the IPv{s.version} limit "
                  f"of {limit}; send smaller datagrams")


def _segment(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """UDP header + payload between packed addresses; fields already checked."""
    body = bytes(payload)
    csum = _udp_sum(src, dst, _UDP.pack(sport, dport, 8 + len(body), 0) + body)
    return _UDP.pack(sport, dport, 8 + len(body), csum) + body


def build_udp_segment(src: IPAddress | str, dst: IPAddress | str, sport: int, dport: int,
                      payload: bytes) -> bytes:
    """A UDP header + payload with its checksum computed for ``src`` -> ``dst``.

    Raises:
        McastValueError: a port outside 0..65535, mixed families, or a payload too long.
    """
    s, d = _same_family(src, dst)
    _check_segment(s, sport, dport, payload)
    return _segment(s.packed, d.packed, sport, dport, payload)


def _check_packet(s: IPAddress, sport: int, dport: int, payload: bytes, ttl: int, dscp: int,
                  ecn: int, ident: int, flow_label: int) -> None:
    _check_segment(s, sport, dport, payload)
    check_range("ttl", ttl, 0, 255)
    check_range("dscp", dscp, 0, 63)
    check_range("ecn", ecn, 0, 3)
    check_range("ident", ident, 0, 0xFFFF)
    check_range("flow_label", flow_label, 0, 0xFFFFF)
    if s.version == 4 and flow_label:
        raise bad("flow_label is an IPv6 field; leave it 0 for IPv4", ErrorCode.WRONG_FAMILY)
    if s.version == 6 and ident:
        raise bad("ident is the IPv4 identification field; leave it 0 for IPv6",
                  ErrorCode.WRONG_FAMILY)


def _packet(s: IPAddress, d: IPAddress, sport: int, dport: int, payload: bytes, ttl: int,
            tos: int, dont_fragment: bool, ident: int, flow_label: int) -> bytes:
    """The IP packet; every field already checked by :func:`_check_packet`."""
    sp, dp = s.packed, d.packed
    udp = _segment(sp, dp, sport, dport, payload)
    if len(sp) == 4:
        head = _V4.pack(0x45, tos, 20 + len(udp), ident, 0x4000 if dont_fragment else 0,
                        ttl, IPPROTO_UDP, 0, sp, dp)
        csum = ~_ones_sum(head) & 0xFFFF
        return head[:10] + csum.to_bytes(2, "big") + head[12:] + udp
    first = 6 << 28 | tos << 20 | flow_label
    return _V6.pack(first, len(udp), IPPROTO_UDP, ttl, sp, dp) + udp


def build_udp_packet(src: IPAddress | str, dst: IPAddress | str, sport: int, dport: int,
                     payload: bytes, *, ttl: int = 1, dscp: int = 0, ecn: int = 0,
                     dont_fragment: bool = False, ident: int = 0,
                     flow_label: int = 0) -> bytes:
    """A whole IP packet carrying one UDP datagram; IPv4 or IPv6 by the address family.

    Args:
        src: source address (any address; nothing checks it is local).
        dst: destination address, same IP version as ``src``.
        sport: UDP source port. dport: UDP destination port.
        payload: the UDP payload.
        ttl: TTL (IPv4) or hop limit (IPv6), 0..255.
        dscp: DiffServ code point, 0..63 (upper six bits of TOS / traffic class).
        ecn: ECN bits, 0..3.
        dont_fragment: IPv4 DF bit. IPv6 has no DF bit (routers never fragment IPv6),
            so for IPv6 it changes nothing.
        ident: IPv4 identification field; must stay 0 for IPv6 (no fragment header).
        flow_label: IPv6 flow label, 0..0xfffff; must stay 0 for IPv4.

    Returns:
        IPv4 (20-byte header, no options, header checksum set) or IPv6 (40-byte header, no
        extension headers) + UDP with a correct checksum. Never fragmented.

    Raises:
        McastValueError: any field out of range, mixed families, an IPv6-only field set
            for IPv4 or the reverse, or a payload over the IP length limit.
    """
    s, d = _same_family(src, dst)
    _check_packet(s, sport, dport, payload, ttl, dscp, ecn, ident, flow_label)
    return _packet(s, d, sport, dport, payload, ttl, dscp << 2 | ecn, dont_fragment, ident,
                   flow_label)


def build_ethernet_frame(dst_mac: bytes | str, src_mac: bytes | str, ethertype: int,
                         payload: bytes) -> bytes:
    """An Ethernet II frame (no FCS, no padding: the driver adds both). MACs are 6 bytes
    or text (``aa:bb:cc:dd:ee:ff``).

    Raises:
        McastValueError: a malformed MAC, a source MAC with the group bit set (no
            station sends from a multicast MAC), or an ethertype below 0x0600.
    """
    dst = mac_bytes(dst_mac, "destination MAC")
    src = mac_bytes(src_mac, "source MAC", source=True)
    check_range("ethertype", ethertype, 0x0600, 0xFFFF)
    return ETH_HEADER.pack(dst, src, ethertype) + bytes(payload)


def build_udp_frame(src_mac: bytes | str, src: IPAddress | str, dst: IPAddress | str, sport: int,
                    dport: int, payload: bytes, *, dst_mac: bytes | str | None = None,
                    ttl: int = 1, dscp: int = 0, ecn: int = 0, dont_fragment: bool = False,
                    ident: int = 0, flow_label: int = 0) -> bytes:
    """An Ethernet frame carrying :func:`build_udp_packet` (same keyword arguments).

    Args:
        dst_mac: None for the MAC implied by ``dst`` (:func:`destination_mac`), or 6 bytes.

    Raises:
        McastValueError: as :func:`build_udp_packet` and :func:`build_ethernet_frame`; an
            IPv6 destination with the broadcast MAC (IPv6 has no broadcast: send to the
            all-nodes group ff02::1 instead); a destination whose MAC is not implied.
    """
    s, d = _same_family(src, dst)
    if dst_mac is None:
        dst_mac = destination_mac(d)
    elif d.version == 6 and mac_bytes(dst_mac, "destination MAC") == BROADCAST_MAC:
        raise bad("IPv6 has no broadcast; send to the all-nodes group ff02::1 (or another "
                  "group) instead of ff:ff:ff:ff:ff:ff", ErrorCode.WRONG_FAMILY)
    _check_packet(s, sport, dport, payload, ttl, dscp, ecn, ident, flow_label)
    packet = _packet(s, d, sport, dport, payload, ttl, dscp << 2 | ecn, dont_fragment, ident,
                     flow_label)
    ethertype = ETHERTYPE_IPV4 if d.version == 4 else ETHERTYPE_IPV6
    return build_ethernet_frame(dst_mac, src_mac, ethertype, packet)


# --------------------------------------------------------------------------- parsed values


@dataclass(frozen=True, slots=True)
class IPPacket:
    """An IPv4 or IPv6 packet taken apart down to its upper-layer payload.

    Attributes:
        version: 4 or 6.
        src, dst: the addresses.
        ttl: TTL (IPv4) or hop limit (IPv6); also readable as ``hop_limit``.
        dscp, ecn: the TOS / traffic-class byte split (dscp << 2 | ecn).
        protocol: the upper-layer protocol after any IPv6 extension headers (17 = UDP).
        ident: IPv4 identification, IPv6 fragment-header identification, else None.
        fragment_offset: offset of this fragment's data, in bytes (0 if not a fragment).
        more_fragments: the MF flag (IPv4 flags or IPv6 fragment header).
        dont_fragment: the IPv4 DF flag (always False for IPv6).
        flow_label: IPv6 flow label (0 for IPv4).
        header_checksum_ok: whether the IPv4 header checksum verifies (None for IPv6).
        payload: the upper-layer bytes, trimmed to the length the header gives.
    """

    version: int
    src: IPAddress
    dst: IPAddress
    ttl: int
    dscp: int
    ecn: int
    protocol: int
    ident: int | None
    fragment_offset: int
    more_fragments: bool
    dont_fragment: bool
    flow_label: int
    header_checksum_ok: bool | None
    payload: bytes

    @property
    def hop_limit(self) -> int:
        """The IPv6 name of ``ttl``."""
        return self.ttl

    @property
    def is_fragment(self) -> bool:
        """True for any fragment (offset > 0 or more to come): reassemble before UDP."""
        return self.fragment_offset > 0 or self.more_fragments


@dataclass(frozen=True, slots=True)
class UDPDatagram:
    """A UDP datagram taken apart, with its checksum verdict.

    Attributes:
        sport, dport: the ports.
        checksum: the checksum field as received.
        checksum_ok: True if it verifies, False if not (or 0 over IPv6, where RFC 8200
            forbids it), None for an IPv4 datagram sent without a checksum (0).
        payload: the UDP payload, trimmed to the UDP length field.
    """

    sport: int
    dport: int
    checksum: int
    checksum_ok: bool | None
    payload: bytes


# --------------------------------------------------------------------------- parsing


def _parse_v4(data: bytes) -> IPPacket:
    need(data, 20, "IPv4 header")
    vihl, tos, total, ident, frag, ttl, proto, _c, s, d = _V4.unpack_from(data)
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        raise bad(f"malformed IPv4 header: header length {ihl} is under 20 bytes")
    if total < ihl:
        raise bad(f"malformed IPv4 header: total length {total} is under the header "
                  f"length {ihl}")
    need(data, total, "IPv4 packet")
    head = bytes(data[:ihl])
    stored = int.from_bytes(head[10:12], "big")
    return IPPacket(
        version=4, src=ipaddress.IPv4Address(s), dst=ipaddress.IPv4Address(d), ttl=ttl,
        dscp=tos >> 2, ecn=tos & 3, protocol=proto, ident=ident,
        fragment_offset=(frag & 0x1FFF) * 8, more_fragments=bool(frag & 0x2000),
        dont_fragment=bool(frag & 0x4000), flow_label=0,
        header_checksum_ok=ipv4_header_checksum(head) == stored,
        payload=bytes(data[ihl:total]),
    )


def _parse_v6(data: bytes) -> IPPacket:
    need(data, 40, "IPv6 header")
    first, plen, nxt, hops, s, d = _V6.unpack_from(data)
    if plen == 0 and nxt == _V6_HOPOPTS:
        raise bad("IPv6 jumbograms (payload length 0 + jumbo option) are not supported")
    need(data, 40 + plen, "IPv6 packet")
    end, pos = 40 + plen, 40
    ident: int | None = None
    offset, more = 0, False
    while nxt in (_V6_HOPOPTS, _V6_ROUTING, _V6_DSTOPTS, _V6_FRAGMENT):
        if end - pos < 8:
            raise bad(f"truncated IPv6 extension header {nxt} at byte {pos}")
        if nxt == _V6_FRAGMENT:
            if ident is not None:
                raise bad("malformed IPv6 packet: two fragment headers")
            off_flags, ident = struct.unpack_from("!HI", data, pos + 2)
            offset, more = off_flags & 0xFFF8, bool(off_flags & 1)
            size = 8
        else:
            size = (data[pos + 1] + 1) * 8
            if end - pos < size:
                raise bad(f"truncated IPv6 extension header {nxt} at byte {pos}")
        nxt, pos = data[pos], pos + size
    tc = first >> 20 & 0xFF
    return IPPacket(
        version=6, src=ipaddress.IPv6Address(s), dst=ipaddress.IPv6Address(d), ttl=hops,
        dscp=tc >> 2, ecn=tc & 3, protocol=nxt, ident=ident, fragment_offset=offset,
        more_fragments=more, dont_fragment=False, flow_label=first & 0xFFFFF,
        header_checksum_ok=None, payload=bytes(data[pos:end]),
    )


def parse_ip_packet(data: bytes) -> IPPacket:
    """Parse an IPv4 or IPv6 packet (version from the first nibble); bytes after the
    length the header gives (link-layer padding) are ignored.

    Raises:
        McastValueError: not IP, truncated, or inconsistent lengths.
    """
    need(data, 1, "IP packet")
    version = data[0] >> 4
    if version == 4:
        return _parse_v4(data)
    if version == 6:
        return _parse_v6(data)
    raise bad(f"not an IP packet: version field is {version}, expected 4 or 6")


def parse_udp(packet: IPPacket) -> UDPDatagram:
    """Parse the UDP datagram an :class:`IPPacket` carries and verify its checksum.

    Raises:
        McastValueError: the packet is not UDP, is a fragment (reassemble it first), or
            its UDP length field is inconsistent.
    """
    if packet.protocol != IPPROTO_UDP:
        raise bad(f"not UDP: IP protocol {packet.protocol}, expected {IPPROTO_UDP}")
    if packet.is_fragment:
        raise bad(f"a fragment (offset {packet.fragment_offset}, more="
                  f"{packet.more_fragments}) is not a whole UDP datagram; reassemble first")
    data = packet.payload
    need(data, 8, "UDP header")
    sport, dport, length, checksum = _UDP.unpack_from(data)
    if length < 8:
        raise bad(f"malformed UDP header: length {length} is under 8")
    need(data, length, "UDP datagram")
    segment = data[:length]
    ok: bool | None
    if checksum == 0:
        ok = None if packet.version == 4 else False
    else:
        ok = udp_checksum(packet.src, packet.dst, segment) == checksum
    return UDPDatagram(sport, dport, checksum, ok, bytes(segment[8:]))
