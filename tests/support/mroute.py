"""A tiny multicast router for the test lab: drives the kernel MFC for IPv4 and IPv6.

Run inside a router namespace (standard library only, no package imports)::

    python mroute.py --iif eth-a --oif eth-b --oif eth-c:4 \
        --prefix 239.255.0.0/16 --prefix 232.0.0.0/8 --prefix ff15::/16 \
        [--static 198.18.1.10,239.255.0.9]

It opens the IPv4 and IPv6 multicast-routing sockets (MRT_INIT; the kernel drops every
VIF and route when they close), adds VIF/MIF 0 for ``--iif`` and one per ``--oif``, and
on each "no cache entry" upcall for a packet that arrived on the iif with a group inside
a ``--prefix`` installs (S,G) iif -> all oifs. ``--oif NAME:N`` sets an administrative
TTL threshold N on that IPv4 VIF (the packet must arrive with TTL > N to be forwarded);
IPv6 MFC entries carry no thresholds in Linux, so IPv6 ignores it.
``--static S,G`` installs a route at start-up (no first-packet loss). No PIM, no IGMP.
Prints ``mroute ready`` once the VIFs exist; exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import ipaddress
import select
import signal
import socket
import struct
import sys
from types import FrameType

MRT_INIT, MRT_ADD_VIF, MRT_ADD_MFC = 200, 202, 204  # MRT6_* use the same numbers
VIFF_USE_IFINDEX = 0x8
NOCACHE = 1  # IGMPMSG_NOCACHE == MRT6MSG_NOCACHE
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class Router:
    def __init__(self, iif: str, oifs: list[tuple[str, int]], prefixes: list[Net]) -> None:
        self.ifaces = [(iif, 1), *oifs]  # vif/mif 0 is the inbound interface
        self.prefixes = prefixes
        self.v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        self.v4.setsockopt(socket.IPPROTO_IP, MRT_INIT, 1)
        self.v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        self.v6.setsockopt(socket.IPPROTO_IPV6, MRT_INIT, 1)
        self.installed: set[tuple[bytes, bytes]] = set()
        for vif, (name, thr) in enumerate(self.ifaces):
            idx = socket.if_nametoindex(name)
            # struct vifctl {u16 vifi; u8 flags; u8 threshold; u32 rate; int ifindex; in_addr rmt}
            self.v4.setsockopt(
                socket.IPPROTO_IP, MRT_ADD_VIF,
                struct.pack("=HBBIi4s", vif, VIFF_USE_IFINDEX, thr, 0, idx, bytes(4)),
            )
            # struct mif6ctl {u16 mifi; u8 flags; u8 threshold; u16 pifi; u32 rate}
            self.v6.setsockopt(
                socket.IPPROTO_IPV6, MRT_ADD_VIF, struct.pack("@HBBHI", vif, 0, thr, idx, 0)
            )

    def wanted(self, group: bytes) -> bool:
        g = ipaddress.ip_address(group)
        return any(g in n for n in self.prefixes if n.version == g.version)

    def add_v4(self, src: bytes, grp: bytes) -> None:
        # struct mfcctl {in_addr origin, group; u16 parent; u8 ttls[32]; u32 x3; int expire}
        ttls = bytes([0] + [thr for _, thr in self.ifaces[1:]]).ljust(32, b"\0")
        mfc = struct.pack("@4s4sH32sIIIi", src, grp, 0, ttls, 0, 0, 0, 0)
        self.v4.setsockopt(socket.IPPROTO_IP, MRT_ADD_MFC, mfc)
        self.installed.add((src, grp))

    def add_v6(self, src: bytes, grp: bytes) -> None:
        # struct mf6cctl {sockaddr_in6 origin, group; u16 parent; if_set (256 bits) oifs}
        def sin6(a: bytes) -> bytes:
            return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, a, 0)

        bits = sum(1 << m for m in range(1, len(self.ifaces)))
        mfc = sin6(src) + sin6(grp) + struct.pack("=H2x", 0) + bits.to_bytes(32, "little")
        self.v6.setsockopt(socket.IPPROTO_IPV6, MRT_ADD_MFC, mfc)
        self.installed.add((src, grp))

    def add_static(self, src: str, grp: str) -> None:
        s, g = ipaddress.ip_address(src), ipaddress.ip_address(grp)
        (self.add_v6 if g.version == 6 else self.add_v4)(s.packed, g.packed)

    def handle(self, sock: socket.socket) -> None:
        msg = sock.recv(65535)
        if sock is self.v4:
            # struct igmpmsg {u32 x2; u8 msgtype; u8 mbz; u8 vif; u8 vif_hi; in_addr src, dst}
            # mbz overlays the IP protocol byte, which is never 0 for real IGMP packets.
            upcall = len(msg) >= 20 and msg[8] == NOCACHE and msg[9] == 0
            if upcall and msg[10] == 0 and self.wanted(msg[16:20]):
                self.add_v4(msg[12:16], msg[16:20])
            return
        # struct mrt6msg {u8 mbz; u8 msgtype; u16 mif; u32 pad; in6_addr src, dst}
        upcall = len(msg) >= 40 and msg[0] == 0 and msg[1] == NOCACHE
        if upcall and struct.unpack("=H", msg[2:4])[0] == 0 and self.wanted(msg[24:40]):
            self.add_v6(msg[8:24], msg[24:40])

    def serve(self) -> None:
        while True:
            for s in select.select([self.v4, self.v6], [], [])[0]:
                try:
                    self.handle(s)
                except OSError as e:  # e.g. EEXIST race; keep routing
                    print(f"mroute: {e}", file=sys.stderr, flush=True)


def parse_oif(spec: str) -> tuple[str, int]:
    name, _, thr = spec.partition(":")
    return name, int(thr) if thr else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iif", required=True)
    p.add_argument("--oif", action="append", required=True, type=parse_oif)
    p.add_argument("--prefix", action="append", required=True)
    p.add_argument("--static", action="append", default=[], help="SRC,GROUP")
    a = p.parse_args(argv)
    prefixes: list[Net] = [ipaddress.ip_network(x) for x in a.prefix]
    router = Router(a.iif, a.oif, prefixes)
    for spec in a.static:
        src, grp = spec.split(",")
        router.add_static(src, grp)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("mroute ready", flush=True)
    router.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
