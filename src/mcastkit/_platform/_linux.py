"""Linux socket options, by family. Numbers from <linux/in.h>, <linux/in6.h>,
<asm-generic/socket.h> and <linux/udp.h>, many of which Python's socket module lacks.

Owns: the Linux rows of the option table and of the control-message table.
Must not: call setsockopt (the core does, through mcastkit._platform).
"""

from __future__ import annotations

import socket
from typing import Final

from .._packet import CmsgKind
from ._table import Op, Opt

__all__ = ["AF_PACKET", "ARPHRD_ETHER", "ARPHRD_LOOPBACK", "CMSG_KINDS", "LINK_TYPES", "OPTIONS",
           "PLATFORM", "PR_GET_TIMERSLACK", "PR_SET_TIMERSLACK", "SIOCGIFHWADDR"]

PLATFORM: Final = "linux"

SOL_SOCKET: Final = socket.SOL_SOCKET
IPPROTO_IP: Final = socket.IPPROTO_IP
IPPROTO_IPV6: Final = socket.IPPROTO_IPV6
SOL_UDP: Final = 17

# <linux/in.h>
IP_TOS: Final = 1
IP_TTL: Final = 2
IP_PKTINFO: Final = 8
IP_MTU_DISCOVER: Final = 10
IP_RECVERR: Final = 11
IP_RECVTTL: Final = 12
IP_RECVTOS: Final = 13
IP_MULTICAST_IF: Final = 32
IP_MULTICAST_TTL: Final = 33
IP_MULTICAST_LOOP: Final = 34
IP_MULTICAST_ALL: Final = 49
IP_UNICAST_IF: Final = 50  # the index in network byte order; needs no privilege
IP_PMTUDISC_DONT: Final = 0
IP_PMTUDISC_DO: Final = 2
MCAST_JOIN_GROUP: Final = 42
MCAST_BLOCK_SOURCE: Final = 43
MCAST_UNBLOCK_SOURCE: Final = 44
MCAST_LEAVE_GROUP: Final = 45
MCAST_JOIN_SOURCE_GROUP: Final = 46
MCAST_LEAVE_SOURCE_GROUP: Final = 47
# <linux/in6.h>
IPV6_MTU_DISCOVER: Final = 23
IPV6_RECVERR: Final = 25
IPV6_V6ONLY: Final = 26
IPV6_UNICAST_IF: Final = 76
IPV6_MULTICAST_IF: Final = 17
IPV6_MULTICAST_HOPS: Final = 18
IPV6_MULTICAST_LOOP: Final = 19
IPV6_MULTICAST_ALL: Final = 29
IPV6_RECVPKTINFO: Final = 49
IPV6_PKTINFO: Final = 50
IPV6_RECVHOPLIMIT: Final = 51
IPV6_HOPLIMIT: Final = 52
IPV6_DONTFRAG: Final = 62
IPV6_RECVTCLASS: Final = 66
IPV6_TCLASS: Final = 67
IPV6_PMTUDISC_DONT: Final = 0
IPV6_PMTUDISC_DO: Final = 2
# <asm-generic/socket.h>
SO_REUSEADDR: Final = 2
SO_BROADCAST: Final = 6
SO_SNDBUF: Final = 7
SO_RCVBUF: Final = 8
SO_REUSEPORT: Final = 15
SO_TIMESTAMPNS: Final = 35
SO_RXQ_OVFL: Final = 40
# <linux/udp.h>
UDP_SEGMENT: Final = 103

# The raw send path (mcastkit._rawsend): AF_PACKET (Python has it on Linux only),
# SIOCGIFHWADDR (<linux/sockios.h>) and the ARPHRD_* link types (<linux/if_arp.h>).
AF_PACKET: Final[int | None] = getattr(socket, "AF_PACKET", None)
SIOCGIFHWADDR: Final = 0x8927
ARPHRD_ETHER: Final = 1
ARPHRD_LOOPBACK: Final = 772
LINK_TYPES: Final[dict[int, str]] = {
    1: "Ethernet", 24: "IEEE 1394", 32: "InfiniBand", 512: "PPP", 768: "IPIP tunnel",
    769: "IPv6-in-IPv6 tunnel", 772: "loopback", 776: "SIT tunnel", 778: "GRE tunnel",
    823: "GRE6 tunnel", 65534: "no link layer (tun, WireGuard)",
}

# <linux/prctl.h>: the calling thread's timer slack in ns (mcastkit._platform._thread)
PR_SET_TIMERSLACK: Final[int | None] = 29
PR_GET_TIMERSLACK: Final[int | None] = 30

_COMMON: Final[dict[Op, Opt]] = {
    Op.REUSEADDR: Opt(SOL_SOCKET, SO_REUSEADDR),
    Op.REUSEPORT: Opt(SOL_SOCKET, SO_REUSEPORT),
    Op.RXQ_OVFL: Opt(SOL_SOCKET, SO_RXQ_OVFL),
    Op.TIMESTAMPNS: Opt(SOL_SOCKET, SO_TIMESTAMPNS),
    Op.RCVBUF: Opt(SOL_SOCKET, SO_RCVBUF),
    Op.SNDBUF: Opt(SOL_SOCKET, SO_SNDBUF),
    Op.UDP_SEGMENT: Opt(SOL_UDP, UDP_SEGMENT),
    Op.BROADCAST: Opt(SOL_SOCKET, SO_BROADCAST),  # the core refuses it on IPv6
}

