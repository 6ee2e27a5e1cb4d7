"""Enhanced Packet Blocks for a whole received batch at once: the fast path of ``record``.

Rebuilding every frame with :func:`mcastkit._frames.build_udp_frame` and wrapping it with
:func:`~mcastkit.capture._pcapng.enhanced_packet_block` checks and packs every field
again for each datagram. Here the headers that stay the same along a stream (Ethernet,
IP, UDP for one source, group, ports, TTL and TOS) are a template built once, the
checksums are the template's partial sum plus the length and the payload's sum, and a
batch of datagrams becomes one run of blocks written straight into the file's buffer. The compiled
accelerator (``_speedups.build_epbs``) does the same in C; :func:`build_epbs_py` is the
reference it must equal byte for byte (tests/record/test_epb_fast.py), and both equal
the per-datagram path of ``Recorder.add``.

Only the plain case is taken: a datagram with its group, a kernel timestamp, on the
given arrival interface, not truncated, without a rise of the drop counter, whose
addresses have an implied multicast MAC. The builders stop before the first datagram that
is not plain (or once ``limit`` bytes were added, so rotation by size stays exact); the
caller writes that one through the per-datagram path, which knows drop records, comments
and errors.

Owns: the header templates, the payload checksum by whole-integer arithmetic, the
choice of the C or the Python builder. Must not: touch files, keep per-stream state
without a bound, decide about drops or comments (it stops instead).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from typing import Final

from .. import _frames
from .._errors import McastValueError
from .._packet import Datagram

__all__ = ["PLACEHOLDER_MAC", "build_epbs", "build_epbs_py", "c_build_epbs", "ones_sum_mod"]

_EPB_HEAD: Final = struct.Struct("<IIIIIII")  # type, length, ifid, ts hi, ts lo, caplen x2
_U32: Final = struct.Struct("<I")
_V4_VAR: Final = struct.Struct("!H6sH")  # total length, (ident, flags, ttl, proto), checksum
_UDP: Final = struct.Struct("!HHHH")
_PADS: Final = (b"", b"\0", b"\0\0", b"\0\0\0")  # by pad length
#: the Ethernet source of every frame: a socket does not see the sender's MAC
PLACEHOLDER_MAC: Final = b"\x02\x00\x00\x00\x00\x00"
TEMPLATES_MAX: Final = 4096  # streams whose headers are kept (cleared beyond)

#: build_epbs(out, pos, batch, start, port, ifid, ifindex, linktype, prev_drops, limit)
#:   -> (next index, end of the blocks in out, payload bytes of the datagrams taken)
Builder = Callable[[bytearray, int, Sequence[Datagram], int, int, int, "int | None", int, int,
                    int], tuple[int, int, int]]


def ones_sum_mod(data: bytes) -> int:
    """The 16-bit big-endian words of ``data`` (an odd length padded with a zero byte)
    summed modulo 0xffff.

    2**16 = 1 (mod 0xffff), so that is the whole buffer read as one big-endian integer
    modulo 0xffff: one C-speed ``int.from_bytes`` instead of a loop over the words. The
    RFC 1071 ones' complement sum is this, except that a sum of words that is a non-zero
    multiple of 0xffff folds to 0xffff, not 0 (the callers handle that case).

    Args:
        data: the bytes to sum.

    Returns:
        The sum modulo 0xffff (0..0xfffe).
    """
    n = int.from_bytes(data, "big")
    return (n << 8 if len(data) & 1 else n) % 0xFFFF


class _Template:
    """The fixed headers of one stream and the part of the checksums they contribute."""

    __slots__ = ("addrs", "dport", "fixed", "head", "ip_sum", "sport", "udp_sum", "v4")

    def __init__(self, src: str, group: str, sport: int, dport: int, ttl: int, tos: int,
                 linktype: int) -> None:
        s = ipaddress.ip_address(src.split("%", 1)[0])
        d = ipaddress.ip_address(group.split("%", 1)[0])
        # the reference builder checks every field and refuses what it cannot frame
        _frames.build_udp_packet(s, d, sport, dport, b"", ttl=ttl, dscp=tos >> 2,
                                 ecn=tos & 3)
        eth = b""
        if linktype == _frames.LINKTYPE_ETHERNET:
            ethertype = _frames.ETHERTYPE_IPV4 if d.version == 4 else _frames.ETHERTYPE_IPV6
            eth = _frames.destination_mac(d) + PLACEHOLDER_MAC + ethertype.to_bytes(2, "big")
        self.v4 = d.version == 4
        self.sport, self.dport = sport, dport
        sp, dp = s.packed, d.packed
        # pseudo-header addresses and protocol, UDP ports: the UDP sum without the lengths
        self.udp_sum = ones_sum_mod(sp + dp + bytes([0, 17]) + _UDP.pack(sport, dport, 0, 0))
        if self.v4:
            self.head = eth + bytes([0x45, tos])  # then the total length
            self.fixed = bytes([0, 0, 0, 0, ttl, 17])  # ident 0, no flags, TTL, UDP
            self.ip_sum = ones_sum_mod(self.head[-2:] + self.fixed + sp + dp)
            self.addrs = sp + dp
        else:
            first = (6 << 28 | tos << 20).to_bytes(4, "big")
            self.head = eth + first  # then the payload length
            self.fixed = bytes([17, ttl]) + sp + dp
            self.ip_sum = 0
            self.addrs = b""


def _plain(d: Datagram, ifindex: int | None, prev_drops: int) -> bool:
    return (d.group is not None and d.timestamp_ns is not None and not d.truncated
            and d.interface == ifindex and (d.drops is None or d.drops <= prev_drops))


_templates: dict[tuple[str, str, int, int, int, int, int], _Template] = {}


def _template(key: tuple[str, str, int, int, int, int, int]) -> _Template | None:
    tpl = _templates.get(key)
    if tpl is None:
        try:
            tpl = _Template(*key)
        except (McastValueError, ValueError):
            return None  # the per-datagram path raises the error a user reads
        if len(_templates) >= TEMPLATES_MAX:
            _templates.clear()
        _templates[key] = tpl
    return tpl


def build_epbs_py(out: bytearray, pos: int, batch: Sequence[Datagram], start: int,
                  port: int, ifid: int, ifindex: int | None, linktype: int,
                  prev_drops: int, limit: int) -> tuple[int, int, int]:
    """Write an Enhanced Packet Block for each plain datagram of ``batch[start:]`` into
    ``out`` from ``pos`` on.

    Args:
        out: the buffer; grown when the blocks do not fit (what follows them is junk).
        pos: where the first block goes (at most ``len(out)``).
        batch: received datagrams (with metadata and timestamps).
        start: the first index to write.
        port: the receiving socket's port (the destination port).
        ifid: the pcapng interface id of ``ifindex``.
        ifindex: the arrival interface the blocks are for.
        linktype: ``LINKTYPE_ETHERNET`` or ``LINKTYPE_RAW``.
        prev_drops: the socket's drop counter as last written; a datagram whose count
            is above it is not plain.
        limit: stop before a datagram once this many bytes were written.

    Returns:
        The index of the first datagram not written (``len(batch)`` when all were),
        where the blocks end in ``out``, and the payload bytes of those written.
    """
    epb, v4var, udp, u32, pads = _EPB_HEAD.pack, _V4_VAR.pack, _UDP.pack, _U32.pack, _PADS
    first = pos
    nbytes = 0
    i, n = start, len(batch)
    while i < n:
        d = batch[i]
        if pos - first >= limit or not _plain(d, ifindex, prev_drops):
            break
        assert d.group is not None and d.timestamp_ns is not None
        ttl = 1 if d.ttl is None else d.ttl
        tpl = _template((d.source, d.group, d.port, port, ttl, d.tos or 0, linktype))
        if tpl is None:
            break
        data = d.data
        size = len(data)
        ulen = 8 + size
        r = (tpl.udp_sum + 2 * ulen + ones_sum_mod(data)) % 0xFFFF
        udp_head = udp(tpl.sport, tpl.dport, ulen, 0xFFFF - r if r else 0xFFFF)
        if tpl.v4:
            if ulen + 20 > 0xFFFF:
                break
            r = (tpl.ip_sum + 20 + ulen) % 0xFFFF
            ip_head = (tpl.head + v4var(20 + ulen, tpl.fixed, 0xFFFF - r if r else 0)
                       + tpl.addrs)
        else:
            if ulen > 0xFFFF:
                break
            ip_head = tpl.head + ulen.to_bytes(2, "big") + tpl.fixed
        caplen = len(ip_head) + ulen
        pad = -caplen % 4
        total = 32 + caplen + pad
        ts = d.timestamp_ns
        out[pos:pos + total] = b"".join((
            epb(6, total, ifid, (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, caplen, caplen),
            ip_head, udp_head, data, pads[pad], u32(total)))
        pos += total
        nbytes += size
        i += 1
    return i, pos, nbytes


def _load_c() -> Builder | None:
    try:
        from .. import _io  # noqa: F401  (sets the accelerator up with the Datagram class)
        from .._speedups import build_epbs as c_fn
    except ImportError:  # not built, or an older build without it
        return None
    return c_fn


#: the compiled builder, or None when the accelerator is missing
c_build_epbs: Builder | None = _load_c()
#: the builder ``record`` uses: the compiled one when available
build_epbs: Builder = c_build_epbs or build_epbs_py
