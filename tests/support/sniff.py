"""Count multicast frames on an interface with an AF_PACKET socket (no tcpdump).

tcpdump fails in user namespaces (lab.md §3.5.5); an AF_PACKET socket works as root or
rootless. Capture starts when the Sniffer is created, so create it (inside the host's
namespace) *before* sending, then ``wait_for`` a sentinel datagram and read the counts::

    with lab.host("h3").enter():
        sn = Sniffer("eth0")
    ... send data, then a sentinel ...
    sn.wait_for(lambda f: f.payload == b"sentinel")
    assert sn.by_source(group) == {H1: 5}
    sn.close()
"""

from __future__ import annotations

import ipaddress
import select
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from mcastkit import McastValueError
from mcastkit._frames import parse_ip_packet, parse_udp
from mcastkit._linklayer import ETHERTYPE_IPV4, ETHERTYPE_IPV6

ETH_P_ALL = 0x0003  # linux/if_ether.h: every protocol (neither socket nor mcastkit has it)


@dataclass(frozen=True)
class Frame:
    """One UDP datagram seen on the wire (IPv4 or IPv6 without extension headers)."""

    src: str
    dst: str
    sport: int
    dport: int
    ttl: int  # TTL or hop limit as seen on this link
    payload: bytes
    outgoing: bool


def parse_frame(proto: int, pkt: bytes, outgoing: bool = False) -> Frame | None:
    """Decode an L3 packet (as SOCK_DGRAM AF_PACKET returns it) with the project's
    parser (:mod:`mcastkit._frames`); None unless a whole UDP datagram."""
    if proto not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        return None
    try:
        ip = parse_ip_packet(pkt)
        udp = parse_udp(ip)
    except McastValueError:  # not UDP, a fragment, or malformed
        return None
    return Frame(str(ip.src), str(ip.dst), udp.sport, udp.dport, ip.ttl, udp.payload,
                 outgoing)


class Sniffer:
    """Capture UDP frames on ``ifname`` of the calling thread's namespace.

    ``incoming_only`` (default) ignores frames this host sent itself."""

    def __init__(self, ifname: str = "eth0", incoming_only: bool = True) -> None:
        self.ifname = ifname
        self.incoming_only = incoming_only
        self.frames: list[Frame] = []
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((ifname, 0))
        self.sock.setblocking(False)

    def __enter__(self) -> Sniffer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _read_ready(self) -> list[Frame]:
        new: list[Frame] = []
        while True:
            try:
                pkt, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return new
            outgoing = addr[2] == socket.PACKET_OUTGOING
            if outgoing and self.incoming_only:
                continue
            f = parse_frame(addr[1], pkt, outgoing)
            if f is not None:
                self.frames.append(f)
                new.append(f)

    def poll(self) -> list[Frame]:
        """Read whatever is queued now; return the new frames (also kept in ``frames``)."""
        return self._read_ready()

    def wait_for(self, pred: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """Read until a frame satisfying ``pred`` has been seen (e.g. a sentinel)."""
        for f in self.frames:
            if pred(f):
                return f
        deadline = time.monotonic() + timeout
        while True:
            for f in self._read_ready():
                if pred(f):
                    return f
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame on {self.ifname} within {timeout}s")
            select.select([self.sock], [], [], left)

    def by_source(self, group: str, port: int | None = None) -> Counter[str]:
        """Frames to ``group`` (and ``port`` if given) counted by source address."""
        g = str(ipaddress.ip_address(group))
        return Counter(f.src for f in self.frames
                       if f.dst == g and (port is None or f.dport == port))
