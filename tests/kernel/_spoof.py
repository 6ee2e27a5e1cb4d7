"""Hand-built IPv4/UDP datagrams with any source address, sent through a raw socket.

Owns: packing an IPv4 header plus UDP header (with a correct UDP checksum) and sending it
with ``IPPROTO_RAW`` (which implies ``IP_HDRINCL``) out of a pinned interface, so tests
can show what a receiver does with a forged source (field notes §4 G2, G6, D6).
Must not: be used outside a test namespace (the raw socket is created in the calling
thread's namespace, which the ``netns`` fixture provides), pick an interface itself, or
forge anything outside the lab range 198.18.0.0/15.
"""

from __future__ import annotations

import array
import ipaddress
import socket
import struct
import sys

from tests.kernel._helpers import raw_mcast_if4

LAB_NET = ipaddress.ip_network("198.18.0.0/15")


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    words = array.array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words)


def udp_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    """RFC 768 checksum over the IPv4 pseudo-header and the UDP header + payload."""
    total = _sum16(src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))) + _sum16(
        udp)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    c = ~total & 0xFFFF
    return c or 0xFFFF  # 0 means "no checksum" in IPv4; send its ones' complement twin


def packet4(source: str, sport: int, group: str, dport: int, payload: bytes, *,
            ttl: int = 1, tos: int = 0) -> bytes:
    """An IPv4 header (length, id and header checksum left for the kernel) + UDP."""
    src = ipaddress.IPv4Address(source)
    if src not in LAB_NET:
        raise ValueError(f"spoofed sources stay in {LAB_NET}, got {src}")
    s, d = src.packed, ipaddress.IPv4Address(group).packed
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    udp = udp[:6] + struct.pack("!H", udp_checksum(s, d, udp)) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 0, 0, 0, ttl, socket.IPPROTO_UDP, 0, s, d)
    return ip + udp


class Spoofer:
    """A raw IPv4 socket in the current namespace that sends out of one interface."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw_mcast_if4(self.sock, socket.if_nametoindex(ifname))

    def send(self, source: str, sport: int, group: str, dport: int, payload: bytes, *,
             ttl: int = 1, tos: int = 0) -> None:
        self.sock.sendto(packet4(source, sport, group, dport, payload, ttl=ttl, tos=tos),
                         (group, 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Spoofer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lab_source(n: int) -> str:
    """The n-th address of 198.18.0.0/15 (n in 1..131070), for floods of distinct sources."""
    return str(LAB_NET.network_address + 1 + n % (LAB_NET.num_addresses - 2))
