"""The batch path of ``record`` (``capture._epb``): the same bytes as the per-datagram one.

Three builders must agree byte for byte: the per-datagram reference (``build_udp_frame``
/ ``build_udp_packet`` wrapped by ``enhanced_packet_block``, what ``Recorder.add``
writes), the Python batch builder ``build_epbs_py`` (header templates, checksums from
partial sums) and the compiled ``_speedups.build_epbs``. Both batch builders must stop
at the same datagram when one is not plain. The checksum shortcut (the buffer read as
one integer, modulo 0xffff) is proven against the word-by-word RFC 1071 sum.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import Datagram, _frames
from mcastkit.capture import Recorder, _epb, _pcapng, packets
from mcastkit.capture._record import _Batches
from tests.support.addrs import G4, G4_OTHER, G6, SRC4, asm6, lab_host

Builder = _epb.Builder
LINKTYPES = (_frames.LINKTYPE_ETHERNET, _frames.LINKTYPE_RAW)
PORT = 5000


def _c_builder() -> Builder:
    if _epb.c_build_epbs is None:
        if os.environ.get("MCASTKIT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail("mcastkit._speedups.build_epbs is not built "
                        "(MCASTKIT_REQUIRE_SPEEDUPS=1)")
        pytest.skip("NOT TESTED: the accelerator (with build_epbs) is not built")
    return _epb.c_build_epbs


def _words_sum(data: bytes) -> int:
    """RFC 1071 by the book: 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_integer_sum_is_the_rfc1071_sum(data: bytes) -> None:
    folded = _words_sum(data)  # 0..0xffff; 0 only for an all-zero buffer
    assert _epb.ones_sum_mod(data) == folded % 0xFFFF
    assert _frames._ones_sum(data) == folded


def test_integer_sum_edge_cases() -> None:
    assert _epb.ones_sum_mod(b"") == 0
    assert _frames._ones_sum(b"\xff\xff") == 0xFFFF  # a non-zero multiple of 0xffff
    assert _frames._ones_sum(b"\x00\x00") == 0
    assert _epb.ones_sum_mod(b"\x01") == 0x100  # odd length: padded on the right
    assert _epb.ones_sum_mod(b"\xff\xff" * 1000) == 0


def _reference(d: Datagram, port: int, ifid: int, linktype: int) -> bytes:
    """What ``Recorder.add`` writes for a plain datagram."""
    assert d.group is not None and d.timestamp_ns is not None
    s = ipaddress.ip_address(d.source.split("%", 1)[0])
    g = ipaddress.ip_address(d.group)
    tos, ttl = d.tos or 0, 1 if d.ttl is None else d.ttl
    if linktype == _frames.LINKTYPE_ETHERNET:
        frame = _frames.build_udp_frame(_epb.PLACEHOLDER_MAC, s, g, d.port, port, d.data,
                                        ttl=ttl, dscp=tos >> 2, ecn=tos & 3)
    else:
        frame = _frames.build_udp_packet(s, g, d.port, port, d.data, ttl=ttl,
                                         dscp=tos >> 2, ecn=tos & 3)
    return _pcapng.enhanced_packet_block(ifid, d.timestamp_ns, frame)


_V4_SOURCES = (SRC4, lab_host(255, 254), "0.0.0.0")
_V6_SOURCES = ("fe80::1%2", "2001:db8::1", "::")
_small = st.none() | st.integers(0, 255)


@st.composite
def _datagram(draw: st.DrawFn) -> Datagram:
    v6 = draw(st.booleans())
    source = draw(st.sampled_from(_V6_SOURCES if v6 else _V4_SOURCES))
    group = (str(ipaddress.IPv6Address(0xFF15 << 112 | draw(st.integers(0, 2**112 - 1))))
             if v6 else str(ipaddress.IPv4Address(0xE0000000 | draw(st.integers(0, 2**28 - 1)))))
    return Datagram(draw(st.binary(max_size=200)), source, draw(st.integers(0, 65535)), group,
                    2, draw(_small), False, None, draw(st.integers(0, 2**64 - 1)),
                    draw(_small))


