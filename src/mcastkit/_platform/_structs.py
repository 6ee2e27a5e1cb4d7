"""Packers for the kernel structs that multicast socket options take.

Owns: byte layouts of ``sockaddr_in(6)``, ``ip_mreqn``, ``group_req``,
``group_source_req``, ``in_pktinfo`` and ``in6_pktinfo``, and of the batch I/O structs
``mmsghdr`` / ``iovec`` / ``cmsghdr`` with the control-message walker (all checked against
ctypes in tests/core/platform/test_structs.py and tests/core/platform/test_structs_cmsg.py).
Must not: call setsockopt or keep state; know which control message means what (that is
the platform table's ``CMSG_KINDS``).
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
import sys
from typing import Final

from .._addr import IPAddress

__all__ = [
    "CMSG_HDR",
    "CTRL_SIZE",
    "GROUP_REQ_SIZE",
    "GROUP_SOURCE_REQ_SIZE",
    "IOVEC",
    "MMSGHDR",
    "MMSG_LEN_OFFSET",
    "MSG_CONTROLLEN_OFFSET",
    "MSG_FLAGS_OFFSET",
    "NAME_SIZE",
    "SOCKADDR_STORAGE_SIZE",
    "cmsg_align",
    "pack_dest",
    "pack_group_req",
    "pack_group_source_req",
    "pack_in6_pktinfo",
    "pack_in_pktinfo",
    "pack_iovec",
    "pack_ip_mreqn",
    "pack_mmsghdr",
    "pack_sockaddr",
    "parse_cmsgs",
    "unpack_in6_pktinfo",
    "unpack_in_pktinfo",
    "unpack_sockaddr",
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


def pack_ip_mreqn(group: ipaddress.IPv4Address, ifindex: int,
                  address: ipaddress.IPv4Address | None = None) -> bytes:
    """``struct ip_mreqn`` (IPv4 only; IP_MULTICAST_IF by index, with ``address`` as
    the source of the datagrams sent: ``imr_address``)."""
    return _MREQN.pack(group.packed, address.packed if address is not None else b"\0" * 4,
                       ifindex)


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


def unpack_sockaddr(raw: bytes) -> tuple[str, int, int]:
    """(host, port, scope id) of a ``sockaddr_in(6)`` as the kernel fills ``msg_name``.

    A short or unknown address gives ``("", 0, 0)`` (never raises on kernel input)."""
    fam = int.from_bytes(raw[0:2], sys.byteorder) if len(raw) >= 2 else 0
    if fam == socket.AF_INET6 and len(raw) >= 28:
        _f, port, _flow, addr, scope = _SIN6.unpack_from(raw)
        return socket.inet_ntop(socket.AF_INET6, addr), socket.ntohs(port), scope
    if fam == socket.AF_INET and len(raw) >= 16:
        _f, port, addr = _SIN.unpack_from(raw)
        return socket.inet_ntop(socket.AF_INET, addr), socket.ntohs(port), 0
    return "", 0, 0


def pack_dest(dest: tuple[str, int] | tuple[str, int, int, int]) -> bytes:
    """The exact ``sockaddr_in(6)`` bytes (16 or 28) of a destination as ``sendto`` takes it."""
    ip = ipaddress.ip_address(dest[0])
    scope = dest[3] if len(dest) == 4 else 0
    return pack_sockaddr(ip, dest[1], scope)[: 16 if ip.version == 4 else 28]


# --------------------------------------------------------------------------- batch I/O
# Native-aligned formats; "0P" pads to pointer alignment as the C compiler does at the end
# of the msghdr embedded in mmsghdr and of mmsghdr itself.
MMSGHDR: Final = struct.Struct("@PIPNPNi0PI0P")  # struct mmsghdr {msghdr; msg_len}
IOVEC: Final = struct.Struct("@PN")
CMSG_HDR: Final = struct.Struct("@Nii")  # cmsg_len (size_t), cmsg_level, cmsg_type
MSG_CONTROLLEN_OFFSET: Final = struct.calcsize("@PIPNP")
MSG_FLAGS_OFFSET: Final = struct.calcsize("@PIPNPN")
MMSG_LEN_OFFSET: Final = struct.calcsize("@PIPNPNi0P")
_ALIGN: Final = struct.calcsize("@N")  # CMSG_ALIGN unit on Linux (sizeof(size_t))
NAME_SIZE: Final = 32  # msg_name room per message: >= sizeof(sockaddr_in6) == 28, 8-aligned
CTRL_SIZE: Final = 256  # msg_control room per message: timestamp+overflow+pktinfo+ttl+tos


def pack_mmsghdr(name: int, namelen: int, iov: int, iovlen: int, control: int,
                 controllen: int, flags: int = 0, msg_len: int = 0) -> bytes:
    """Bytes of one ``struct mmsghdr`` (pointers given as integer addresses)."""
    return MMSGHDR.pack(name, namelen, iov, iovlen, control, controllen, flags, msg_len)


def pack_iovec(base: int, length: int) -> bytes:
    """Bytes of one ``struct iovec``."""
    return IOVEC.pack(base, length)


def cmsg_align(n: int) -> int:
    """``CMSG_ALIGN``: control messages are padded to a multiple of ``sizeof(size_t)``."""
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


def parse_cmsgs(buf: bytes | memoryview, start: int = 0, length: int | None = None
                ) -> list[tuple[int, int, bytes]]:
    """Walk the control messages in ``buf[start:start+length]`` (CMSG_FIRSTHDR/NXTHDR) into
    the ``(level, type, data)`` triples ``socket.recvmsg`` returns.

    A truncated or malformed header ends the walk; what was read so far is returned
    (never raises on kernel or hostile input).
    """
    end = len(buf) if length is None else min(len(buf), start + length)
    out: list[tuple[int, int, bytes]] = []
    pos = start
    hdr = CMSG_HDR.size
    while pos + hdr <= end:
        clen, level, ctype = CMSG_HDR.unpack_from(buf, pos)
        if clen < hdr or pos + clen > end:
            break
        out.append((level, ctype, bytes(buf[pos + hdr:pos + clen])))
        pos += cmsg_align(clen)
    return out
