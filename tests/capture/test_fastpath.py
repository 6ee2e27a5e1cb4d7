"""The replay decoder's fast path against its general path (Hypothesis).

``capture._fastpath`` reads the common frame shape at fixed offsets (in Python, and in
the accelerator's ``udp_rows`` when it is built); everything else goes to the general
path (``_frames`` parsers, skip reasons, reassembly). For any frame, valid or damaged, of
any link type, the datagram, its checksum verdict and every counter must be what the
general path alone gives, for both implementations. The readers must hand out the same
records whatever the chunk size (blocks spanning chunk boundaries).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import McastValueError, _frames
from mcastkit.capture import _decode, _fastpath, _pcap, _pcapng
from mcastkit.capture._decode import DecodeStats, _general, _Reassembler
from mcastkit.capture._fastpath import Row, decode_batch_py
from mcastkit.capture._pcapng import RawRecord
from tests.support.addrs import G4, G6, SRC4, VETH_BCAST, lab_host

V4_SOURCES = [SRC4, lab_host(255, 254)]
V4_DESTS = [G4, "224.0.0.251", "255.255.255.255", VETH_BCAST, lab_host(0, 2)]
V6_SOURCES = ["2001:db8::1", "fe80::1"]
V6_DESTS = [G6, "ff02::fb", "2001:db8::2"]
LINKTYPES = [_frames.LINKTYPE_ETHERNET, _frames.LINKTYPE_LINUX_SLL,
             _frames.LINKTYPE_LINUX_SLL2, _frames.LINKTYPE_RAW, _frames.LINKTYPE_IPV4,
             _frames.LINKTYPE_IPV6, _frames.LINKTYPE_NULL, 147]


@st.composite
def ip_packets(draw: st.DrawFn) -> bytes:
    """A UDP packet from the builders, then maybe damaged: any header byte, a length
    field, the checksum, fragment bits, a cut or extra bytes."""
    v6 = draw(st.booleans())
    src = draw(st.sampled_from(V6_SOURCES if v6 else V4_SOURCES))
    dst = draw(st.sampled_from(V6_DESTS if v6 else V4_DESTS))
    pkt = bytearray(_frames.build_udp_packet(
        src, dst, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)),
        draw(st.binary(max_size=300)), ttl=draw(st.integers(0, 255))))
    hdr = 40 if v6 else 20
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["byte", "checksum", "zero_checksum", "frag", "udp_len"]))
        if kind == "byte":
            pkt[draw(st.integers(0, min(len(pkt), hdr + 8) - 1))] = draw(st.integers(0, 255))
        elif kind == "checksum":
            struct.pack_into("!H", pkt, hdr + 6, draw(st.integers(0, 65535)))
        elif kind == "zero_checksum":
            struct.pack_into("!H", pkt, hdr + 6, 0)
        elif kind == "frag" and not v6:
            struct.pack_into("!H", pkt, 6, draw(st.sampled_from([0x2000, 0x0001, 0x4000,
                                                                 0x2003])))
        elif kind == "udp_len":
            struct.pack_into("!H", pkt, hdr + 4, draw(st.integers(0, 400)))
    end = draw(st.sampled_from(["whole", "whole", "cut", "pad"]))
    if end == "cut":
        del pkt[draw(st.integers(0, len(pkt))):]
    elif end == "pad":  # link-layer padding after the IP packet
        pkt += bytes(draw(st.integers(1, 20)))
    return bytes(pkt)


@st.composite
def frames(draw: st.DrawFn) -> tuple[int, bytes]:
    """(linktype, frame): an IP packet behind any link-layer header mcastkit reads."""
    lt = draw(st.sampled_from(LINKTYPES))
    pkt = draw(ip_packets())
    et = 0x86DD if pkt and pkt[0] >> 4 == 6 else 0x0800
    et = draw(st.sampled_from([et, et, 0x0806, 0x8100]))
    if lt == _frames.LINKTYPE_ETHERNET:
        dmac = draw(st.sampled_from([b"\x01\x00\x5e\x7f\x00\x01", _frames.BROADCAST_MAC,
                                     b"\x02\x00\x00\x00\x00\x09"]))
        tag = b"\x00\x05" + et.to_bytes(2, "big") if et == 0x8100 else b""
        inner = 0x0800 if tag else et
        head = dmac + b"\x02" * 6 + (et.to_bytes(2, "big") + tag if tag else
                                     inner.to_bytes(2, "big"))
    elif lt == _frames.LINKTYPE_LINUX_SLL:
        head = struct.pack("!HHH8sH", draw(st.integers(0, 4)), 1, 6, b"\x02" * 8, et)
    elif lt == _frames.LINKTYPE_LINUX_SLL2:
        head = struct.pack("!HHiHBB8s", et, 0, 3, 1, draw(st.integers(0, 4)), 6, b"\x02" * 8)
    elif lt == _frames.LINKTYPE_NULL:
        head = struct.pack("<I", draw(st.sampled_from([2, 10, 30, 7])))
    else:
        head = b""
    frame = head + pkt
    if draw(st.booleans()):
        frame = frame[:draw(st.integers(0, len(frame)))]
    return lt, frame


def _general_only(records: list[RawRecord], outgoing: bool) -> tuple[list[Row], DecodeStats]:
    st = DecodeStats()
    general = _general(st, _Reassembler(st), outgoing)
    rows = []
    for rec in records:
        st.records += 1
        st.linktypes[rec[0]] += 1
        row = general(rec)
        if row is not None:
            st.datagrams += 1
            st.bad_checksums += row[8] is False
            rows.append(row)
    return rows, st


def _accelerated(batch: list[RawRecord], general: Callable[[RawRecord], Row | None],
                 outgoing: bool, counts: DecodeStats) -> list[Row]:
    if _fastpath._c_udp_rows is None:
        pytest.skip("the accelerator is not built")  # also run: test_accelerator_is_built
    return _fastpath.decode_batch(batch, general, outgoing, counts)


IMPLS = {"python": decode_batch_py, "c": _accelerated}


def test_accelerator_is_built() -> None:
    """The development build has the C fast path (hatch_build.py compiles it)."""
    assert _fastpath._c_udp_rows is not None


def _outcome(records: list[RawRecord], outgoing: bool, fast: str | None
             ) -> tuple[object, ...]:
    try:
        if fast:
            st = DecodeStats()
            rows = IMPLS[fast](records, _general(st, _Reassembler(st), outgoing), outgoing,
                               st)
        else:
            rows, st = _general_only(records, outgoing)
    except McastValueError as exc:
        return ("raised", exc.message)
    return (rows, st.records, dict(st.linktypes), st.datagrams, dict(st.skipped),
            st.bad_checksums, st.reassembled)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@settings(max_examples=500, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=8), st.booleans(), st.binary(max_size=7))
def test_fast_path_gives_what_the_general_path_gives(
        impl: str, fs: list[tuple[int, bytes]], outgoing: bool, junk: bytes) -> None:
    buf = bytearray(junk)  # frames at odd offsets inside one buffer, as in a chunk
    records: list[RawRecord] = []
    for i, (lt, frame) in enumerate(fs):
        records.append((lt, 1000 + i, b"", len(buf), len(frame), len(frame), None, None))
        buf += frame + b"\xee" * 3  # what follows a frame must never be read as its bytes
    data = bytes(buf)
    records = [(lt, ts, data, at, cap, o, n, c) for lt, ts, _b, at, cap, o, n, c in records]
    assert _outcome(records, outgoing, fast=impl) == _outcome(records, outgoing, fast=None)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@settings(max_examples=200, deadline=None)
@given(st.sampled_from(V4_SOURCES + V6_SOURCES), st.integers(0, 65535),
       st.binary(max_size=1500), st.integers(0, 65535))
def test_checksum_verdict_matches_parse_udp(impl: str, src: str, port: int, payload: bytes,
                                            stored: int) -> None:
    dst = G6 if ":" in src else G4
    pkt = bytearray(_frames.build_udp_packet(src, dst, port, 5000, payload))
    hdr = 40 if ":" in src else 20
    for value in (None, stored):
        if value is not None:
            struct.pack_into("!H", pkt, hdr + 6, value)
        want = _frames.parse_udp(_frames.parse_ip_packet(bytes(pkt))).checksum_ok
        st = DecodeStats()
        rows = IMPLS[impl]([(_frames.LINKTYPE_RAW, 1, bytes(pkt), 0, len(pkt), len(pkt),
                              None, None)], _no_general, True, st)
        assert [r[8] for r in rows] == [want] and st.bad_checksums == (want is False)


def _no_general(rec: RawRecord) -> Row | None:
    raise AssertionError(f"the fast path should have taken {rec!r}")


def _pcapng_file(fs: list[tuple[int, bytes]], comments: list[str | None]) -> bytes:
    out = _pcapng.section_header_block("t")
    lts = sorted({lt for lt, _f in fs})
    for lt in lts:
        out += _pcapng.interface_block(lt, 65535, f"if{lt}")
    for (lt, frame), comment in zip(fs, comments, strict=False):
        out += _pcapng.enhanced_packet_block(lts.index(lt), 7, frame, comment=comment)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(frames(), max_size=12), st.lists(st.one_of(st.none(), st.text(max_size=9))),
       st.integers(12, 300))
def test_readers_give_the_same_records_whatever_the_chunk_size(
        fs: list[tuple[int, bytes]], comments: list[str | None], chunk: int) -> None:
    raw = _pcapng_file(fs, comments)
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(
        struct.pack("<IIII", 1, 2, len(f), len(f)) + f for _lt, f in fs)
    for data in (raw, pcap):
        want = [(r.linktype, r.ts_ns, r.data, r.comment) for r in
                _pcap.read_capture(io.BytesIO(data))]
        mp = pytest.MonkeyPatch()
        try:
            mp.setattr(_pcapng, "CHUNK", chunk)
            mp.setattr(_pcap, "CHUNK", chunk)
            got = [(r.linktype, r.ts_ns, r.data, r.comment) for r in
                   _pcap.read_capture(io.BytesIO(data))]
            rows_small = _all_rows(data)
        finally:
            mp.undo()
        assert got == want
        assert rows_small == _all_rows(data)


def _all_rows(data: bytes) -> object:
    try:
        return [r for b in _decode.rows_from(io.BytesIO(data)) for r in b]
    except McastValueError as exc:  # a link type nobody reads: the same error either way
        return exc.message
