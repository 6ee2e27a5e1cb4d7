"""Abstract socket-option ids and the row type that each platform table fills in.

Owns: :class:`Op` (what the core wants done) and :class:`Opt` (how one platform does it).
Whether a platform supports an operation is only whether its table has the row.
Must not: know any platform's numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Op", "Opt"]


class Op(enum.Enum):
    JOIN = "join"  # any-source join by ifindex
    LEAVE = "leave"
    JOIN_SOURCE = "join_source"  # source-specific (S,G) join
    LEAVE_SOURCE = "leave_source"
    BLOCK_SOURCE = "block_source"  # exclude one source from an any-source join
    UNBLOCK_SOURCE = "unblock_source"
    MULTICAST_ALL = "multicast_all"  # deliver groups other sockets joined (Linux default on)
    MULTICAST_IF = "multicast_if"  # outgoing interface, by index
    MULTICAST_TTL = "multicast_ttl"
    MULTICAST_LOOP = "multicast_loop"
    RECV_PKTINFO = "recv_pktinfo"
    RECV_TTL = "recv_ttl"
    RECV_TOS = "recv_tos"
    RXQ_OVFL = "rxq_ovfl"
    TIMESTAMPNS = "timestampns"
    MTU_DISCOVER = "mtu_discover"  # don't-fragment
    TOS = "tos"  # DSCP << 2
    V6ONLY = "v6only"
    REUSEADDR = "reuseaddr"
    REUSEPORT = "reuseport"
    RECVERR = "recverr"
    UDP_SEGMENT = "udp_segment"  # UDP GSO segment size
    RCVBUF = "rcvbuf"
    SNDBUF = "sndbuf"
    BROADCAST = "broadcast"  # SO_BROADCAST: may send to broadcast addresses
    UNICAST_IF = "unicast_if"  # outgoing interface of non-multicast sends (broadcast)


@dataclass(frozen=True, slots=True)
class Opt:
    """One row: the (level, name) pair and, for DONTFRAG, the on/off values."""

    level: int
    name: int
    on: int = 1
    off: int = 0