@settings(max_examples=200, deadline=None)
@given(st.lists(_datagram(), min_size=1, max_size=12), st.sampled_from(LINKTYPES),
       st.integers(0, 7), st.integers(0, 65535))
def test_batch_builders_equal_the_per_datagram_reference(
        batch: list[Datagram], linktype: int, ifid: int, port: int) -> None:
    expected = b"".join(_reference(d, port, ifid, linktype) for d in batch)
    builders: list[Builder] = [_epb.build_epbs_py]
    if _epb.c_build_epbs is not None:
        builders.append(_epb.c_build_epbs)
    for build in builders:
        # blocks go at pos, over junk, and the buffer grows to hold them
        out = bytearray(b"keep" + b"junk" * 7)
        assert build(out, 4, batch, 0, port, ifid, 2, linktype, 0, 1 << 40) == (
            len(batch), 4 + len(expected), sum(len(d.data) for d in batch))
        assert bytes(out[:4 + len(expected)]) == b"keep" + expected, build


def test_compiled_builder_is_tested_here() -> None:
    _c_builder()  # loud when the accelerator is missing: the test above covered Python only


@pytest.mark.parametrize("size", [0, 1, 1399, 65507])
def test_sizes_up_to_the_ipv4_limit(size: int) -> None:
    d = Datagram(os.urandom(size), lab_host(0, 9), 4000, G4_OTHER, 2, 64, False, None,
                 1_700_000_000_123_456_789, 0xB8)
    out_py, out_c = bytearray(), bytearray()
    assert _epb.build_epbs_py(out_py, 0, [d], 0, PORT, 0, 2, 1, 0, 1 << 40)[0] == 1
    assert _c_builder()(out_c, 0, [d], 0, PORT, 0, 2, 1, 0, 1 << 40)[0] == 1
    assert out_py == out_c == _reference(d, PORT, 0, 1)


def _plain(i: int, **kw: object) -> Datagram:
    d = Datagram(bytes([i]) * 10, SRC4, 4000, G4, 2, 1, False, None,
                 1_000 + i)
    for k, v in kw.items():
        setattr(d, k, v)
    return d


@pytest.mark.parametrize("odd", [
    {"drops": 6}, {"truncated": True}, {"timestamp_ns": None}, {"interface": 3},
    {"group": None}, {"group": lab_host(0, 2)},
    {"group": G6}, {"source": "not an address"}, {"ttl": 300},
    {"data": b"x" * 65508},
])
def test_both_builders_stop_before_a_datagram_that_is_not_plain(odd: dict[str, object]
                                                                  ) -> None:
    batch = [_plain(0, drops=5), _plain(1), _plain(2, **odd), _plain(3)]
    for build in (_epb.build_epbs_py, _c_builder()):
        out = bytearray()
        assert build(out, 0, batch, 0, PORT, 0, 2, 1, 5, 1 << 40)[::2] == (2, 20)
        assert build(bytearray(), 0, batch, 3, PORT, 0, 2, 1, 5, 1 << 40)[::2] == (4, 10)


@pytest.mark.parametrize(("group", "linktype"), [
    ("255.255.255.255", _frames.LINKTYPE_ETHERNET), (lab_host(0, 2), _frames.LINKTYPE_RAW),
    ("2001:db8::2", _frames.LINKTYPE_RAW)])
def test_destinations_without_a_multicast_mac(group: str, linktype: int) -> None:
    source = "2001:db8::1" if ":" in group else SRC4
    d = _plain(1, group=group, source=source)
    for build in (_epb.build_epbs_py, _c_builder()):
        out = bytearray()
        ref = _reference(d, PORT, 0, linktype)
        assert build(out, 0, [d], 0, PORT, 0, 2, linktype, 0, 1 << 40) == (1, len(ref), 10)
        assert out[:len(ref)] == ref


