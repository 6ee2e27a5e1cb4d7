"""Per-stream sequence accounting: loss, gaps, reordering, duplicates, late arrivals.

Counters of one stream (:class:`StreamSummary`):

- ``unique``: distinct sequence numbers seen; ``expected``: how many numbers lie between
  the lowest and the highest seen (or up to an announced end); ``lost``: expected - unique
  (a number that arrives late is not lost).
- ``gaps``: runs of consecutive missing numbers (a burst of loss counts once, however
  long; a hole that a late arrival filled is no gap); ``reordered``: numbers that
  arrived after a higher one;
  ``late``: the part of ``reordered`` that was older than the duplicate window (cannot be
  told from a duplicate, counted once as reordered); ``duplicates``: numbers seen twice
  within the window.

Counters wrap: a stream declares its width (``bits``) and a number that is less than
half the counter range ahead of the highest one seen is ahead (RFC 3550's rule, for any
width), so 65535 → 0 (RTP) and 2**64 - 1 → 0 are one step forward, not a loss of 2**64.

Owns: :class:`StreamStats` and the unwrapping rule. State is bounded: a ``window``-bit
mask per stream and at most ``max_streams`` streams.
Must not: do I/O, parse payloads (:mod:`mcastkit._seqformats` does), know about sockets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["StreamStats", "StreamSummary", "unwrap"]


def unwrap(raw: int, bits: int, ref: int) -> int:
    """The extended value of the ``bits``-wide counter ``raw`` closest to ``ref``.

    ``ref`` is an already extended value (it may exceed 2**bits after a wrap). A value up
    to half the range ahead of ``ref`` is ahead; anything else is behind.
    """
    mod = 1 << bits
    delta = (raw - ref) % mod
    return ref + delta if delta < (mod >> 1) else ref + delta - mod


def _zero_runs(x: int, width: int) -> int:
    """Runs of 0 bits in the low ``width`` bits of ``x``."""
    if width <= 0:
        return 0
    if x == 0:
        return 1
    z = ~x & ((1 << width) - 1)
    return (z & ~(z << 1)).bit_count()


class _Tracker:
    """Sequence accounting for one stream with a fixed-size window (bit mask)."""

    __slots__ = ("bits", "bytes", "duplicates", "fallen_gaps", "fallen_zero", "first",
                 "first_t", "highest", "last_t", "late", "mask", "received", "reordered",
                 "unique", "window")

    def __init__(self, seq: int, now: float, window: int, bits: int | None) -> None:
        self.window = window
        self.bits = bits
        self.first = seq
        self.highest = seq
        self.mask = 1
        self.received = 0
        self.unique = 1
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.fallen_gaps = 0  # runs of missing numbers that left the window
        self.fallen_zero = False  # the newest number that left the window was missing
        self.bytes = 0
        self.first_t = now
        self.last_t = now

    def extend(self, raw: int) -> int:
        return raw if self.bits is None else unwrap(raw, self.bits, self.highest)

    def _valid(self) -> int:
        return min(self.window, self.highest - self.first + 1)

    def _fall(self, chunk: int, width: int) -> None:
        """Numbers leave the window (oldest at bit ``width - 1``): count their gaps."""
        if width <= 0:
            return
        runs = _zero_runs(chunk, width)
        if self.fallen_zero and not (chunk >> (width - 1)) & 1:
            runs -= 1  # the run goes on from the previous chunk
        self.fallen_gaps += runs
        self.fallen_zero = not chunk & 1

    def gaps(self) -> int:
        valid = self._valid()
        runs = _zero_runs(self.mask, valid)
        if runs and self.fallen_zero and not (self.mask >> (valid - 1)) & 1:
            runs -= 1
        return self.fallen_gaps + runs

    def add(self, seq: int) -> str:
        if seq > self.highest:
            shift = seq - self.highest
            valid = self._valid()
            if shift < self.window:
                full = (self.mask << shift) | 1
                self._fall(full >> self.window, valid + shift - self.window)
                self.mask = full & ((1 << self.window) - 1)
            else:  # everything leaves the window, then shift - 1 missing numbers
                self._fall(self.mask, valid)
                self._fall(0, shift - self.window)
                self.mask = 1
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
    """Counters of one stream (or the total of all streams); see the module docstring."""

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
    gaps: int = 0
    late: int = 0
    first_seq: int | None = None
    last_seq: int | None = None

    @property
    def loss_pct(self) -> float:
        """Lost as a percentage of expected (0 when nothing was expected)."""
        return 100.0 * self.lost / self.expected if self.expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (rates rounded, ``loss_pct`` added)."""
        d = asdict(self)
        d["loss_pct"] = round(self.loss_pct, 3)
        d["pps"] = round(self.pps, 1)
        d["mbps"] = round(self.mbps, 3)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d

    def line(self) -> str:
        """One line people can read: ``lost 3/1000 (0.30%) in 2 gaps, reordered 1...``."""
        return (f"{self.stream}: {self.datagrams} datagrams, lost {self.lost}/{self.expected} "
                f"({self.loss_pct:.2f}%) in {self.gaps} gap{'s' if self.gaps != 1 else ''}, "
                f"reordered {self.reordered} (late {self.late}), duplicates {self.duplicates}")


