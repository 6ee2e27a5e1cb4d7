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
from ._pcapng import MAX_BLOCK, Notes, PcapngReader, Record

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
        f = self._f
        while True:
            head = f.read(16)
            if not head:
                return
            if len(head) < 16:
                self.notes.truncated_tail = True
                return
            sec, frac, caplen, orig = self._rec.unpack(head)
            if caplen > MAX_BLOCK:
                raise McastValueError(f"corrupt pcap file: record length {caplen} at offset "
                                      f"{f.tell() - 16}")
            data = f.read(caplen)
            if len(data) < caplen:
                self.notes.truncated_tail = True
                return
            yield Record(self.linktype, sec * 1_000_000_000 + frac * self._mult, data, orig)


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
