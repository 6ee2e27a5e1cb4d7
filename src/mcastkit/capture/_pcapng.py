"""The pcapng block format (draft-ietf-opsawg-pcapng): building blocks, and reading them.

Written (little-endian, one section per file): a Section Header Block, one Interface
Description Block per interface (``if_name``, ``if_tsresol`` = 9, i.e. nanoseconds), an
Enhanced Packet Block per datagram (``epb_dropcount`` and a comment when the kernel's drop
counter rose just before it), and Interface Statistics Blocks (``isb_osdrop``: the kernel's
cumulative drop counter; ``isb_usrdeliv``: datagrams written).

Read: both byte orders, several sections, any ``if_tsresol`` (power of 10 or of 2) and
``if_tsoffset``, Enhanced, Simple and (obsolete) Packet Blocks, Interface Statistics
Blocks; unknown blocks are skipped. A block cut short at the end of the file (a writer
that was killed) ends the reading and is reported, not raised.

Owns: the pcapng byte layout. Must not: open files (callers hand bytes or a binary
stream), know about sockets or packet contents.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .._errors import McastValueError

__all__ = [
    "BLOCK_EPB",
    "BLOCK_IDB",
    "BLOCK_ISB",
    "BLOCK_SHB",
    "CHUNK",
    "PcapngReader",
    "enhanced_packet_block",
    "interface_block",
    "section_header_block",
    "statistics_block",
]

BLOCK_SHB: Final = 0x0A0D0D0A
BLOCK_IDB: Final = 1
BLOCK_PB: Final = 2
BLOCK_SPB: Final = 3
BLOCK_ISB: Final = 5
BLOCK_EPB: Final = 6
BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
MAX_BLOCK: Final = 64 << 20  # refuse absurd lengths instead of allocating them

OPT_END: Final = 0
OPT_COMMENT: Final = 1
SHB_HARDWARE, SHB_OS, SHB_USERAPPL = 2, 3, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_TSOFFSET = 2, 3, 9, 14
EPB_FLAGS, EPB_DROPCOUNT = 2, 4
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP, ISB_OSDROP, ISB_USRDELIV = 2, 3, 4, 5, 7, 8

_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_HEAD: Final = struct.Struct("<II")


def _pad(n: int) -> int:
    return -n % 4


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(_pad(len(value)))


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + b"\x00\x00\x00\x00"


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)  # body is already a multiple of 4
    return _HEAD.pack(btype, total) + body + _U32.pack(total)


def _ts_words(ts_ns: int) -> bytes:
    return struct.pack("<II", (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF)


def section_header_block(application: str, os_name: str | None = None,
                         comment: str | None = None) -> bytes:
    """A Section Header Block (version 1.0, section length unknown)."""
    opts = [(SHB_USERAPPL, application.encode())]
    if os_name:
        opts.append((SHB_OS, os_name.encode()))
    if comment:
        opts.append((OPT_COMMENT, comment.encode()))
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(opts)
    return _block(BLOCK_SHB, body)


def interface_block(linktype: int, snaplen: int, name: str | None = None,
                    description: str | None = None) -> bytes:
    """An Interface Description Block with nanosecond timestamps (``if_tsresol`` = 9)."""
    opts: list[tuple[int, bytes]] = []
    if name:
        opts.append((IF_NAME, name.encode()))
    if description:
        opts.append((IF_DESCRIPTION, description.encode()))
    opts.append((IF_TSRESOL, b"\x09"))
    return _block(BLOCK_IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(opts))


def enhanced_packet_block(interface_id: int, ts_ns: int, data: bytes, orig_len: int | None = None,
                          *, dropcount: int | None = None, comment: str | None = None) -> bytes:
    """An Enhanced Packet Block; ``dropcount``: datagrams lost just before this one."""
    opts: list[tuple[int, bytes]] = []
    if comment:
        opts.append((OPT_COMMENT, comment.encode()))
    if dropcount is not None:
        opts.append((EPB_DROPCOUNT, _U64.pack(dropcount)))
    n = len(data)
    head = _U32.pack(interface_id) + _ts_words(ts_ns) + struct.pack(
        "<II", n, n if orig_len is None else orig_len)
    return _block(BLOCK_EPB, head + data + bytes(_pad(n)) + _options(opts))


def statistics_block(interface_id: int, ts_ns: int, *, osdrop: int | None = None,
                     usrdeliv: int | None = None, ifrecv: int | None = None,
                     ifdrop: int | None = None,
                     start_ns: int | None = None, end_ns: int | None = None,
                     comment: str | None = None) -> bytes:
    """An Interface Statistics Block (counters since the capture started)."""
    opts: list[tuple[int, bytes]] = []
    if comment:
        opts.append((OPT_COMMENT, comment.encode()))
    for code, ts in ((ISB_STARTTIME, start_ns), (ISB_ENDTIME, end_ns)):
        if ts is not None:
            opts.append((code, _ts_words(ts)))
    for code, val in ((ISB_IFRECV, ifrecv), (ISB_IFDROP, ifdrop), (ISB_OSDROP, osdrop),
                      (ISB_USRDELIV, usrdeliv)):
        if val is not None:
            opts.append((code, _U64.pack(val)))
    return _block(BLOCK_ISB, _U32.pack(interface_id) + _ts_words(ts_ns) + _options(opts))


# ----------------------------------------------------------------------------- reading


@dataclass(slots=True)
class Interface:
    """An interface of the section being read."""

    linktype: int
    snaplen: int
    name: str | None = None
    units_per_s: int = 1_000_000  # default resolution: microseconds
    offset_s: int = 0
    plain: bool = False  # timestamps already in ns since the epoch (set by the reader)

    def ns(self, ts: int) -> int:
        """A timestamp in this interface's units, as ns since the epoch."""
        u = self.units_per_s
        v = ts * 1_000_000_000 // u if u != 1_000_000_000 else ts
        return v + self.offset_s * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Record:
    """A packet read from a capture file (pcap or pcapng)."""

    linktype: int
    ts_ns: int | None
    data: bytes
    orig_len: int
    interface: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class Notes:
    """What a pcapng file says besides packets."""

    comments: list[str] = field(default_factory=list)
    osdrop: dict[tuple[int, int], int] = field(default_factory=dict)  # (section, if) -> max
    ifdrop: dict[tuple[int, int], int] = field(default_factory=dict)  # (section, if) -> max
    dropcount: int = 0  # sum of epb_dropcount
    truncated_tail: bool = False

    @property
    def kernel_drops(self) -> int:
        """Drops the file records: the last ``isb_osdrop`` of every interface, or the sum
        of ``epb_dropcount`` if that is larger."""
        return max(sum(self.osdrop.values()), self.dropcount - sum(self.ifdrop.values()))

    @property
    def missing(self) -> int:
        """Datagrams the file says are not in it: kernel drops plus ``isb_ifdrop`` (for
        ``mcastkit record``: received but not written, its write queue was full)."""
        return self.kernel_drops + sum(self.ifdrop.values())


