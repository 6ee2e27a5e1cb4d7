"""Packers for the kernel structs that multicast socket options take.

Owns: byte layouts of ``sockaddr_in(6)``, ``ip_mreqn``, ``group_req``,
``group_source_req``, ``in_pktinfo`` and ``in6_pktinfo`` (checked against ctypes in tests).
Must not: call setsockopt or keep state.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
from typing import Final

from .._addr import IPAddress

__all__ = [
    "GROUP_REQ_SIZE",
    "GROUP_SOURCE_REQ_SIZE",
    "SOCKADDR_STORAGE_SIZE",
    "pack_group_req",
    "pack_group_source_req",
    "pack_in6_pktinfo",
    "pack_in_pktinfo",
    "pack_ip_mreqn",
    "pack_sockaddr",
    "unpack_in6_pktinfo",
    "unpack_in_pktinfo",
]

SOCKADDR_STORAGE_SIZE: Final = 128
# struct sockaddr_storage is aligned like unsigned long, so group_req pads its u32 interface.
_SS_ALIGN: Final = ctypes.alignment(ctypes.c_ulong)
_PAD: Final = (-4) % _SS_ALIGN
GROUP_REQ_SIZE: Final = 4 + _PAD + SOCKADDR_STORAGE_SIZE
GROUP_SOURCE_REQ_SIZE: Final = 4 + _PAD + 2 * SOCKADDR_STORAGE_SIZE

_SIN: Final = struct.Struct("=HH4s8x")  # family (host order), port (network), addr, zero
_SIN6: Final = struct.Struct("=HH4s16sI")  # family, port, flowinfo, addr, scope_id
_MREQN: Final = struct.Struct("=4s4si")
_IN_PKTINFO: Final = struct.Struct("=i4s4s")
_IN6_PKTINFO: Final = struct.Struct("=16sI")


def pack_sockaddr(addr: IPAddress, port: int = 0, scope_id: int = 0) -> bytes:
    """``sockaddr_in`` or ``sockaddr_in6`` padded to ``sockaddr_storage``."""
    if addr.version == 4:
        raw = _SIN.pack(socket.AF_INET, socket.htons(port), addr.packed)
    else:
        raw = _SIN6.pack(socket.AF_INET6, socket.htons(port), b"\0" * 4, addr.packed, scope_id)
    return raw.ljust(SOCKADDR_STORAGE_SIZE, b"\0")


def pack_group_req(ifindex: int, group: IPAddress) -> bytes:
    """``struct group_req`` for MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP (RFC 3678)."""
    return struct.pack("=I", ifindex) + b"\0" * _PAD + pack_sockaddr(group)


def pack_group_source_req(ifindex: int, group: IPAddress, source: IPAddress) -> bytes:
    """``struct group_source_req`` for the MCAST_*_SOURCE_* options (RFC 3678)."""
    return (
        struct.pack("=I", ifindex) + b"\0" * _PAD + pack_sockaddr(group) + pack_sockaddr(source)
    )


def pack_ip_mreqn(group: ipaddress.IPv4Address, ifindex: int) -> bytes:
    """``struct ip_mreqn`` (IPv4 only; used for IP_MULTICAST_IF by index)."""
    return _MREQN.pack(group.packed, b"\0" * 4, ifindex)


def pack_in_pktinfo(ifindex: int, spec_dst: ipaddress.IPv4Address) -> bytes:
    """``struct in_pktinfo`` for sending with a chosen source address (IP_PKTINFO cmsg)."""
    return _IN_PKTINFO.pack(ifindex, spec_dst.packed, b"\0" * 4)


def pack_in6_pktinfo(ifindex: int, addr: ipaddress.IPv6Address) -> bytes:
    return _IN6_PKTINFO.pack(addr.packed, ifindex)


def unpack_in_pktinfo(data: bytes) -> tuple[int, str]:
    """Return (arrival ifindex, destination address) from an IP_PKTINFO cmsg."""
    ifindex, _spec, dst = _IN_PKTINFO.unpack_from(data)
    return ifindex, socket.inet_ntop(socket.AF_INET, dst)


def unpack_in6_pktinfo(data: bytes) -> tuple[int, str]:
    """Return (arrival ifindex, destination address) from an IPV6_PKTINFO cmsg."""
    dst, ifindex = _IN6_PKTINFO.unpack_from(data)
    return ifindex, socket.inet_ntop(socket.AF_INET6, dst)
