"""The mcastkit sequence-number payload and per-stream receive statistics.

Wire format (network byte order, 32 bytes, then padding up to ``length``)::

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
own stream id (4 bytes). iperf2 payloads (``int32 id, u32 sec, u32 usec``; a negative id
marks the end) can be read with :func:`parse_iperf2`.

Owns: packing and parsing that header, and :class:`StreamStats` (rate, loss,
reordering, duplicates) with bounded state per source and a bounded number of sources.
Must not: do I/O or know about sockets.
"""

from __future__ import annotations

import enum
import struct
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any, Final

__all__ = [
    "HEADER_SIZE",
    "Kind",
    "SeqHeader",
    "StreamStats",
    "StreamSummary",
    "pack",
    "pack_reply",
    "parse",
    "parse_iperf2",
    "parse_reply_responder",
]

MAGIC: Final = b"MCKS"
VERSION: Final = 1
_HDR: Final = struct.Struct(">4sBBHIQQI")
HEADER_SIZE: Final = _HDR.size  # 32
_U32: Final = struct.Struct(">I")
_IPERF: Final = struct.Struct(">iII")


class Kind(enum.IntEnum):
    DATA = 0
    PROBE = 1
    REPLY = 2
    END = 3


@dataclass(frozen=True, slots=True)
class SeqHeader:
    """A parsed header."""

    kind: Kind
    stream_id: int
    seq: int
    ts_ns: int
    length: int


def pack(stream_id: int, seq: int, ts_ns: int, length: int = HEADER_SIZE,
         kind: Kind = Kind.DATA) -> bytes:
    """Build a payload of ``length`` bytes (at least the 32-byte header; zero padding).

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


class _Tracker:
    """Sequence accounting for one stream with a fixed-size window (bit mask)."""

    __slots__ = ("bytes", "duplicates", "first", "first_t", "highest", "last_t", "late",
                 "mask", "received", "reordered", "unique", "window")

    def __init__(self, seq: int, now: float, window: int) -> None:
        self.window = window
        self.first = seq
        self.highest = seq
        self.mask = 1
        self.received = 0
        self.unique = 1
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.bytes = 0
        self.first_t = now
        self.last_t = now

    def add(self, seq: int) -> str:
        if seq > self.highest:
            shift = seq - self.highest
            self.mask = ((self.mask << shift) | 1) & ((1 << self.window) - 1) \
                if shift < self.window else 1
            self.highest = seq
            self.unique += 1
            return "new"
        dist = self.highest - seq
        if dist < self.window:
            bit = 1 << dist
            if self.mask & bit:
                self.duplicates += 1
                return "duplicate"
            self.mask |= bit
        else:
            self.late += 1  # outside the window: cannot tell a duplicate, count it once
        self.reordered += 1
        self.unique += 1
        if seq < self.first:
            self.first = seq
        return "reordered"


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """Counters of one stream (or the total of all streams)."""

    stream: str
    datagrams: int
    bytes: int
    unique: int
    expected: int
    lost: int
    reordered: int
    duplicates: int
    elapsed_s: float
    pps: float
    mbps: float

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.expected if self.expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss_pct"] = round(self.loss_pct, 3)
        d["pps"] = round(self.pps, 1)
        d["mbps"] = round(self.mbps, 3)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d


class StreamStats:
    """Loss, reordering, duplicates and rate of sequenced streams.

    State is bounded: a ``window``-bit mask per stream, and at most ``max_streams``
    streams (the least recently heard one is forgotten first, and counted in
    ``evicted``).

    Args:
        window: how far back (in sequence numbers) duplicates are recognised.
        max_streams: how many (source, stream id) pairs are tracked at once.
    """

    def __init__(self, *, window: int = 1024, max_streams: int = 256) -> None:
        if window < 1 or max_streams < 1:
            raise ValueError("window and max_streams must be >= 1")
        self.window = window
        self.max_streams = max_streams
        self._streams: OrderedDict[Hashable, _Tracker] = OrderedDict()
        self._expected_total: dict[Hashable, int] = {}
        self.unsequenced = 0
        self.unsequenced_bytes = 0
        self.evicted = 0
        self._t0: float | None = None
        self._t1: float | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def _touch_time(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = now
        self._t1 = now

    def add(self, key: Hashable, seq: int, size: int, now: float) -> str:
        """Account one sequenced datagram; returns "new", "reordered" or "duplicate"."""
        self._touch_time(now)
        tr = self._streams.get(key)
        if tr is None:
            if len(self._streams) >= self.max_streams:
                self._streams.popitem(last=False)
                self.evicted += 1
            tr = _Tracker(seq, now, self.window)
            self._streams[key] = tr
            verdict = "new"
        else:
            self._streams.move_to_end(key)
            verdict = tr.add(seq)
        tr.received += 1
        tr.bytes += size
        tr.last_t = now
        return verdict

    def add_unsequenced(self, size: int, now: float) -> None:
        """Account a datagram without sequence numbers (counted for the rate only)."""
        self._touch_time(now)
        self.unsequenced += 1
        self.unsequenced_bytes += size

    def set_expected(self, key: Hashable, total: int) -> None:
        """The sender announced that it sent ``total`` datagrams numbered from 0 (END)."""
        self._expected_total[key] = total

    def _summ(self, name: str, tr: _Tracker, expected_total: int | None) -> StreamSummary:
        expected = tr.highest - tr.first + 1
        if expected_total is not None:  # the sender numbered them 0..total-1
            expected = max(expected, expected_total)
        lost = max(0, expected - tr.unique)
        elapsed = max(tr.last_t - tr.first_t, 0.0)
        pps = tr.received / elapsed if elapsed > 0 else 0.0
        mbps = tr.bytes * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
        return StreamSummary(name, tr.received, tr.bytes, tr.unique, expected, lost,
                             tr.reordered, tr.duplicates, elapsed, pps, mbps)

    def streams(self) -> list[StreamSummary]:
        """One summary per tracked stream."""
        return [self._summ(str(k), tr, self._expected_total.get(k))
                for k, tr in self._streams.items()]

    def total(self) -> StreamSummary:
        """All streams and unsequenced datagrams together."""
        per = self.streams()
        datagrams = sum(s.datagrams for s in per) + self.unsequenced
        nbytes = sum(s.bytes for s in per) + self.unsequenced_bytes
        elapsed = (self._t1 - self._t0) if self._t0 is not None and self._t1 is not None \
            else 0.0
        pps = datagrams / elapsed if elapsed > 0 else 0.0
        mbps = nbytes * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
        return StreamSummary(
            "total", datagrams, nbytes, sum(s.unique for s in per),
            sum(s.expected for s in per), sum(s.lost for s in per),
            sum(s.reordered for s in per), sum(s.duplicates for s in per), elapsed, pps, mbps)
