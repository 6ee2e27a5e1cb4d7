"""Hand-built IPv4/UDP datagrams with any source address, sent through a raw socket.

Owns: sending a forged IPv4 UDP packet (built by :func:`mcastkit._frames.build_udp_packet`,
the project's one packet builder) with ``IPPROTO_RAW`` (which implies ``IP_HDRINCL``) out
of a pinned interface, so tests can show what a receiver does with a forged source (field
notes §4 G2, G6, D6).
Must not: be used outside a test namespace (the raw socket is created in the calling
thread's namespace, which the ``netns`` fixture provides), pick an interface itself, or
forge anything outside the lab range 198.18.0.0/15.
"""

from __future__ import annotations

import ipaddress
import socket

from mcastkit._frames import build_udp_packet
from tests.support.addrs import LAB_NET4
from tests.support.kernel import raw_mcast_if4

LAB_NET = ipaddress.ip_network(LAB_NET4)


def packet4(source: str, sport: int, group: str, dport: int, payload: bytes, *,
            ttl: int = 1, tos: int = 0) -> bytes:
    """A whole IPv4 + UDP packet from a lab source (the kernel fills in the id)."""
    src = ipaddress.IPv4Address(source)
    if src not in LAB_NET:
        raise ValueError(f"spoofed sources stay in {LAB_NET}, got {src}")
    return build_udp_packet(src, ipaddress.IPv4Address(group), sport, dport, payload,
                            ttl=ttl, dscp=tos >> 2, ecn=tos & 3)


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
