"""Captured frames → the UDP datagrams they carried (IP fragments reassembled).

Link types: Ethernet (VLAN tags skipped), Linux cooked v1/v2 (``tcpdump -i any``), raw
IP and BSD loopback, through :func:`mcastkit._frames.parse_link`. IPv4 and IPv6, IP
fragments reassembled (bounded: at most ``MAX_PENDING`` datagrams in progress, each for
at most ``FRAGMENT_TIMEOUT_S`` of capture time). Anything else is counted by reason and
skipped, never raised: ``not_ip``, ``not_udp``, ``unicast``, ``malformed``,
``fragments_incomplete``, ``outgoing_copy``.

The common frame shape is decoded at fixed offsets by ``_fastpath``; every other frame
takes the general path here, which parses with ``_frames`` and counts skip reasons.

Owns: :func:`packets` (a capture file → :class:`CapturedDatagram` values), :func:`rows`
(the same as tuples, a list per chunk read: what replay uses), :class:`DecodeStats`, the
skip reasons and fragment reassembly. Must not: send anything, parse packet bytes itself
(``_frames`` and ``_fastpath`` do: one path per job).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from .. import _frames
from .._errors import McastValueError
from ._fastpath import Row, decode_batch
from ._pcap import read_capture
from ._pcapng import Notes, RawRecord

__all__ = ["CapturedDatagram", "DecodeStats", "Row", "packets", "packets_from", "rows",
           "rows_from"]

MAX_PENDING = 1024
FRAGMENT_TIMEOUT_S = 30.0
_SLL_OUTGOING = 4  # Linux cooked capture packet type: sent by this host


@dataclass(frozen=True, slots=True)
class CapturedDatagram:
    """A UDP datagram found in a capture.

    Attributes:
        ts_ns: capture time, ns since the epoch (None: the file had none).
        source: the sender's address.
        sport: the sender's UDP port.
        group: where it was sent (a multicast or broadcast address).
        dport: the UDP port it was sent to.
        payload: the UDP payload.
        ttl: TTL / hop limit on the wire.
        version: 4 or 6.
        checksum_ok: the UDP checksum verified (None: none was sent; a capture taken on
            the sending host often has unfinished checksums, so this is reported only).
    """

    ts_ns: int | None
    source: str
    sport: int
    group: str
    dport: int
    payload: bytes
    ttl: int
    version: int
    checksum_ok: bool | None


@dataclass(slots=True)
class DecodeStats:
    """What reading a capture found besides the datagrams.

    Attributes:
        records: packet records read.
        datagrams: multicast / broadcast UDP datagrams yielded.
        skipped: records not yielded, by reason (``"not_ip"``, ``"not_udp"``,
            ``"unicast"``, ``"malformed"``, ``"outgoing_copy"``,
            ``"fragments_incomplete"``).
        reassembled: datagrams put together from IP fragments.
        bad_checksums: datagrams yielded whose UDP checksum did not match.
        linktypes: records by link type.
        notes: what a pcapng file says besides packets (comments, interfaces...).
    """

    records: int = 0
    datagrams: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    reassembled: int = 0
    bad_checksums: int = 0
    linktypes: Counter[int] = field(default_factory=Counter)
    notes: Notes = field(default_factory=Notes)

    def as_dict(self) -> dict[str, object]:
        """The counters as a dict.

        Returns:
            A JSON-ready dict.
        """
        return {"records": self.records, "datagrams": self.datagrams,
                "skipped": dict(self.skipped), "reassembled": self.reassembled,
                "bad_checksums": self.bad_checksums,
                "recorded_kernel_drops": self.notes.kernel_drops,
                "recorded_missing": self.notes.missing,
                "truncated_tail": self.notes.truncated_tail}


_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_SLL_BROADCAST = 1


def _wanted(link: _frames.LinkFrame, ip: _frames.IPPacket) -> bool:
    """Multicast, or broadcast (to 255.255.255.255, or in a broadcast frame)."""
    return bool(ip.dst.is_multicast or ip.dst == _LIMITED_BROADCAST
                or link.dst_mac == _frames.BROADCAST_MAC
                or link.packet_type == _SLL_BROADCAST)


class _Reassembler:
    """IP fragments of one capture, keyed by (src, dst, id, version)."""

    def __init__(self, stats: DecodeStats) -> None:
        self.stats = stats
        self.pending: OrderedDict[tuple[object, ...], tuple[int, list[_frames.IPPacket]]] = \
            OrderedDict()

    def add(self, ip: _frames.IPPacket, ts_ns: int) -> _frames.IPPacket | None:
        self._expire(ts_ns)
        key = (ip.src, ip.dst, ip.ident, ip.version)
        started, frags = self.pending.get(key, (ts_ns, []))
        frags.append(ip)
        self.pending[key] = (started, frags)
        if len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
            self.stats.skipped["fragments_incomplete"] += 1
        whole = self._complete(frags)
        if whole is None:
            return None
        del self.pending[key]
        self.stats.reassembled += 1
        return whole

    @staticmethod
    def _complete(frags: list[_frames.IPPacket]) -> _frames.IPPacket | None:
        if not any(not f.more_fragments for f in frags):
            return None
        data = bytearray()
        first = None
        for f in sorted(frags, key=lambda f: f.fragment_offset):
            if f.fragment_offset > len(data):
                return None  # a hole
            if f.fragment_offset == 0:
                first = f
            data[f.fragment_offset:f.fragment_offset + len(f.payload)] = f.payload
            if not f.more_fragments:
                break
        if first is None:
            return None
        return dataclasses.replace(first, payload=bytes(data), fragment_offset=0,
                                   more_fragments=False)

    def _expire(self, ts_ns: int) -> None:
        while self.pending:
            key, (started, _f) = next(iter(self.pending.items()))
            if ts_ns - started <= FRAGMENT_TIMEOUT_S * 1e9:
                return
            del self.pending[key]
            self.stats.skipped["fragments_incomplete"] += 1

    def finish(self) -> None:
        self.stats.skipped["fragments_incomplete"] += len(self.pending)
        self.pending.clear()


def _general(st: DecodeStats, frags: _Reassembler, outgoing: bool
             ) -> Callable[[RawRecord], Row | None]:
    """The general path: any record, parsed by ``_frames``; what is not a wanted UDP
    datagram is counted by reason."""

    def decode(rec: RawRecord) -> Row | None:
        lt, ts_ns, buf, at, caplen = rec[0], rec[1], rec[2], rec[3], rec[4]
        try:
            link = _frames.parse_link(lt, buf[at:at + caplen])
            if link.ethertype not in (_frames.ETHERTYPE_IPV4, _frames.ETHERTYPE_IPV6):
                st.skipped["not_ip"] += 1
                return None
            if not outgoing and link.packet_type == _SLL_OUTGOING:
                st.skipped["outgoing_copy"] += 1
                return None
            ip = _frames.parse_ip_packet(link.payload)
            if ip.protocol != _frames.IPPROTO_UDP:
                st.skipped["not_udp"] += 1
                return None
            if not _wanted(link, ip):
                st.skipped["unicast"] += 1
                return None
            if ip.is_fragment:
                whole = frags.add(ip, ts_ns or 0)
                if whole is None:
                    return None
                ip = whole
            udp = _frames.parse_udp(ip)
        except McastValueError as exc:
            if "unsupported link type" in exc.message:
                raise
            st.skipped["malformed"] += 1
            return None
        return (ts_ns, str(ip.src), udp.sport, str(ip.dst), udp.dport, udp.payload, ip.ttl,
                ip.version, udp.checksum_ok)

    return decode


def rows_from(stream: BinaryIO, stats: DecodeStats | None = None, *,
              outgoing: bool = True) -> Iterator[list[Row]]:
    """The datagrams of a pcap/pcapng ``stream`` as tuples, a list per chunk read: the
    fast form of :func:`packets_from` (same arguments, same datagrams and counters).

    Raises:
        McastValueError: the stream is not a capture, or is corrupt before its end.
    """
    st = stats if stats is not None else DecodeStats()
    reader = read_capture(stream)
    st.notes = reader.notes
    frags = _Reassembler(st)
    general = _general(st, frags, outgoing)
    for batch in reader.batches():
        rows = decode_batch(batch, general, outgoing, st)
        if rows:
            yield rows
    frags.finish()


def rows(path: str, stats: DecodeStats | None = None, *,
         outgoing: bool = True) -> Iterator[list[Row]]:
    """:func:`rows_from` on the file at ``path`` (opened read-only).

    Raises:
        McastValueError: not a capture, or corrupt.
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as f:
        yield from rows_from(f, stats, outgoing=outgoing)


