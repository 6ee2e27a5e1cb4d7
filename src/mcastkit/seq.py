"""Sequence analysis of multicast streams: gaps, reordering, duplicates, late arrivals.

Usable on its own, and shared by ``mcastkit listen --seq``, ``record --seq``, ``replay``
and ``ping``::

    from mcastkit import open_receiver
    from mcastkit.seq import SeqAnalyzer

    seq = SeqAnalyzer("rtp")                       # or "iperf2", "moldudp64", "u32@0"...
    with open_receiver("239.255.0.7:5004", interface="lo", metadata=True) as rx:
        for d in rx.recv_many(100, timeout_s=5):
            seq.feed(d)
    print(seq.summary_line())                      # lost 2/100 (2.00%) in 1 gap, ...
    print(seq.as_json())                           # one dict per stream and the total

A stream is (source, source port, group, destination port) plus the format's own stream
identifier (RTP SSRC, mcastkit stream id, MoldUDP64 session). Formats and counters are
described in :mod:`mcastkit._seqformats` and :mod:`mcastkit._seqstats`.

Owns: :class:`SeqAnalyzer` (payload → format → per-stream counters) and the public names
of the sequence layer. Must not: do I/O or open sockets.
"""

from __future__ import annotations

import time
from typing import Any

from ._packet import Datagram
from ._seqformats import (
    FORMAT_NAMES,
    HEADER_SIZE,
    Kind,
    MarkKind,
    SeqFormat,
    SeqHeader,
    SeqMark,
    pack,
    pack_reply,
    parse,
    parse_format,
    parse_iperf2,
    parse_reply_responder,
)
from ._seqstats import StreamStats, StreamSummary, unwrap

__all__ = [
    "FORMAT_NAMES",
    "HEADER_SIZE",
    "Kind",
    "MarkKind",
    "SeqAnalyzer",
    "SeqFormat",
    "SeqHeader",
    "SeqMark",
    "StreamStats",
    "StreamSummary",
    "pack",
    "pack_reply",
    "parse",
    "parse_format",
    "parse_iperf2",
    "parse_reply_responder",
    "unwrap",
]


def _host(addr: str | None) -> str:
    if addr is None:
        return "?"
    return f"[{addr}]" if ":" in addr else addr


class SeqAnalyzer:
    """Per-stream sequence accounting of datagrams in one format.

    Args:
        fmt: a format name (``"mcastkit"``, ``"iperf2"``, ``"iperf2-64"``, ``"rtp"``,
            ``"moldudp64"``, ``"uN[be|le]@OFFSET"``) or a :class:`SeqFormat`.
        window: how many numbers back duplicates are still recognised.
        max_streams: streams tracked at once (the least recently heard is dropped first).

    Raises:
        McastValueError: an unknown format; the message lists the valid ones.
    """

    def __init__(self, fmt: str | SeqFormat = "mcastkit", *, window: int = 1024,
                 max_streams: int = 256) -> None:
        self.format = parse_format(fmt) if isinstance(fmt, str) else fmt
        self.stats = StreamStats(window=window, max_streams=max_streams)
        self.heartbeats = 0
        self.ends = 0

    def feed(self, d: Datagram, now: float | None = None) -> str:
        """Account one received datagram (destination port: ``d.port`` is the sender's,
        so the stream is named by group only; use :meth:`feed_payload` to add it).

        Returns:
            "new", "reordered", "duplicate", "end", "heartbeat" or "unsequenced".
        """
        when = now if now is not None else (
            d.timestamp_ns / 1e9 if d.timestamp_ns is not None else time.monotonic())
        return self.feed_payload(d.data, d.source, d.port, d.group, None, when)

    def feed_payload(self, data: bytes, source: str | None, sport: int | None,
                     group: str | None, dport: int | None, now: float) -> str:
        """Account one payload of the stream (source, sport, group, dport).

        Returns:
            As :meth:`feed`.
        """
        mark = self.format.read(data)
        if mark is None:
            self.stats.add_unsequenced(len(data), now)
            return "unsequenced"
        key = (source, sport, group, dport, mark.sub)
        if mark.kind is MarkKind.END:
            self.ends += 1
            self.stats.set_expected(key, mark.seq)
            return "end"
        if mark.kind is MarkKind.HEARTBEAT:
            self.heartbeats += 1
            return "heartbeat"
        name = f"{_host(source)}:{sport}"
        if group is not None:
            name += f">{_host(group)}" + (f":{dport}" if dport is not None else "")
        if mark.sub is not None:
            name += f"/{mark.sub}"
        return self.stats.add(key, mark.seq, len(data), now, bits=mark.bits,
                              span=mark.span, name=name)

    def streams(self) -> list[StreamSummary]:
        """One summary per stream."""
        return self.stats.streams()

    def total(self) -> StreamSummary:
        """All streams together."""
        return self.stats.total()

    def summary_line(self) -> str:
        """One line people can read about all streams together."""
        t = self.total()
        text = (f"seq {self.format.name}: {len(self.stats)} stream"
                f"{'s' if len(self.stats) != 1 else ''}, lost {t.lost}/{t.expected} "
                f"({t.loss_pct:.2f}%) in {t.gaps} gap{'s' if t.gaps != 1 else ''}, "
                f"reordered {t.reordered} (late {t.late}), duplicates {t.duplicates}")
        if self.stats.unsequenced:
            text += f", not {self.format.name} {self.stats.unsequenced}"
        return text

    def as_json(self) -> dict[str, Any]:
        """``{"format", "total", "streams": [...], "unsequenced", ...}``, JSON-ready."""
        return {"format": self.format.name, "total": self.total().as_dict(),
                "streams": [s.as_dict() for s in self.streams()],
                "unsequenced": self.stats.unsequenced, "heartbeats": self.heartbeats,
                "evicted": self.stats.evicted}