def test_both_builders_stop_at_the_byte_limit() -> None:
    batch = [_plain(i) for i in range(5)]
    one = len(_reference(batch[0], PORT, 0, 1))
    for build in (_epb.build_epbs_py, _c_builder()):
        assert build(bytearray(9), 9, batch, 0, PORT, 0, 2, 1, 0, 2 * one)[:2] == (2, 9 + 2 * one)
        assert build(bytearray(), 0, batch, 0, PORT, 0, 2, 1, 0, 2 * one + 1)[0] == 3
        assert build(bytearray(), 0, batch, 0, PORT, 0, 2, 1, 0, 0) == (0, 0, 0)


def test_compiled_builder_refuses_bad_arguments() -> None:
    build = _c_builder()
    with pytest.raises(TypeError):
        build(b"", 0, [], 0, PORT, 0, None, 1, 0, 0)  # type: ignore[arg-type]
    for args in ((0, 0, 70000, 0, 1), (0, 0, PORT, 0, 7), (0, -1, PORT, 0, 1),
                 (1, 0, PORT, 0, 1), (-1, 0, PORT, 0, 1), (0, 0, PORT, 1 << 32, 1)):
        pos, start, port, ifid, lt = args
        with pytest.raises(ValueError):
            build(bytearray(), pos, [], start, port, ifid, None, lt, 0, 0)
    with pytest.raises(TypeError):
        build(bytearray(), 0, 5, 0, PORT, 0, None, 1, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build(bytearray(), 0, [])  # type: ignore[call-arg]
    out = bytearray()
    # not a Datagram: stops there, untouched
    assert build(out, 0, [object()], 0, PORT, 0, None, 1, 0, 1 << 20) == (  # type: ignore[list-item]
        0, 0, 0)
    assert out == b""
    # a buffer another view holds cannot grow: the error is raised, nothing is lost
    view = memoryview(out)
    with pytest.raises(BufferError):
        build(out, 0, [_plain(1)], 0, PORT, 0, 2, 1, 0, 1 << 20)
    view.release()


def _mixed() -> list[list[Datagram]]:
    """Batches with drop rises, a truncated one, another interface, IPv6."""
    b1 = [_plain(i) for i in range(4)]
    b2 = [_plain(4), _plain(5, drops=3), _plain(6, drops=3), _plain(7, truncated=True),
          _plain(8, interface=5), _plain(9, interface=5)]
    b3 = [Datagram(b"six", "fe80::7%2", 4001, asm6("7"), 2, 3, False, 3, 5_000, 4),
          _plain(10, drops=9)]
    return [b1, b2, b3]


def _record(path: str) -> Recorder:
    rec = Recorder(path)
    writer = _Batches(rec, [], None)
    sock = object()
    writer.ports[sock] = PORT  # type: ignore[index]
    writer.last[sock] = 0  # type: ignore[index]
    for i, batch in enumerate(_mixed()):
        writer.write(sock, batch, 2 if i == 1 else 0)  # type: ignore[arg-type]
    rec.flush()
    return rec


def test_recorder_batch_path_writes_what_the_per_datagram_path_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _record(str(tmp_path / "fast.pcapng"))
    # the per-datagram path only: a builder that takes nothing
    monkeypatch.setattr(_epb, "build_epbs", lambda out, pos, batch, start, *rest: (start, pos, 0))
    slow = _record(str(tmp_path / "slow.pcapng"))
    assert (tmp_path / "fast.pcapng").read_bytes() == (tmp_path / "slow.pcapng").read_bytes()
    for rec in (fast, slow):
        rec.close()
        assert rec.stats.datagrams == 12 and rec.stats.drop_records == 2
        assert rec.stats.bytes == 10 * 11 + 3 and rec.stats.truncated == 1
    got = list(packets(str(tmp_path / "fast.pcapng")))
    assert [bytes(d.payload) for d in got] == [bytes([i]) * 10 for i in range(10)] + [
        b"six", bytes([10]) * 10]