_STRUCTS: dict[tuple[bool, str], struct.Struct] = {}


def _parse_options(body: bytes, pos: int, u16: struct.Struct) -> Iterator[tuple[int, bytes]]:
    end = len(body)
    while pos + 4 <= end:
        code, length = u16.unpack_from(body, pos)[0], u16.unpack_from(body, pos + 2)[0]
        pos += 4
        if code == OPT_END:
            return
        if pos + length > end:
            return  # a malformed option list ends the options, not the file
        yield code, body[pos:pos + length]
        pos += length + _pad(length)


def _resolution(raw: bytes) -> int:
    v = raw[0] if raw else 6
    if v & 0x80:
        return 1 << min(v & 0x7F, 63)
    return int(10 ** min(v, 18))


RawRecord = tuple[int, int | None, bytes, int, int, int, str | None, str | None]
"""A packet as the readers hand it out in batches, without copying its bytes:
(linktype, ts_ns, buffer, offset of the frame in buffer, captured length, original
length, interface name, comment)."""

CHUNK: Final = 1 << 20  # bytes read at a time; blocks are parsed at offsets inside them


class PcapngReader:
    """Iterate over the packets of a pcapng stream (after its first 4 bytes were peeked
    or not: the stream is read from its start). ``notes`` fills up while iterating.

    The stream is read in chunks of :data:`CHUNK` bytes and the blocks are taken apart at
    offsets inside them: :meth:`batches` hands out the packets of a chunk at once as
    :data:`RawRecord` tuples (the fast form the decoder uses); iterating yields
    :class:`Record` values.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._f = stream
        self.notes = Notes()
        self._ifaces: list[Interface] = []
        self._section = -1
        self._le = True

    def _fmt(self, code: str) -> struct.Struct:
        """``code`` in this section's byte order (compiled once per order and code)."""
        key = (self._le, code)
        st = _STRUCTS.get(key)
        if st is None:
            st = _STRUCTS[key] = struct.Struct(("<" if self._le else ">") + code)
        return st

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            for lt, ts, buf, at, caplen, orig, name, comment in batch:
                yield Record(lt, ts, buf[at:at + caplen], orig, name, comment)

    def batches(self) -> Iterator[list[RawRecord]]:
        """The packets, a list per chunk read, in file order.

        Raises:
            McastValueError: not pcapng, or corrupt before its end (a block cut off at
                the end only ends the reading, with ``notes.truncated_tail`` set).
        """
        f = self._f
        start = f.tell()
        base, want = 0, CHUNK  # base: offset of the chunk in the capture
        while True:
            buf = f.read(want)
            pos, next_want, batch = self._parse(buf, base)
            if batch:
                yield batch
            if not _next_chunk(f, buf, want, start + base + pos):
                if pos < len(buf):
                    self.notes.truncated_tail = True  # its writer was killed mid-block
                return
            base, want = base + pos, next_want

    def _parse(self, buf: bytes, base: int) -> tuple[int, int, list[RawRecord]]:
        """Parse the whole blocks of ``buf`` (``base``: its offset in the file).

        Returns:
            Where the first incomplete block starts, how many bytes to read next, and the
            packets of the whole blocks.
        """
        out: list[RawRecord] = []
        pos, n = 0, len(buf)
        head = self._fmt("II")
        epb = self._fmt("IIIIIII")
        u32 = self._fmt("I")
        ifaces = self._ifaces
        while n - pos >= 8:
            if n - pos >= 32:
                btype, total, ifid, hi, lo, caplen, orig = epb.unpack_from(buf, pos)
            else:
                btype, total = head.unpack_from(buf, pos)
            if (btype == BLOCK_EPB and 32 <= total <= n - pos and not total & 3
                    and ifid < len(ifaces) and caplen <= total - 32
                    and u32.unpack_from(buf, pos + total - 4)[0] == total):
                iface = ifaces[ifid]
                comment = None
                if total > caplen + 35:  # options follow the padded data
                    comment = self._epb_options(buf[pos + 8:pos + total - 4],
                                                20 + caplen + _pad(caplen))
                ts = (hi << 32) | lo
                out.append((iface.linktype, ts if iface.plain else iface.ns(ts), buf,
                            pos + 28, caplen, orig, iface.name, comment))
                pos += total
                continue
            # otherwise the general path below takes the block and says what is wrong
            if btype == BLOCK_SHB:
                if n - pos < 12:
                    break
                bom = buf[pos + 8:pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    self._le = True
                elif bom == b"\x1a\x2b\x3c\x4d":
                    self._le = False
                else:
                    raise McastValueError("not a pcapng file: bad byte-order magic in the "
                                          "section header")
                head, epb, u32 = self._fmt("II"), self._fmt("IIIIIII"), self._fmt("I")
                btype, total = head.unpack_from(buf, pos)
            elif self._section < 0:
                raise McastValueError("not a pcapng file: it does not start with a "
                                      "section header block")
            if total < 12 or total % 4 or total > MAX_BLOCK:
                raise McastValueError(f"corrupt pcapng file: block length {total} at "
                                      f"offset {base + pos}")
            if total > n - pos:
                return pos, max(CHUNK, total), out
            if u32.unpack_from(buf, pos + total - 4)[0] != total:
                raise _differ(base + pos)
            body = buf[pos + 8:pos + total - 4]
            rec = self._block(btype, body)
            ifaces = self._ifaces  # a section header starts a new list
            if rec is not None:
                out.append(rec)
            pos += total
        return pos, max(CHUNK, 12), out  # a block header and byte-order magic at least

    def _epb_options(self, body: bytes, at: int) -> str | None:
        comment = None
        for code, val in _parse_options(body, at, self._fmt("H")):
            if code == OPT_COMMENT:
                comment = val.decode("utf-8", "replace")
                self.notes.comments.append(comment)
            elif code == EPB_DROPCOUNT and len(val) == 8:
                self.notes.dropcount += self._fmt("Q").unpack(val)[0]
        return comment

    def _block(self, btype: int, body: bytes) -> RawRecord | None:
        u16, u32 = self._fmt("H"), self._fmt("I")
        if btype == BLOCK_SHB:
            self._section += 1
            self._ifaces = []
            for code, val in _parse_options(body, 16, u16):
                if code == OPT_COMMENT:
                    self.notes.comments.append(val.decode("utf-8", "replace"))
            return None
        if btype == BLOCK_IDB:
            if len(body) < 8:
                raise McastValueError("corrupt pcapng file: short interface block")
            iface = Interface(u16.unpack_from(body)[0], u32.unpack_from(body, 4)[0])
            for code, val in _parse_options(body, 8, u16):
                if code == IF_NAME:
                    iface.name = val.decode("utf-8", "replace")
                elif code == IF_TSRESOL:
                    iface.units_per_s = _resolution(val)
                elif code == IF_TSOFFSET and len(val) == 8:
                    iface.offset_s = self._fmt("q").unpack(val)[0]
            iface.plain = iface.units_per_s == 1_000_000_000 and not iface.offset_s
            self._ifaces.append(iface)
            return None
        if btype == BLOCK_EPB:
            if len(body) < 20:
                raise McastValueError("corrupt pcapng file: short packet block")
            ifid, hi, lo, caplen, orig = self._fmt("IIIII").unpack_from(body)
            return self._packet(ifid, (hi << 32) | lo, body, 20, caplen, orig)
        if btype == BLOCK_SPB:
            if len(body) < 4 or not self._ifaces:
                raise McastValueError("corrupt pcapng file: simple packet block without an "
                                      "interface")
            orig = u32.unpack_from(body)[0]
            caplen = min(orig, self._ifaces[0].snaplen or orig, len(body) - 4)
            return self._packet(0, None, body, 4, caplen, orig)
        if btype == BLOCK_PB:
            if len(body) < 20:
                raise McastValueError("corrupt pcapng file: short packet block")
            ifid, _drops, hi, lo, caplen, orig = self._fmt("HHIIII").unpack_from(body)
            return self._packet(ifid, (hi << 32) | lo, body, 20, caplen, orig)
        if btype == BLOCK_ISB and len(body) >= 12:
            ifid = u32.unpack_from(body)[0]
            for code, val in _parse_options(body, 12, u16):
                if code in (ISB_OSDROP, ISB_IFDROP) and len(val) == 8:
                    key = (self._section, ifid)
                    drops = self._fmt("Q").unpack(val)[0]
                    where = self.notes.osdrop if code == ISB_OSDROP else self.notes.ifdrop
                    where[key] = max(where.get(key, 0), drops)
                elif code == OPT_COMMENT:
                    self.notes.comments.append(val.decode("utf-8", "replace"))
        return None

    def _packet(self, ifid: int, ts: int | None, body: bytes, at: int, caplen: int,
                orig: int) -> RawRecord:
        if ifid >= len(self._ifaces):
            raise _undeclared(ifid)
        if at + caplen > len(body):
            raise McastValueError("corrupt pcapng file: packet longer than its block")
        iface = self._ifaces[ifid]
        comment = None
        if ts is not None and len(body) > at + caplen + 3:  # options follow the padded data
            comment = self._epb_options(body, at + caplen + _pad(caplen))
        return (iface.linktype, None if ts is None else iface.ns(ts), body, at, caplen, orig,
                iface.name, comment)


def _next_chunk(f: BinaryIO, buf: bytes, asked: int, resume: int) -> bool:
    """Whether there is more to read after ``buf`` (``asked`` bytes were asked for); if
    so, the stream is put at ``resume``, the start of the first block ``buf`` did not
    hold whole (reading again from there costs less than joining the pieces)."""
    if not buf or (len(buf) < asked and not f.read(1)):
        return False
    f.seek(resume)
    return True


def _differ(offset: int) -> McastValueError:
    return McastValueError(f"corrupt pcapng file: block lengths differ at offset {offset}")


def _undeclared(ifid: int) -> McastValueError:
    return McastValueError(f"corrupt pcapng file: packet on interface {ifid}, which no "
                           "interface block described")