def packets_from(stream: BinaryIO, stats: DecodeStats | None = None, *,
                 outgoing: bool = True) -> Iterator[CapturedDatagram]:
    """The multicast and broadcast UDP datagrams of a pcap/pcapng ``stream``.

    Args:
        stream: a binary stream at the start of the capture.
        stats: filled with what was skipped and why.
        outgoing: also take Linux cooked-capture copies marked "sent by this host"
            (``tcpdump -i any`` on the sending host sees each datagram leave).

    Returns:
        An iterator of the datagrams, in file order (fragments yielded once whole).

    Raises:
        McastValueError: the stream is not a capture, or is corrupt before its end.
    """
    for batch in rows_from(stream, stats, outgoing=outgoing):
        for row in batch:
            yield CapturedDatagram(*row)


def packets(path: str, stats: DecodeStats | None = None, *,
            outgoing: bool = True) -> Iterator[CapturedDatagram]:
    """:func:`packets_from` on the file at ``path`` (opened read-only).

    Args:
        path: a pcap or pcapng file.
        stats: filled with what was skipped and why.
        outgoing: also take copies marked "sent by this host" (see :func:`packets_from`).

    Returns:
        An iterator of the datagrams, in file order.

    Raises:
        McastValueError: not a capture, or corrupt.
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as f:
        yield from packets_from(f, stats, outgoing=outgoing)
