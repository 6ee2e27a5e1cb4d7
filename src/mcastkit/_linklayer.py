"""Link layers: MAC addresses and the link-layer headers captures carry (Ethernet, Linux
cooked SLL/SLL2, raw IP, loopback).

Owns: MAC text, the multicast MAC mapping (RFC 1112 §6.4, RFC 2464 §7), the pcap LINKTYPE
numbers mcastkit understands, the :class:`LinkFrame` value and the parsers that strip a
link-layer header down to the network-layer bytes (skipping 802.1Q / 802.1ad tags).
``_frames`` re-exports all of it; import it from there.
Must not: open sockets or make any syscall; raise anything but :class:`McastValueError`
on malformed input.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Final

from ._addr import IPAddress, parse_ip
from ._errors import ErrorCode, McastValueError

__all__ = [
    "BROADCAST_MAC",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "LINKTYPES",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "LinkFrame",
    "destination_mac",
    "format_mac",
    "mac_bytes",
    "multicast_mac",
    "parse_ethernet",
    "parse_link",
    "parse_linux_sll",
    "parse_linux_sll2",
    "parse_mac",
    "parse_raw_ip",
]

BROADCAST_MAC: Final = b"\xff" * 6
_LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")
_MAC_RE: Final = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")
ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
_VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})

# pcap LINKTYPE_* values (tcpdump.org/linktypes.html), which are what capture files carry
LINKTYPE_NULL: Final = 0  # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101  # raw IPv4 or IPv6, told apart by the version nibble
LINKTYPE_LOOP: Final = 108  # OpenBSD loopback: 4-byte address family, network order
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276

_V6_AF: Final = frozenset({10, 24, 28, 30})  # AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
ETH_HEADER: Final = struct.Struct("!6s6sH")
_SLL: Final = struct.Struct("!HHH8sH")
_SLL2: Final = struct.Struct("!HHiHBB8s")


def bad(message: str, code: ErrorCode = ErrorCode.BAD_VALUE) -> McastValueError:
    """The error every malformed input raises (shared with ``_frames``)."""
    return McastValueError(message, code=code)


def need(data: bytes, n: int, what: str) -> None:
    """Raise the typed "truncated" error unless ``data`` holds ``n`` bytes."""
    if len(data) < n:
        raise bad(f"truncated {what}: needs {n} bytes, got {len(data)} (a capture cut by "
                 "its snapshot length? capture with a larger -s)")


# --------------------------------------------------------------------------- MAC addresses


def parse_mac(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` or ``aa-bb-cc-dd-ee-ff`` (any case) into 6 bytes.

    Raises:
        McastValueError: any other form; the message shows the expected one.
    """
    raw = text.strip() if isinstance(text, str) else text
    if not isinstance(raw, str) or not _MAC_RE.fullmatch(raw):
        raise bad(f"MAC address {text!r} is malformed: write six two-digit hex bytes "
                  "separated by ':' or '-', e.g. 02:00:5e:10:00:01", ErrorCode.BAD_ADDRESS)
    return bytes.fromhex(raw.replace(":", "").replace("-", ""))


def mac_bytes(value: bytes | str, what: str = "MAC", *, source: bool = False) -> bytes:
    """A MAC as 6 bytes, from 6 bytes or from text (:func:`parse_mac`).

    Args:
        value: the MAC. what: its name in the error message.
        source: also refuse the group (multicast) bit, which no station sends from.

    Raises:
        McastValueError: not 6 bytes, malformed text, or a group-bit source MAC.
    """
    if isinstance(value, str):
        mac = parse_mac(value)
    elif isinstance(value, bytes | bytearray) and len(value) == 6:
        mac = bytes(value)
    else:
        raise bad(f"{what} must be 6 bytes or text like 02:00:5e:10:00:01, got {value!r}",
                  ErrorCode.BAD_ADDRESS)
    if source and mac[0] & 1:
        raise bad(f"{what} {format_mac(mac)} has the group (multicast) bit set; use a "
                  "unicast MAC (first byte even, e.g. 02:...)", ErrorCode.BAD_ADDRESS)
    return mac


