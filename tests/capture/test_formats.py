"""pcapng/pcap byte layout: our writer against our reader (Hypothesis), classic pcap in
every byte order and resolution, damaged files. Interop with tcpdump/tshark is in
test_record_tools.py and test_replay_tools.py."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import McastValueError
from mcastkit.capture import _pcapng
from mcastkit.capture._pcap import PcapReader, read_capture

packets = st.lists(st.tuples(st.integers(0, 2**63), st.binary(max_size=300),
                             st.one_of(st.none(), st.text(max_size=20)),
                             st.one_of(st.none(), st.integers(0, 2**40))), max_size=20)


def _file(pkts: list[tuple[int, bytes, str | None, int | None]], linktype: int = 1) -> bytes:
    out = _pcapng.section_header_block("test", "os", "a comment")
    out += _pcapng.interface_block(linktype, 65535, "veth0", "desc")
    for ts, data, comment, drops in pkts:
        out += _pcapng.enhanced_packet_block(0, ts, data, comment=comment, dropcount=drops)
    out += _pcapng.statistics_block(0, 5, osdrop=7, usrdeliv=len(pkts), comment="end")
    return out


@settings(max_examples=150)
@given(packets)
def test_pcapng_roundtrip(pkts: list[tuple[int, bytes, str | None, int | None]]) -> None:
    raw = _file(pkts)
    assert len(raw) % 4 == 0
    r = read_capture(io.BytesIO(raw))
    got = list(r)
    assert [(g.ts_ns, g.data, g.comment or None) for g in got] == \
        [(ts, d, c or None) for ts, d, c, _ in pkts]
    assert all(g.linktype == 1 and g.interface == "veth0" for g in got)
    assert r.notes.osdrop == {(0, 0): 7}
    assert r.notes.dropcount == sum(d or 0 for *_, d in pkts)
    assert "end" in r.notes.comments and not r.notes.truncated_tail


@given(packets, st.data())
def test_pcapng_cut_anywhere_never_raises_and_keeps_whole_blocks(
        pkts: list[tuple[int, bytes, str | None, int | None]], data: st.DataObject) -> None:
    raw = _file(pkts)
    cut = data.draw(st.integers(0, len(raw)))
    try:
        r = read_capture(io.BytesIO(raw[:cut]))
    except McastValueError:
        assert cut < 4  # only an empty/too-short start is "not a capture"
        return
    got = list(r)
    assert len(got) <= len(pkts)
    assert r.notes.truncated_tail == (cut not in _block_ends(raw))


def _block_ends(raw: bytes) -> set[int]:
    ends, pos = {0}, 0
    while pos < len(raw):
        pos += struct.unpack_from("<I", raw, pos + 4)[0]
        ends.add(pos)
    return ends


def _big_endian_pcapng() -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        n = 12 + len(body)
        return struct.pack(">II", btype, n) + body + struct.pack(">I", n)
    shb = block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_tsresol = 2^-10 s, if_tsoffset = 100 s
    opts = struct.pack(">HH", 9, 1) + b"\x8a\x00\x00\x00" + struct.pack(">HHq", 14, 8, 100)
    idb = block(1, struct.pack(">HHI", 101, 0, 0) + opts + b"\x00" * 4)
    epb = block(6, struct.pack(">IIIII", 0, 0, 2048, 4, 4) + b"\x45\x00\x00\x14")
    spb = block(3, struct.pack(">I", 3) + b"abc\x00")
    return shb + idb + epb + spb


def test_pcapng_big_endian_resolution_offset_and_simple_blocks() -> None:
    got = list(read_capture(io.BytesIO(_big_endian_pcapng())))
    assert got[0].ts_ns == 100 * 10**9 + 2 * 10**9 and got[0].linktype == 101
    assert got[0].data == b"\x45\x00\x00\x14"
    assert got[1].ts_ns is None and got[1].data == b"abc"


@pytest.mark.parametrize(("order", "magic", "mult"), [
    ("<", 0xA1B2C3D4, 1000), (">", 0xA1B2C3D4, 1000),
    ("<", 0xA1B23C4D, 1), (">", 0xA1B23C4D, 1)])
def test_classic_pcap_all_orders_and_resolutions(order: str, magic: int, mult: int) -> None:
    head = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 0x10000000 | 113)
    recs = b"".join(struct.pack(order + "IIII", 1000 + i, 5 + i, 3, 9) + b"xyz"[:3]
                    for i in range(3))
    r = read_capture(io.BytesIO(head + recs))
    assert isinstance(r, PcapReader) and r.linktype == 113  # FCS bits masked off
    got = list(r)
    assert [g.ts_ns for g in got] == [(1000 + i) * 10**9 + (5 + i) * mult for i in range(3)]
    assert all(g.data == b"xyz" and g.orig_len == 9 for g in got)
    r2 = read_capture(io.BytesIO(head + recs[:-2]))
    assert len(list(r2)) == 2 and r2.notes.truncated_tail


@pytest.mark.parametrize("raw", [b"", b"GIF89a" + bytes(40), b"\x0a\x0d\x0d\x0a" + bytes(8)])
def test_not_a_capture(raw: bytes) -> None:
    with pytest.raises(McastValueError):
        list(read_capture(io.BytesIO(raw)))


def test_corrupt_block_length_is_an_error_naming_the_offset() -> None:
    raw = bytearray(_file([(1, b"abcd", None, None)]))
    shb_len = struct.unpack_from("<I", raw, 4)[0]
    struct.pack_into("<I", raw, shb_len + 4, 13)  # IDB length not a multiple of 4
    with pytest.raises(McastValueError, match="offset"):
        list(read_capture(io.BytesIO(bytes(raw))))


def test_packet_on_undeclared_interface() -> None:
    raw = _pcapng.section_header_block("t") + _pcapng.enhanced_packet_block(3, 1, b"x")
    with pytest.raises(McastValueError, match="interface 3"):
        list(read_capture(io.BytesIO(raw)))
