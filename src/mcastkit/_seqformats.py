"""Sequence-number formats: where a payload keeps its sequence number, and how wide it is.

Built-in formats (the names ``listen --seq``, ``record --seq`` and :func:`parse_format`
take):

===========  ======================================================================
name         what is read
===========  ======================================================================
mcastkit     the 32-byte header of ``mcastkit send/perf/ping`` (below); 64-bit,
             one stream per stream id; an END datagram announces the total sent
iperf2       iperf 2's UDP payload: int32 id (network order); a negative id marks
             the closing datagrams (32-bit)
iperf2-64    the same with iperf 2's 64-bit counters (``--udp-counters-64bit``):
             the upper 32 bits follow the timestamp at offset 12
rtp          RTP (RFC 3550): version 2, 16-bit sequence number at offset 2, one
             stream per SSRC
moldudp64    MoldUDP64 (Nasdaq): 10-byte session, 64-bit sequence number of the
             first message, 16-bit message count; counts messages; count 0 is a
             heartbeat, 0xFFFF ends the session
uN[be|le]@O  a generic unsigned N-bit counter (N = 8, 16, 32 or 64) at byte
             offset O, big-endian unless ``le`` is given: ``u32@0``, ``u64le@8``
===========  ======================================================================

The mcastkit header (network byte order, 32 bytes, then padding up to ``length``)::

    offset size field
    0      4    magic  b"MCKS"
    4      1    version (1)
    5      1    kind   (0 DATA, 1 PROBE, 2 REPLY, 3 END)
    6      2    flags  (reserved, 0)
    8      4    stream id (random per sender run)
    12     8    sequence number (0, 1, 2...; END carries the number of DATA sent)
    20     8    send timestamp, ns since the epoch
    28     4    length of the whole payload in bytes

A REPLY echoes the probe's stream id, sequence and timestamp and appends the responder's
own stream id (4 bytes).

Owns: packing and parsing the mcastkit header, reading the sequence number of every
format above into a :class:`SeqMark`, and :func:`parse_format` (the ``--seq`` syntax).
Must not: do I/O, know about sockets, or count anything (:mod:`mcastkit._seqstats` does).
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ._errors import McastValueError

__all__ = [
    "FORMAT_NAMES",
    "HEADER_SIZE",
    "Kind",
    "MarkKind",
    "SeqFormat",
    "SeqHeader",
    "SeqMark",
    "pack",
    "pack_reply",
    "parse",
    "parse_format",
    "parse_iperf2",
    "parse_reply_responder",
]

MAGIC: Final = b"MCKS"
VERSION: Final = 1
_HDR: Final = struct.Struct(">4sBBHIQQI")
HEADER_SIZE: Final = _HDR.size  # 32
_U32: Final = struct.Struct(">I")
_IPERF: Final = struct.Struct(">iII")
_IPERF64: Final = struct.Struct(">iIII")
_RTP: Final = struct.Struct(">BBHII")
_MOLD: Final = struct.Struct(">10sQH")


class Kind(enum.IntEnum):
    """What an mcastkit payload is."""

    DATA = 0
    PROBE = 1
    REPLY = 2
    END = 3


@dataclass(frozen=True, slots=True)
class SeqHeader:
    """A parsed mcastkit header."""

    kind: Kind
    stream_id: int
    seq: int
    ts_ns: int
    length: int


def pack(stream_id: int, seq: int, ts_ns: int, length: int = HEADER_SIZE,
         kind: Kind = Kind.DATA) -> bytes:
    """Build an mcastkit payload of ``length`` bytes (at least the header; zero padding).

    Raises:
        ValueError: a field is out of range.
    """
    size = max(length, HEADER_SIZE)
    try:
        head = _HDR.pack(MAGIC, VERSION, int(kind), 0, stream_id, seq, ts_ns, size)
    except struct.error as exc:
        raise ValueError(f"sequence header field out of range: {exc}") from None
    return head + bytes(size - HEADER_SIZE)


def pack_reply(probe: SeqHeader, responder_id: int) -> bytes:
    """A REPLY to ``probe``: its stream id, sequence and timestamp, plus ours."""
    head = _HDR.pack(MAGIC, VERSION, int(Kind.REPLY), 0, probe.stream_id, probe.seq,
                     probe.ts_ns, HEADER_SIZE + 4)
    return head + _U32.pack(responder_id & 0xFFFFFFFF)


def parse(data: bytes) -> SeqHeader | None:
    """The header of an mcastkit payload, or None for anything else (never raises)."""
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        return None
    _m, ver, kind, _flags, sid, seq, ts, length = _HDR.unpack_from(data)
    if ver != VERSION or kind > Kind.END:
        return None
    return SeqHeader(Kind(kind), sid, seq, ts, length)


def parse_reply_responder(data: bytes) -> int | None:
    """The responder id appended to a REPLY, or None."""
    if len(data) < HEADER_SIZE + 4:
        return None
    return int(_U32.unpack_from(data, HEADER_SIZE)[0])


def parse_iperf2(data: bytes) -> tuple[int, bool] | None:
    """(sequence, is_final) of an iperf2 UDP payload, or None if too short.

    iperf2 numbers datagrams from 0 (or 1) and marks the closing datagrams with the
    negated sequence number."""
    if len(data) < _IPERF.size:
        return None
    ident, _sec, _usec = _IPERF.unpack_from(data)
    return (-ident, True) if ident < 0 else (ident, False)


class MarkKind(enum.Enum):
    """What a sequenced payload says."""

    DATA = "data"            #: sequence number ``seq`` (and ``span - 1`` after it)
    END = "end"              #: the sender ended; its next number would have been ``seq``
    HEARTBEAT = "heartbeat"  #: no data; the next number will be ``seq``


@dataclass(frozen=True, slots=True)
class SeqMark:
    """The sequence information of one payload.

    Attributes:
        seq: the sequence number as sent (``bits`` wide, not yet unwrapped).
        bits: the counter's width: it wraps from 2**bits - 1 to 0.
        sub: what tells streams of one sender apart (SSRC, stream id, session) or None.
        kind: data, end of stream, or heartbeat.
        span: how many numbers this payload covers (MoldUDP64's message count), else 1.
    """

    seq: int
    bits: int
    sub: int | str | None = None
    kind: MarkKind = MarkKind.DATA
    span: int = 1


Reader = Callable[[bytes], "SeqMark | None"]


@dataclass(frozen=True, slots=True)
class SeqFormat:
    """A sequence-number format: ``read(payload)`` is its :class:`SeqMark` or None
    (a payload that does not carry one; never raises)."""

    name: str
    bits: int
    read: Reader


def _read_mcastkit(data: bytes) -> SeqMark | None:
    h = parse(data)
    if h is None:
        return None
    if h.kind is Kind.DATA:
        return SeqMark(h.seq, 64, f"{h.stream_id:08x}")
    if h.kind is Kind.END:
        return SeqMark(h.seq, 64, f"{h.stream_id:08x}", MarkKind.END)
    return None  # probes and replies are ping's, not a stream


def _read_iperf2(data: bytes) -> SeqMark | None:
    got = parse_iperf2(data)
    if got is None:
        return None
    seq, final = got
    # the closing datagrams carry the next id, negated
    return SeqMark(seq, 32, None, MarkKind.END) if final else SeqMark(seq, 32)


def _read_iperf2_64(data: bytes) -> SeqMark | None:
    if len(data) < _IPERF64.size:
        return None
    low, _sec, _usec, high = _IPERF64.unpack_from(data)
    if low < 0:  # closing datagram: the low word negated
        seq = (high << 31) | (-low & 0x7FFFFFFF)
        return SeqMark(seq, 64, None, MarkKind.END)
    return SeqMark((high << 32) | low, 64)


def _read_rtp(data: bytes) -> SeqMark | None:
    if len(data) < _RTP.size or data[0] >> 6 != 2:
        return None
    _b0, _b1, seq, _ts, ssrc = _RTP.unpack_from(data)
    return SeqMark(seq, 16, f"{ssrc:08x}")


def _read_mold(data: bytes) -> SeqMark | None:
    if len(data) < _MOLD.size:
        return None
    session, seq, count = _MOLD.unpack_from(data)
    sub = session.decode("ascii", "replace").rstrip()
    if count == 0:
        return SeqMark(seq, 64, sub, MarkKind.HEARTBEAT)
    if count == 0xFFFF:  # end of session: seq is the next number
        return SeqMark(seq, 64, sub, MarkKind.END)
    return SeqMark(seq, 64, sub, MarkKind.DATA, count)


def _generic(bits: int, little: bool, offset: int) -> Reader:
    st = struct.Struct(("<" if little else ">") + {8: "B", 16: "H", 32: "I", 64: "Q"}[bits])
    end = offset + st.size

    def read(data: bytes) -> SeqMark | None:
        if len(data) < end:
            return None
        return SeqMark(int(st.unpack_from(data, offset)[0]), bits)

    return read


_BUILTIN: Final[dict[str, SeqFormat]] = {
    "mcastkit": SeqFormat("mcastkit", 64, _read_mcastkit),
    "iperf2": SeqFormat("iperf2", 32, _read_iperf2),
    "iperf2-64": SeqFormat("iperf2-64", 64, _read_iperf2_64),
    "rtp": SeqFormat("rtp", 16, _read_rtp),
    "moldudp64": SeqFormat("moldudp64", 64, _read_mold),
}
FORMAT_NAMES: Final = (*_BUILTIN, "uN[be|le]@OFFSET")
_GENERIC = re.compile(r"u(8|16|32|64)(be|le)?@(\d{1,5})")


def parse_format(spec: str) -> SeqFormat:
    """The :class:`SeqFormat` named by ``spec`` (a built-in name or ``uN[be|le]@OFFSET``).

    Raises:
        McastValueError: an unknown name or a malformed generic form; the message lists
            the valid spellings.
    """
    text = spec.strip().lower()
    fmt = _BUILTIN.get(text)
    if fmt is not None:
        return fmt
    m = _GENERIC.fullmatch(text)
    if m is None:
        raise McastValueError(
            f"sequence format {spec!r} is unknown; use one of {', '.join(_BUILTIN)} or "
            "uN[be|le]@OFFSET (N = 8, 16, 32, 64; e.g. u32@0, u64le@8)")
    bits, order, offset = int(m[1]), m[2] or "be", int(m[3])
    if offset > 65535:
        raise McastValueError(f"sequence format {spec!r}: offset {offset} is past the largest "
                              "UDP payload; use 0-65535")
    return SeqFormat(f"u{bits}{order}@{offset}", bits, _generic(bits, order == "le", offset))
