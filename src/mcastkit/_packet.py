"""Received datagrams and their per-packet metadata.

Owns: the :class:`Datagram` value, the reference decoder of ancillary data (control
messages) into its fields (the compiled accelerator is the only other decoder, and
tests/core/receive checks the two agree), and the one source formatter (``host%scope``). The
platform layer supplies which (level, type) pair means what, so this module has no
platform numbers of its own.
Must not: make syscalls.
"""

from __future__ import annotations

import enum
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["CmsgKind", "Datagram", "decode_ancillary", "format_source", "source_of"]

_INT: Final = struct.Struct("=i")
_U32: Final = struct.Struct("=I")
_TIMESPEC: Final = struct.Struct("=qq")
_IN_PKTINFO: Final = struct.Struct("=i4s4s")
_IN6_PKTINFO: Final = struct.Struct("=16sI")


class CmsgKind(enum.Enum):
    """What a control message carries (received direction)."""

    PKTINFO4 = "pktinfo4"
    PKTINFO6 = "pktinfo6"
    TTL = "ttl"
    HOPLIMIT = "hoplimit"
    RXQ_OVFL = "rxq_ovfl"
    TIMESTAMPNS = "timestampns"
    TOS = "tos"
    TCLASS = "tclass"


@dataclass(slots=True, eq=True)
class Datagram:
    """One received datagram. Metadata fields are ``None`` unless requested.

    Attributes:
        data: the payload (at most the receive buffer size; see ``truncated``).
        source: sender address as text (IPv6 link-local sources carry ``%ifindex``).
        port: sender UDP port.
        group: destination address, i.e. the group (received only; needs metadata).
        interface: arrival interface index (received only; needs metadata).
        ttl: TTL / hop limit as it arrived (received only; needs metadata).
        truncated: the datagram was longer than the buffer and was cut (MSG_TRUNC).
        drops: the socket's cumulative kernel drop count when this datagram was queued
            (SO_RXQ_OVFL; needs metadata). ``None`` until the socket's first drop: the
            kernel sends no count while it is zero. Deltas are what :class:`RecvStats`
            counts.
        timestamp_ns: kernel arrival time, ns since the epoch (SO_TIMESTAMPNS; opt-in).
        tos: the received TOS / traffic class byte (DSCP << 2 | ECN; opt-in).
    """

    data: bytes
    source: str
    port: int
    group: str | None = None
    interface: int | None = None
    ttl: int | None = None
    truncated: bool = False
    drops: int | None = None
    timestamp_ns: int | None = None
    tos: int | None = None

    def __str__(self) -> str:
        parts = [f"{len(self.data)}B from {self.source}:{self.port}"]
        if self.group is not None:
            parts.append(f"dst={self.group}")
        if self.interface is not None:
            parts.append(f"ifindex={self.interface}")
        if self.ttl is not None:
            parts.append(f"ttl={self.ttl}")
        if self.truncated:
            parts.append("truncated")
        if self.drops:
            parts.append(f"drops={self.drops}")
        return " ".join(parts)


def format_source(host: str, scope: int) -> str:
    """A sender as :attr:`Datagram.source` shows it: ``host``, or ``host%scope`` for an
    IPv6 sender with a scope id (link-local), so the text can be sent back to."""
    return f"{host}%{scope}" if scope else host


def source_of(addr: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """:func:`format_source` of an address tuple as ``socket.recvfrom`` returns it."""
    return format_source(addr[0], addr[3]) if len(addr) == 4 else addr[0]


def decode_ancillary(
    dgram: Datagram,
    ancdata: Iterable[tuple[int, int, bytes]],
    kinds: Mapping[tuple[int, int], CmsgKind],
) -> None:
    """Fill ``dgram``'s metadata from ``recvmsg`` ancillary data.

    Unknown or short control messages are ignored, never raised: the kernel (or a
    hostile test) may hand us anything, and the receive loop must go on (G9).
    """
    for level, ctype, raw in ancdata:
        kind = kinds.get((level, ctype))
        if kind is None:
            continue
        n = len(raw)
        if kind is CmsgKind.PKTINFO4:
            if n >= 12:
                ifindex, _spec, dst = _IN_PKTINFO.unpack_from(raw)
                dgram.interface = ifindex
                dgram.group = socket.inet_ntop(socket.AF_INET, dst)
        elif kind is CmsgKind.PKTINFO6:
            if n >= 20:
                dst6, ifindex6 = _IN6_PKTINFO.unpack_from(raw)
                dgram.interface = ifindex6
                dgram.group = socket.inet_ntop(socket.AF_INET6, dst6)
        elif kind is CmsgKind.TTL or kind is CmsgKind.HOPLIMIT:
            if n >= 4:
                dgram.ttl = _INT.unpack_from(raw)[0]
            elif n >= 1:
                dgram.ttl = raw[0]
        elif kind is CmsgKind.RXQ_OVFL:
            if n >= 4:
                dgram.drops = _U32.unpack_from(raw)[0]
        elif kind is CmsgKind.TIMESTAMPNS:
            if n >= 16:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                dgram.timestamp_ns = sec * 1_000_000_000 + nsec
        elif kind is CmsgKind.TOS or kind is CmsgKind.TCLASS:
            if n >= 4:
                dgram.tos = _INT.unpack_from(raw)[0]
            elif n >= 1:
                dgram.tos = raw[0]