def format_mac(mac: bytes) -> str:
    """``b"\\x02\\x00..."`` -> ``"02:00:..."`` (lower case, colons).

    Raises:
        McastValueError: ``mac`` is not exactly 6 bytes.
    """
    if not isinstance(mac, bytes | bytearray) or len(mac) != 6:
        raise bad(f"a MAC address is 6 bytes, got {mac!r}", ErrorCode.BAD_ADDRESS)
    return ":".join(f"{b:02x}" for b in mac)


@functools.lru_cache(maxsize=256)
def _parse_text(text: str, what: str) -> IPAddress:
    """parse_ip, remembered: a sender or relay repeats the same few group and source
    texts for every datagram, and parsing one costs more than building the frame."""
    return parse_ip(text, what=what)


def as_ip(value: IPAddress | str, what: str) -> IPAddress:
    """An address object from an address or its text (shared with ``_frames``)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, str):
        return _parse_text(value, what)
    raise bad(f"{what} must be an IPv4/IPv6 address, got {value!r}", ErrorCode.BAD_ADDRESS)


def multicast_mac(group: IPAddress | str) -> bytes:
    """The Ethernet address a multicast group maps to: ``01:00:5e`` + the low 23 bits
    (IPv4, RFC 1112), ``33:33`` + the low 32 bits (IPv6, RFC 2464).

    Raises:
        McastValueError: ``group`` is not a multicast address.
    """
    g = as_ip(group, "group")
    if not g.is_multicast:
        raise bad(f"{g} is not a multicast address, so it has no multicast MAC",
                  ErrorCode.NOT_MULTICAST)
    if g.version == 4:
        return b"\x01\x00\x5e" + (int(g) & 0x7FFFFF).to_bytes(3, "big")
    return b"\x33\x33" + g.packed[12:]


def destination_mac(dst: IPAddress | str) -> bytes:
    """The destination MAC implied by an IP destination alone: the multicast mapping, or
    ff:ff:ff:ff:ff:ff for the IPv4 limited broadcast 255.255.255.255.

    Raises:
        McastValueError: a unicast or directed-broadcast destination (its MAC depends on
            the subnet or a neighbour: pass ``dst_mac=`` explicitly).
    """
    d = as_ip(dst, "destination")
    if d.is_multicast:
        return multicast_mac(d)
    if d == _LIMITED_BROADCAST:
        return BROADCAST_MAC
    raise bad(f"{d} is neither multicast nor 255.255.255.255, so its MAC is not implied; "
              "pass dst_mac= (BROADCAST_MAC for a directed broadcast of a local subnet)",
              ErrorCode.NOT_MULTICAST)



@dataclass(frozen=True, slots=True)
class LinkFrame:
    """A link-layer frame taken apart.

    Attributes:
        linktype: the pcap LINKTYPE_* it was parsed as.
        ethertype: the network protocol (0x0800 IPv4, 0x86dd IPv6; SLL may carry other
            protocol numbers; below 0x0600 it is an 802.3 length, i.e. not IP).
        payload: the network-layer bytes (may include Ethernet padding at the end).
        src_mac: link-layer source address (SLL: the sender's, up to 8 bytes), or None.
        dst_mac: Ethernet destination, None where the format has none (SLL, raw IP).
        vlan: 802.1Q/802.1ad VLAN ids, outermost first.
        packet_type: Linux SLL packet type (0 to us, 1 broadcast, 2 multicast, 3 to
            another host, 4 sent by us), None elsewhere.
        ifindex: the interface index an SLL2 capture recorded, None elsewhere.
    """

    linktype: int
    ethertype: int
    payload: bytes
    src_mac: bytes | None = None
    dst_mac: bytes | None = None
    vlan: tuple[int, ...] = ()
    packet_type: int | None = None
    ifindex: int | None = None



def parse_ethernet(frame: bytes) -> LinkFrame:
    """Parse an Ethernet II frame (LINKTYPE 1), skipping 802.1Q / 802.1ad tags.

    Raises:
        McastValueError: truncated header or tag.
    """
    need(frame, 14, "Ethernet header")
    dst, src, ethertype = ETH_HEADER.unpack_from(frame)
    pos, vlan = 14, []
    while ethertype in _VLAN_TPIDS:
        need(frame, pos + 4, "802.1Q tag")
        tci, ethertype = struct.unpack_from("!HH", frame, pos)
        vlan.append(tci & 0x0FFF)
        pos += 4
    return LinkFrame(LINKTYPE_ETHERNET, ethertype, bytes(frame[pos:]), src_mac=src,
                     dst_mac=dst, vlan=tuple(vlan))


def parse_linux_sll(frame: bytes) -> LinkFrame:
    """Parse a Linux cooked capture v1 frame (LINKTYPE 113, ``tcpdump -i any``).

    Raises:
        McastValueError: truncated header.
    """
    need(frame, _SLL.size, "Linux SLL header")
    pkttype, _hatype, halen, addr, proto = _SLL.unpack_from(frame)
    return LinkFrame(LINKTYPE_LINUX_SLL, proto, bytes(frame[_SLL.size:]),
                     src_mac=addr[:min(halen, 8)], packet_type=pkttype)


def parse_linux_sll2(frame: bytes) -> LinkFrame:
    """Parse a Linux cooked capture v2 frame (LINKTYPE 276), which adds the ifindex.

    Raises:
        McastValueError: truncated header.
    """
    need(frame, _SLL2.size, "Linux SLL2 header")
    proto, _res, ifindex, _hatype, pkttype, halen, addr = _SLL2.unpack_from(frame)
    return LinkFrame(LINKTYPE_LINUX_SLL2, proto, bytes(frame[_SLL2.size:]),
                     src_mac=addr[:min(halen, 8)], packet_type=pkttype, ifindex=ifindex)


def parse_raw_ip(frame: bytes, linktype: int = LINKTYPE_RAW) -> LinkFrame:
    """Raw IP (LINKTYPE 101 by version nibble, 228 IPv4, 229 IPv6) and BSD loopback
    (LINKTYPE 0, 108: a 4-byte address family first).

    Raises:
        McastValueError: empty, an unknown address family, or another linktype.
    """
    data = frame
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        need(frame, 4, "loopback header")
        raw = bytes(frame[:4])
        fams = (int.from_bytes(raw, "big"),) if linktype == LINKTYPE_LOOP else (
            int.from_bytes(raw, "little"), int.from_bytes(raw, "big"))
        if 2 in fams:
            return LinkFrame(linktype, ETHERTYPE_IPV4, bytes(frame[4:]))
        if _V6_AF.intersection(fams):
            return LinkFrame(linktype, ETHERTYPE_IPV6, bytes(frame[4:]))
        raise bad(f"loopback header names address family {fams[0]}, neither IPv4 nor IPv6")
    if linktype == LINKTYPE_IPV4:
        return LinkFrame(linktype, ETHERTYPE_IPV4, bytes(data))
    if linktype == LINKTYPE_IPV6:
        return LinkFrame(linktype, ETHERTYPE_IPV6, bytes(data))
    if linktype != LINKTYPE_RAW:
        raise bad(f"linktype {linktype} is not raw IP or loopback")
    need(data, 1, "raw IP packet")
    version = data[0] >> 4
    if version not in (4, 6):
        raise bad(f"raw IP packet with version field {version}, expected 4 or 6")
    return LinkFrame(linktype, ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6,
                     bytes(data))


LINKTYPES: Final = {
    LINKTYPE_NULL: "BSD loopback", LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback", LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IPV4: "raw IPv4", LINKTYPE_IPV6: "raw IPv6", LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}


def parse_link(linktype: int, frame: bytes) -> LinkFrame:
    """Parse a captured frame by its pcap/pcapng LINKTYPE (see :data:`LINKTYPES`).

    Raises:
        McastValueError: an unsupported linktype (the message lists the supported ones)
            or a malformed frame.
    """
    if linktype == LINKTYPE_ETHERNET:
        return parse_ethernet(frame)
    if linktype == LINKTYPE_LINUX_SLL:
        return parse_linux_sll(frame)
    if linktype == LINKTYPE_LINUX_SLL2:
        return parse_linux_sll2(frame)
    if linktype in LINKTYPES:
        return parse_raw_ip(frame, linktype)
    known = ", ".join(f"{k} ({v})" for k, v in sorted(LINKTYPES.items()))
    raise bad(f"unsupported link type {linktype}; supported: {known}")