OPTIONS: Final[dict[int, dict[Op, Opt]]] = {
    socket.AF_INET: {
        **_COMMON,
        Op.JOIN: Opt(IPPROTO_IP, MCAST_JOIN_GROUP),
        Op.LEAVE: Opt(IPPROTO_IP, MCAST_LEAVE_GROUP),
        Op.JOIN_SOURCE: Opt(IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP),
        Op.LEAVE_SOURCE: Opt(IPPROTO_IP, MCAST_LEAVE_SOURCE_GROUP),
        Op.BLOCK_SOURCE: Opt(IPPROTO_IP, MCAST_BLOCK_SOURCE),
        Op.UNBLOCK_SOURCE: Opt(IPPROTO_IP, MCAST_UNBLOCK_SOURCE),
        Op.MULTICAST_ALL: Opt(IPPROTO_IP, IP_MULTICAST_ALL),
        Op.MULTICAST_IF: Opt(IPPROTO_IP, IP_MULTICAST_IF),
        Op.MULTICAST_TTL: Opt(IPPROTO_IP, IP_MULTICAST_TTL),
        Op.MULTICAST_LOOP: Opt(IPPROTO_IP, IP_MULTICAST_LOOP),
        Op.RECV_PKTINFO: Opt(IPPROTO_IP, IP_PKTINFO),
        Op.RECV_TTL: Opt(IPPROTO_IP, IP_RECVTTL),
        Op.RECV_TOS: Opt(IPPROTO_IP, IP_RECVTOS),
        Op.MTU_DISCOVER: Opt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_PMTUDISC_DONT),
        Op.TOS: Opt(IPPROTO_IP, IP_TOS),
        Op.RECVERR: Opt(IPPROTO_IP, IP_RECVERR),
        Op.UNICAST_IF: Opt(IPPROTO_IP, IP_UNICAST_IF),
    },
    socket.AF_INET6: {
        **_COMMON,
        Op.JOIN: Opt(IPPROTO_IPV6, MCAST_JOIN_GROUP),
        Op.LEAVE: Opt(IPPROTO_IPV6, MCAST_LEAVE_GROUP),
        Op.JOIN_SOURCE: Opt(IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP),
        Op.LEAVE_SOURCE: Opt(IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP),
        Op.BLOCK_SOURCE: Opt(IPPROTO_IPV6, MCAST_BLOCK_SOURCE),
        Op.UNBLOCK_SOURCE: Opt(IPPROTO_IPV6, MCAST_UNBLOCK_SOURCE),
        Op.MULTICAST_ALL: Opt(IPPROTO_IPV6, IPV6_MULTICAST_ALL),
        Op.MULTICAST_IF: Opt(IPPROTO_IPV6, IPV6_MULTICAST_IF),
        Op.MULTICAST_TTL: Opt(IPPROTO_IPV6, IPV6_MULTICAST_HOPS),
        Op.MULTICAST_LOOP: Opt(IPPROTO_IPV6, IPV6_MULTICAST_LOOP),
        Op.RECV_PKTINFO: Opt(IPPROTO_IPV6, IPV6_RECVPKTINFO),
        Op.RECV_TTL: Opt(IPPROTO_IPV6, IPV6_RECVHOPLIMIT),
        Op.RECV_TOS: Opt(IPPROTO_IPV6, IPV6_RECVTCLASS),
        Op.MTU_DISCOVER: Opt(IPPROTO_IPV6, IPV6_DONTFRAG, 1, 0),
        Op.TOS: Opt(IPPROTO_IPV6, IPV6_TCLASS),
        Op.V6ONLY: Opt(IPPROTO_IPV6, IPV6_V6ONLY),
        Op.RECVERR: Opt(IPPROTO_IPV6, IPV6_RECVERR),
        Op.UNICAST_IF: Opt(IPPROTO_IPV6, IPV6_UNICAST_IF),  # host byte order (unused)
    },
}

CMSG_KINDS: Final[dict[tuple[int, int], CmsgKind]] = {
    (IPPROTO_IP, IP_PKTINFO): CmsgKind.PKTINFO4,
    (IPPROTO_IP, IP_TTL): CmsgKind.TTL,
    (IPPROTO_IP, IP_TOS): CmsgKind.TOS,
    (IPPROTO_IPV6, IPV6_PKTINFO): CmsgKind.PKTINFO6,
    (IPPROTO_IPV6, IPV6_HOPLIMIT): CmsgKind.HOPLIMIT,
    (IPPROTO_IPV6, IPV6_TCLASS): CmsgKind.TCLASS,
    (SOL_SOCKET, SO_RXQ_OVFL): CmsgKind.RXQ_OVFL,
    (SOL_SOCKET, SO_TIMESTAMPNS): CmsgKind.TIMESTAMPNS,
}
