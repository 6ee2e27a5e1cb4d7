"""Reference layouts and packers that only tests need (kept out of ``src/``).

Owns: the kernel numbers only tests use (in neither ``socket`` nor the platform table),
the ctypes declarations of ``struct iovec`` / ``msghdr`` / ``mmsghdr`` that the
hand-packed layouts of ``mcastkit._platform._structs`` are checked against, and
:func:`pack_cmsgs`, which lays control messages out as the kernel does (for fuzzing the
decoders with kernel-shaped input).
Must not: be imported by ``src/``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from mcastkit._platform._structs import CMSG_HDR, cmsg_align

__all__ = ["MCAST_MSFILTER", "IOVec", "MMsgHdr", "MsgHdr", "pack_cmsgs"]

#: linux/in.h; the same number for IPv4 and IPv6. Only tests read a socket's source
#: filter, so neither the platform table nor Python's socket module has it.
MCAST_MSFILTER = 48


class IOVec(ctypes.Structure):
    """``struct iovec``."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    """``struct msghdr`` as glibc declares it on Linux."""

    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class MMsgHdr(ctypes.Structure):
    """``struct mmsghdr``: one msghdr plus the byte count the kernel filled in."""

    _fields_ = [("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint)]


def pack_cmsgs(items: Sequence[tuple[int, int, bytes]]) -> bytes:
    """Lay control messages out as the kernel does (each padded to CMSG_SPACE)."""
    out = bytearray()
    for level, ctype, data in items:
        length = CMSG_HDR.size + len(data)
        out += CMSG_HDR.pack(length, level, ctype) + data
        out += b"\0" * (cmsg_align(length) - length)
    return bytes(out)