class StreamStats:
    """Loss, gaps, reordering, duplicates and rate of sequenced streams.

    State is bounded: a ``window``-bit mask per stream, and at most ``max_streams``
    streams (the least recently heard one is forgotten first, and counted in
    ``evicted``).

    Args:
        window: how far back (in sequence numbers) duplicates are recognised.
        max_streams: how many streams are tracked at once.
    """

    def __init__(self, *, window: int = 1024, max_streams: int = 256) -> None:
        if window < 1 or max_streams < 1:
            raise ValueError("window and max_streams must be >= 1")
        self.window = window
        self.max_streams = max_streams
        self._streams: OrderedDict[Hashable, _Tracker] = OrderedDict()
        self._expected_total: dict[Hashable, int] = {}
        self._names: dict[Hashable, str] = {}
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

    def add(self, key: Hashable, seq: int, size: int, now: float, *,
            bits: int | None = None, span: int = 1, name: str | None = None) -> str:
        """Account one sequenced datagram; returns "new", "reordered" or "duplicate".

        Args:
            key: the stream (any hashable).
            seq: its sequence number; with ``bits``, as sent (it is unwrapped here).
            size: payload bytes (for the rate).
            now: arrival time in seconds (any clock, the same for every call).
            bits: the counter's width, or None for numbers that never wrap.
            span: how many consecutive numbers the datagram covers (MoldUDP64), >= 1.
            name: how summaries name the stream (default ``str(key)``).
        """
        self._touch_time(now)
        tr = self._streams.get(key)
        if tr is None:
            if len(self._streams) >= self.max_streams:
                old, _ = self._streams.popitem(last=False)
                self._names.pop(old, None)
                self._expected_total.pop(old, None)
                self.evicted += 1
            tr = _Tracker(seq, now, self.window, bits)
            self._streams[key] = tr
            if name is not None:
                self._names[key] = name
            verdict = "new"
            first = seq
        else:
            self._streams.move_to_end(key)
            first = tr.extend(seq)
            verdict = tr.add(first)
        for k in range(1, span):  # the rest of a multi-number datagram
            tr.add(first + k)
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
        """The sender announced its end: its next number would have been ``total`` (for a
        stream numbered from 0, how many it sent). Reveals loss at the tail."""
        tr = self._streams.get(key)
        if tr is not None and tr.bits is not None:  # an announced total wraps like seq
            total = unwrap(total, tr.bits, tr.highest + 1)
        self._expected_total[key] = total

    def _summ(self, key: Hashable, tr: _Tracker) -> StreamSummary:
        expected = tr.highest - tr.first + 1
        total = self._expected_total.get(key)
        if total is not None:  # the sender's next number would have been ``total``
            expected = max(expected, total - tr.first)
        lost = max(0, expected - tr.unique)
        elapsed = max(tr.last_t - tr.first_t, 0.0)
        pps = tr.received / elapsed if elapsed > 0 else 0.0
        mbps = tr.bytes * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
        first, last = tr.first, tr.highest
        if tr.bits is not None:
            first, last = first % (1 << tr.bits), last % (1 << tr.bits)
        return StreamSummary(self._names.get(key, str(key)), tr.received, tr.bytes,
                             tr.unique, expected, lost, tr.reordered, tr.duplicates, elapsed,
                             pps, mbps, tr.gaps(), tr.late, first, last)

    def streams(self) -> list[StreamSummary]:
        """One summary per tracked stream."""
        return [self._summ(k, tr) for k, tr in self._streams.items()]

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
            sum(s.reordered for s in per), sum(s.duplicates for s in per), elapsed, pps, mbps,
            sum(s.gaps for s in per), sum(s.late for s in per))
