"""mcastkit.seq: formats, wrap-around (Hypothesis), exact loss/reorder/duplicate counts."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import McastValueError
from mcastkit.seq import Kind, MarkKind, SeqAnalyzer, StreamStats, pack, parse_format, unwrap
from tests.support.addrs import G4, SRC4


def rtp(seq: int, ssrc: int = 0x1234, ts: int = 0) -> bytes:
    return struct.pack(">BBHII", 0x80, 96, seq & 0xFFFF, ts, ssrc) + b"payload"


def feed(an: SeqAnalyzer, payloads: list[bytes]) -> None:
    for i, p in enumerate(payloads):
        an.feed_payload(p, SRC4, 4000, G4, 5004, float(i))


def test_unwrap_examples() -> None:
    assert unwrap(0, 16, 65535) == 65536
    assert unwrap(65535, 16, 65536) == 65535
    assert unwrap(5, 32, 2**32 + 3) == 2**32 + 5
    assert unwrap(0, 64, 2**64 - 1) == 2**64


@settings(max_examples=200)
@given(bits=st.sampled_from([8, 16, 32, 64]), start=st.integers(0, 2**64 - 1),
       n=st.integers(2, 300))
def test_wraparound_is_one_step_forward(bits: int, start: int, n: int) -> None:
    s = StreamStats()
    mod = 1 << bits
    for i in range(n):
        s.add("k", (start + i) % mod, 10, float(i), bits=bits)
    t = s.total()
    assert (t.expected, t.lost, t.reordered, t.duplicates, t.gaps) == (n, 0, 0, 0, 0)


@settings(max_examples=200)
@given(bits=st.sampled_from([16, 32, 64]), start=st.integers(0, 2**64 - 1),
       n=st.integers(10, 200), data=st.data())
def test_exact_counts_across_wrap(bits: int, start: int, n: int, data: st.DataObject) -> None:
    """Drop some numbers (not the first or last), swap some neighbours, repeat some:
    the counters say exactly what was done, wherever the wrap falls."""
    mod = 1 << bits
    start %= mod
    nums = list(range(n))
    lost = set(data.draw(st.sets(st.integers(1, n - 2), max_size=n // 4), label="lost"))
    seq = [i for i in nums if i not in lost]
    # swap disjoint neighbour pairs whose members are consecutive survivors
    swaps = 0
    i = 1
    while i < len(seq) - 2:
        if seq[i + 1] == seq[i] + 1 and data.draw(st.booleans(), label=f"swap{i}"):
            seq[i], seq[i + 1] = seq[i + 1], seq[i]
            swaps += 1
            i += 3
        else:
            i += 1
    dups = data.draw(st.lists(st.integers(0, len(seq) - 1), max_size=5, unique=True),
                     label="dups")
    out: list[int] = []
    for k, v in enumerate(seq):
        out.append(v)
        if k in dups:
            out.append(v)
    s = StreamStats()
    for k, v in enumerate(out):
        s.add("k", (start + v) % mod, 10, float(k), bits=bits)
    t = s.total()
    gaps = sum(1 for i in range(1, n) if i in lost and i - 1 not in lost)
    assert t.expected == n
    assert t.lost == len(lost)
    assert t.reordered == swaps
    assert t.duplicates == len(dups)
    assert t.first_seq is None and s.streams()[0].first_seq == start
    # a swap right after a gap makes the jump happen one step early: same gap count
    assert t.gaps == gaps


def test_rtp_loss_reorder_duplicates_and_ssrc_streams() -> None:
    an = SeqAnalyzer("rtp")
    order = [65530, 65531, 65533, 65532, 65534, 65534, 1, 2, 3]  # 65535 and 0 lost
    feed(an, [rtp(n) for n in order] + [rtp(7, ssrc=9), rtp(8, ssrc=9)])
    per = {s.stream.rsplit("/", 1)[1]: s for s in an.streams()}
    a = per["00001234"]
    assert (a.expected, a.lost, a.reordered, a.duplicates, a.gaps) == (10, 2, 1, 1, 1)
    assert (a.first_seq, a.last_seq) == (65530, 3)
    b = per["00000009"]
    assert (b.expected, b.lost) == (2, 0)
    assert "lost 2/12" in an.summary_line()
    assert an.as_json()["total"]["duplicates"] == 1


def test_not_rtp_is_unsequenced() -> None:
    an = SeqAnalyzer("rtp")
    feed(an, [b"\x00" * 20, b"short"])
    assert an.stats.unsequenced == 2 and len(an.stats) == 0


def test_iperf2_end_reveals_tail_loss() -> None:
    an = SeqAnalyzer("iperf2")
    pay = [struct.pack(">iII", i, 0, 0) + bytes(20) for i in range(0, 8)]
    feed(an, [*pay[:5], struct.pack(">iII", -8, 0, 0)])
    t = an.total()
    assert (t.expected, t.lost) == (8, 3)


def test_mcastkit_end_and_stream_ids() -> None:
    an = SeqAnalyzer("mcastkit")
    feed(an, [pack(1, 0, 0), pack(1, 2, 0), pack(2, 0, 0), pack(1, 4, 0, kind=Kind.END)])
    per = {s.stream.rsplit("/", 1)[1]: s for s in an.streams()}
    assert (per["00000001"].expected, per["00000001"].lost) == (4, 2)
    assert per["00000002"].lost == 0


def test_moldudp64_counts_messages_and_skips_heartbeats() -> None:
    def mold(seq: int, count: int) -> bytes:
        return struct.pack(">10sQH", b"SESSION001", seq, count) + bytes(4 * max(count, 0)
                                                                        if count != 0xFFFF
                                                                        else 0)
    an = SeqAnalyzer("moldudp64")
    feed(an, [mold(1, 3), mold(4, 2), mold(8, 1), mold(9, 0), mold(6, 2), mold(6, 2),
              mold(12, 0xFFFF)])
    t = an.total()
    # counted in messages: 1..11 expected (the end says the next is 12), 9..11 never sent
    # (lost 3); the late datagram 6+2 brings 2 reordered messages, its copy 2 duplicates
    assert (t.expected, t.lost, t.reordered, t.duplicates, t.datagrams) == (11, 3, 2, 2, 5)
    assert an.heartbeats == 1 and an.ends == 1
    assert an.streams()[0].stream.endswith("/SESSION001")


@pytest.mark.parametrize(("spec", "data", "seq"), [
    ("u32@0", b"\x00\x00\x01\x02rest", 0x102),
    ("u16le@2", b"xx\x02\x01", 0x102),
    ("U64BE@1", b"x" + (5).to_bytes(8, "big"), 5),
    ("u8@0", b"\xff", 255),
])
def test_generic_format(spec: str, data: bytes, seq: int) -> None:
    mark = parse_format(spec).read(data)
    assert mark is not None and mark.seq == seq and mark.kind is MarkKind.DATA


def test_generic_short_payload_is_none() -> None:
    assert parse_format("u64@8").read(bytes(15)) is None


@pytest.mark.parametrize("spec", ["u24@0", "foo", "u32@", "u32@99999999", ""])
def test_bad_format_names_the_valid_ones(spec: str) -> None:
    with pytest.raises(McastValueError) as ei:
        parse_format(spec)
    assert "uN[be|le]@OFFSET" in ei.value.message or "offset" in ei.value.message


@given(st.binary(max_size=64), st.sampled_from(["mcastkit", "iperf2", "iperf2-64", "rtp",
                                                "moldudp64", "u32le@3"]))
def test_readers_never_raise(data: bytes, name: str) -> None:
    parse_format(name).read(data)
