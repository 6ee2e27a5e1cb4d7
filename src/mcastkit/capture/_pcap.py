"""Classic pcap files (libpcap format), and telling pcap from pcapng.

Read: both byte orders, microsecond (``a1b2c3d4``) and nanosecond (``a1b23c4d``) magic,
the link type without its FCS bits. A record cut short at the end (a writer that was
killed) ends the reading and is reported in ``notes.truncated_tail``.

Owns: the classic pcap layout and :func:`read_capture` (pcap or pcapng by magic).
Must not: open files (callers hand a binary stream), know about packet contents.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO, Final

from .._errors import McastValueError
from ._pcapng import (
    CHUNK,
    MAX_BLOCK,
    Notes,
    PcapngReader,
    RawRecord,
    Record,
    _next_chunk,
)

__all__ = ["PcapReader", "read_capture"]

_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"


class PcapReader:
    """Iterate over the records of a classic pcap stream positioned at its start."""

    def __init__(self, stream: BinaryIO) -> None:
        self._f = stream
        self.notes = Notes()
        head = stream.read(24)
        if len(head) < 24 or head[:4] not in _MAGICS:
            raise McastValueError("not a pcap file: bad magic number")
        order, self._mult = _MAGICS[head[:4]]
        _magic, _maj, _min, _zone, _sig, self.snaplen, network = struct.unpack(
            order + "IHHiIII", head)
        self.linktype = network & 0x0FFFFFFF
        self._rec = struct.Struct(order + "IIII")

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            for lt, ts, buf, at, caplen, orig, _name, _comment in batch:
                yield Record(lt, ts, buf[at:at + caplen], orig)

    def batches(self) -> Iterator[list[RawRecord]]:
        """The records, a list per chunk read (:data:`CHUNK` bytes), in file order.

        Raises:
            McastValueError: a record length no capture has (corrupt file).
        """
        f, rec, lt, mult = self._f, self._rec, self.linktype, self._mult
        start = f.tell()
        base, want = 24, CHUNK  # base: offset of the chunk in the capture
        while True:
            buf = f.read(want)
            pos, n, next_want = 0, len(buf), max(CHUNK, 16)  # a record header at least
            out: list[RawRecord] = []
            while n - pos >= 16:
                sec, frac, caplen, orig = rec.unpack_from(buf, pos)
                if caplen > MAX_BLOCK:
                    raise McastValueError(f"corrupt pcap file: record length {caplen} at "
                                          f"offset {base + pos}")
                if caplen > n - pos - 16:
                    next_want = max(CHUNK, caplen + 16)
                    break
                out.append((lt, sec * 1_000_000_000 + frac * mult, buf, pos + 16, caplen,
                            orig, None, None))
                pos += 16 + caplen
            if out:
                yield out
            if not _next_chunk(f, buf, want, start + base - 24 + pos):
                if pos < n:
                    self.notes.truncated_tail = True
                return
            base, want = base + pos, next_want


def read_capture(stream: BinaryIO) -> PcapReader | PcapngReader:
    """A reader for ``stream`` (pcap or pcapng, told apart by the first bytes).

    Raises:
        McastValueError: neither format.
    """
    magic = stream.read(4)
    stream.seek(-len(magic), 1)
    if magic == PCAPNG_MAGIC:
        return PcapngReader(stream)
    if magic in _MAGICS:
        return PcapReader(stream)
    raise McastValueError("not a pcap or pcapng capture (unknown magic number "
                          f"{magic.hex() or 'none: the file is empty'})")
