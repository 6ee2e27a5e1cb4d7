"""The common captured frame, decoded at fixed offsets: the fast path of ``_decode``.

Nearly every frame of a multicast capture has one shape: a link-layer header of fixed
length (Ethernet without VLAN tags, Linux cooked v1 or v2, raw IP), IPv4 without options
or IPv6 without extension headers, not a fragment, and a UDP datagram to a multicast (or
broadcast) address. :func:`decode_batch` reads such a frame with two ``unpack_from``
calls at offsets inside the buffer the reader filled (no copy of the frame, no object
per header), verifies the UDP checksum arithmetically (RFC 1071: a sum of 16-bit words
is the whole buffer as one integer, modulo 0xffff) and makes one tuple, a :data:`Row`.
Every other frame (and any frame it is not sure of) goes to the caller's general path,
which parses it with ``_frames`` and counts why it was skipped, so the result is the
same as the general path's for every frame (property-tested in
``tests/record/test_fastpath.py``).

Owns: :func:`decode_batch`, :data:`Row`, the per-record counters of :class:`DecodeStats`
(records, link types, datagrams, bad checksums).
Must not: count skip reasons or reassemble fragments (the general path does), open
files, send.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections import Counter
from collections.abc import Callable
from typing import Final, Protocol

from .._linklayer import (
    BROADCAST_MAC,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
)
from ._pcapng import RawRecord

__all__ = ["Row", "decode_batch", "decode_batch_py"]

Row = tuple[int | None, str, int, str, int, bytes, int, int, bool | None]
"""A datagram found in a capture: (ts_ns, source, sport, group, dport, payload, ttl,
version, checksum_ok), the fields of ``CapturedDatagram`` in their order."""

_c_udp_rows: Callable[..., tuple[list[Row], int]] | None = None
# no accelerator (or one built before udp_rows): the Python loop runs
with contextlib.suppress(ImportError):
    from .._speedups import udp_rows as _c_udp_rows


class Counts(Protocol):
    """The counters :func:`decode_batch` keeps (``DecodeStats`` has them)."""

    records: int
    datagrams: int
    bad_checksums: int
    linktypes: Counter[int]


_ETH: Final = struct.Struct("!6s6xH")  # destination MAC, ethertype
_SLL: Final = struct.Struct("!H12xH")  # packet type, protocol
_SLL2: Final = struct.Struct("!H8xB")  # protocol, packet type
# IPv4 header without options + UDP header: version/IHL, total length, flags/offset,
# TTL, protocol, source, destination; source port, destination port, length, checksum
_V4UDP: Final = struct.Struct("!BxHxxHBBxxIIHHHH")
# IPv6 header + UDP header: version/class/flow, payload length, next header, hop limit,
# source, destination; the UDP header
_V6UDP: Final = struct.Struct("!IHBB16s16sHHHH")
_IPV4, _IPV6 = 0x0800, 0x86DD
# The UDP checksum (RFC 768, RFC 8200 §8.1) over the pseudo-header and the segment with
# its checksum field zeroed, by RFC 1071's ones' complement sum: 2**16 = 1 (mod 0xffff),
# so a sum of big-endian 16-bit words is congruent to the words' bytes read as one
# integer; the pseudo-header adds the addresses, the protocol (17) and the UDP length,
# the header its ports and the length again, then the payload (a last odd byte is the
# high byte of a word). The sum is never 0 (17 is in it), so s = 0 means 0xffff, and
# the checksum is the complement: 0xffff - s, or 0xffff for s = 0 (never 0 on the wire).
_UDP_SUM: Final = 17
_SLL_BROADCAST, _SLL_OUTGOING = 1, 4
_NAMES_MAX: Final = 1 << 16  # address texts remembered before starting over

# link type -> (header length, how its header says what it carries)
_ETHERNET, _COOKED1, _COOKED2, _RAW = 0, 1, 2, 3
_LINKS: Final = {LINKTYPE_ETHERNET: (14, _ETHERNET), LINKTYPE_LINUX_SLL: (16, _COOKED1),
                 LINKTYPE_LINUX_SLL2: (20, _COOKED2), LINKTYPE_RAW: (0, _RAW),
                 LINKTYPE_IPV4: (0, _RAW), LINKTYPE_IPV6: (0, _RAW)}

_v4_names: dict[int, str] = {}
_v6_names: dict[bytes, tuple[str, int]] = {}


def _v4_name(addr: int) -> str:
    if len(_v4_names) >= _NAMES_MAX:
        _v4_names.clear()
    name = _v4_names[addr] = str(ipaddress.IPv4Address(addr))
    return name


def _v6_name(addr: bytes) -> tuple[str, int]:
    if len(_v6_names) >= _NAMES_MAX:
        _v6_names.clear()
    named = _v6_names[addr] = (str(ipaddress.IPv6Address(addr)),
                               int.from_bytes(addr, "big") % 0xFFFF)
    return named


def _v4_text(addr: int) -> str:
    return _v4_names.get(addr) or _v4_name(addr)


def _v6_text(addr: bytes) -> str:
    return (_v6_names.get(addr) or _v6_name(addr))[0]


def decode_batch(batch: list[RawRecord], general: Callable[[RawRecord], Row | None],
                 outgoing: bool, counts: Counts) -> list[Row]:
    """The datagrams of a batch of records, in order: by the accelerator's ``udp_rows``
    when it is built, else by :func:`decode_batch_py` (the same result).

    Args:
        batch: records as the readers hand them out.
        general: the general path for a record this one does not take: its datagram, or
            None (it counts why).
        outgoing: also take Linux cooked-capture copies marked "sent by this host".
        counts: updated with the records, link types, datagrams and bad checksums.

    Returns:
        The datagrams, one :data:`Row` each.
    """
    if _c_udp_rows is None:
        return decode_batch_py(batch, general, outgoing, counts)
    rows, bad = _c_udp_rows(batch, general, outgoing, counts.linktypes, _v4_text, _v6_text)
    counts.records += len(batch)
    counts.datagrams += len(rows)
    counts.bad_checksums += bad
    return rows


def decode_batch_py(batch: list[RawRecord], general: Callable[[RawRecord], Row | None],
                    outgoing: bool, counts: Counts) -> list[Row]:
    """:func:`decode_batch` in Python (same arguments, same result): the fallback, and the
    reference the accelerator is tested against.

    Returns:
        The datagrams, one :data:`Row` each.
    """
    rows: list[Row] = []
    append = rows.append
    v4u, v6u, eth, sll, sll2 = (_V4UDP.unpack_from, _V6UDP.unpack_from, _ETH.unpack_from,
                                _SLL.unpack_from, _SLL2.unpack_from)
    v4n, v6n = _v4_names, _v6_names
    bad = 0
    cur_lt, run = -1, 0
    hl, kind = 0, -1
    for rec in batch:
        lt, ts, buf, at, caplen, _orig, _name, _comment = rec
        if lt != cur_lt:
            if run:
                counts.linktypes[cur_lt] += run
            cur_lt, run = lt, 0
            hl, kind = _LINKS.get(lt, (0, -1))
        run += 1
        if kind >= 0 and caplen >= hl + 28:
            ip = at + hl
            bcast = False
            if kind == _ETHERNET:
                dmac, et = eth(buf, at)
                bcast = dmac == BROADCAST_MAC
            elif kind == _RAW:
                et = _IPV4 if buf[ip] >> 4 == 4 else _IPV6
            else:
                if kind == _COOKED1:
                    pt, et = sll(buf, at)
                else:
                    et, pt = sll2(buf, at)
                bcast = pt == _SLL_BROADCAST
                if pt == _SLL_OUTGOING and not outgoing:
                    et = 0
            if et == _IPV4:
                vihl, total, frag, ttl, proto, src, dst, sport, dport, ulen, csum = v4u(buf, ip)
                if (vihl == 0x45 and proto == 17 and not frag & 0x3FFF and ulen >= 8
                        and ulen + 20 <= total and hl + total <= caplen
                        and (dst >> 28 == 14 or dst == 0xFFFFFFFF or bcast)):
                    payload = buf[ip + 28:ip + 20 + ulen]
                    ok: bool | None = None
                    if csum:
                        p = int.from_bytes(payload, "big") % 0xFFFF
                        if ulen & 1:  # the last byte is the high byte of a word
                            p <<= 8
                        s = (src + dst + _UDP_SUM + sport + dport + ulen + ulen + p) % 0xFFFF
                        ok = csum == (0xFFFF - s if s else 0xFFFF)
                        if not ok:
                            bad += 1
                    append((ts, v4n.get(src) or _v4_name(src), sport,
                            v4n.get(dst) or _v4_name(dst), dport, payload, ttl, 4, ok))
                    continue
            elif et == _IPV6 and caplen >= hl + 48:
                first, plen, nxt, hops, s6, d6, sport, dport, ulen, csum = v6u(buf, ip)
                if (first >> 28 == 6 and nxt == 17 and 8 <= ulen <= plen
                        and hl + 40 + plen <= caplen and (d6[0] == 0xFF or bcast)):
                    sname, ssum = v6n.get(s6) or _v6_name(s6)
                    gname, gsum = v6n.get(d6) or _v6_name(d6)
                    payload = buf[ip + 48:ip + 40 + ulen]
                    ok = False
                    if csum:
                        p = int.from_bytes(payload, "big") % 0xFFFF
                        if ulen & 1:
                            p <<= 8
                        s = (ssum + gsum + _UDP_SUM + sport + dport + ulen + ulen + p) % 0xFFFF
                        ok = csum == (0xFFFF - s if s else 0xFFFF)
                    if not ok:
                        bad += 1
                    append((ts, sname, sport, gname, dport, payload, hops, 6, ok))
                    continue
        row = general(rec)
        if row is not None:
            if row[8] is False:
                bad += 1
            append(row)
    if run:
        counts.linktypes[cur_lt] += run
    counts.records += len(batch)
    counts.datagrams += len(rows)
    counts.bad_checksums += bad
    return rows
