"""Unit tests for mcastkit._packet: Datagram and the ancillary-data decoder, fed crafted
control-message lists (the kernel half, real cmsgs, lives in test_receive.py).

Must not: open sockets.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit import Datagram
from mcastkit import _platform as plat
from mcastkit._packet import CmsgKind, decode_ancillary
from mcastkit._platform import CMSG_KINDS
from tests.support.addrs import G4, G4_OTHER, G6, SRC4, SSM4

# The (level, type) pairs from Python's socket module where it has them, so a wrong
# number in mcastkit._platform._linux fails a test here; the ones Python lacks come from
# the platform table and are proved against the kernel in test_receive.py (real cmsgs).
IP, IP6, SOL = socket.IPPROTO_IP, socket.IPPROTO_IPV6, socket.SOL_SOCKET
PKTINFO4 = plat.cmsg_type(CmsgKind.PKTINFO4)
TTL = (IP, socket.IP_TTL)
TOS = (IP, socket.IP_TOS)
PKTINFO6 = (IP6, socket.IPV6_PKTINFO)
HOPLIMIT = (IP6, socket.IPV6_HOPLIMIT)
TCLASS = (IP6, socket.IPV6_TCLASS)
RXQ_OVFL = plat.cmsg_type(CmsgKind.RXQ_OVFL)
TIMESTAMPNS = plat.cmsg_type(CmsgKind.TIMESTAMPNS)


def _d() -> Datagram:
    return Datagram(b"x", SRC4, 4000)


def _in_pktinfo(ifindex: int, dst: str, spec: str = "0.0.0.0") -> bytes:
    return struct.pack("=i4s4s", ifindex, socket.inet_aton(spec), socket.inet_aton(dst))


def _in6_pktinfo(ifindex: int, dst: str) -> bytes:
    return struct.pack("=16sI", socket.inet_pton(socket.AF_INET6, dst), ifindex)


def test_linux_table_matches_the_headers() -> None:
    assert CMSG_KINDS == {
        PKTINFO4: CmsgKind.PKTINFO4, TTL: CmsgKind.TTL, TOS: CmsgKind.TOS,
        PKTINFO6: CmsgKind.PKTINFO6, HOPLIMIT: CmsgKind.HOPLIMIT, TCLASS: CmsgKind.TCLASS,
        RXQ_OVFL: CmsgKind.RXQ_OVFL, TIMESTAMPNS: CmsgKind.TIMESTAMPNS,
    }


def test_no_ancillary_data_leaves_metadata_none() -> None:
    d = _d()
    decode_ancillary(d, [], CMSG_KINDS)
    assert (d.group, d.interface, d.ttl, d.drops, d.timestamp_ns, d.tos) == (None,) * 6
    assert d.truncated is False


@pytest.mark.parametrize(
    ("cmsg", "field", "value"),
    [
        ((*PKTINFO4, _in_pktinfo(3, G4)), "group", G4),
        ((*PKTINFO4, _in_pktinfo(3, G4, SRC4)), "interface", 3),
        ((*PKTINFO6, _in6_pktinfo(7, G6)), "group", G6),
        ((*PKTINFO6, _in6_pktinfo(7, G6)), "interface", 7),
        ((*TTL, struct.pack("=i", 64)), "ttl", 64),
        ((*TTL, b"\x05"), "ttl", 5),
        ((*HOPLIMIT, struct.pack("=i", 255)), "ttl", 255),
        ((*RXQ_OVFL, struct.pack("=I", 0xFFFFFFFF)), "drops", 0xFFFFFFFF),
        ((*RXQ_OVFL, struct.pack("=I", 12)), "drops", 12),
        ((*TIMESTAMPNS, struct.pack("=qq", 1_700_000_000, 123)), "timestamp_ns",
         1_700_000_000_000_000_123),
        ((*TOS, b"\xb8"), "tos", 0xB8),  # Linux sends IP_TOS as one byte
        ((*TOS, struct.pack("=i", 0x20)), "tos", 0x20),
        ((*TCLASS, struct.pack("=i", 0xB8)), "tos", 0xB8),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_kind_fills_its_field(cmsg: tuple[int, int, bytes], field: str, value: object) -> None:
    d = _d()
    decode_ancillary(d, [cmsg], CMSG_KINDS)
    assert getattr(d, field) == value


@pytest.mark.parametrize(
    ("key", "size"),
    [(PKTINFO4, 11), (PKTINFO6, 19), (TTL, 0), (HOPLIMIT, 0), (RXQ_OVFL, 3),
     (TIMESTAMPNS, 15), (TOS, 0), (TCLASS, 0), (PKTINFO4, 0)],
)
def test_short_buffers_are_ignored(key: tuple[int, int], size: int) -> None:
    d = _d()
    decode_ancillary(d, [(*key, b"\x01" * size)], CMSG_KINDS)
    assert (d.group, d.interface, d.ttl, d.drops, d.timestamp_ns, d.tos) == (None,) * 6


def test_longer_buffers_read_the_prefix() -> None:
    d = _d()
    decode_ancillary(d, [(*PKTINFO4, _in_pktinfo(2, SSM4) + b"\xff" * 4),
                         (*RXQ_OVFL, struct.pack("=I", 9) + b"\xff" * 4)], CMSG_KINDS)
    assert (d.group, d.interface, d.drops) == (SSM4, 2, 9)


@pytest.mark.parametrize(
    "cmsg",
    [(IP, 99, b"\x01" * 16), (SOL, 1, b"\x01" * 4),
     (IP6, PKTINFO4[1], _in_pktinfo(3, G4)),  # a type at the other family's level
     (IP, PKTINFO6[1], _in6_pktinfo(3, G6)), (12345, PKTINFO4[1], b"")],
)
def test_unknown_pairs_are_ignored(cmsg: tuple[int, int, bytes]) -> None:
    d = _d()
    decode_ancillary(d, [cmsg], CMSG_KINDS)
    assert (d.group, d.interface, d.ttl, d.drops, d.timestamp_ns, d.tos) == (None,) * 6


def test_all_kinds_together() -> None:
    d = _d()
    decode_ancillary(d, [
        (*PKTINFO4, _in_pktinfo(1, G4_OTHER)),
        (*TTL, struct.pack("=i", 1)),
        (*TOS, b"\x00"),
        (*RXQ_OVFL, struct.pack("=I", 0)),
        (*TIMESTAMPNS, struct.pack("=qq", 2, 5)),
        (IP, 99, b"junk"),
    ], CMSG_KINDS)
    assert d == Datagram(b"x", SRC4, 4000, group=G4_OTHER, interface=1, ttl=1,
                         drops=0, timestamp_ns=2_000_000_005, tos=0)


def test_toggling_kinds_off_decodes_nothing() -> None:
    """Metadata off: the core passes no table rows, and nothing is decoded."""
    cmsgs = [(*PKTINFO4, _in_pktinfo(1, G4_OTHER)), (*TTL, struct.pack("=i", 1))]
    off = _d()
    decode_ancillary(off, cmsgs, {})
    assert off.group is None and off.ttl is None
    on = _d()
    decode_ancillary(on, cmsgs, CMSG_KINDS)
    assert on.group == G4_OTHER and on.ttl == 1
    only_ttl = _d()
    decode_ancillary(only_ttl, cmsgs, {TTL: CmsgKind.TTL})
    assert only_ttl.group is None and only_ttl.ttl == 1


def test_later_cmsg_of_a_kind_wins() -> None:
    d = _d()
    decode_ancillary(d, [(*TTL, struct.pack("=i", 3)), (*TTL, struct.pack("=i", 4))], CMSG_KINDS)
    assert d.ttl == 4


def test_datagram_str() -> None:
    assert str(_d()) == f"1B from {SRC4}:4000"
    d = Datagram(b"ab", "ff", 1, group=G4, interface=2, ttl=3, truncated=True,
                 drops=4)
    assert str(d) == f"2B from ff:1 dst={G4} ifindex=2 ttl=3 truncated drops=4"


_known_keys = st.sampled_from(sorted(CMSG_KINDS))
_c_int = st.integers(-(1 << 31), (1 << 31) - 1)
_any_keys = st.tuples(_c_int, _c_int)
_cmsgs = st.lists(
    st.tuples(_known_keys | _any_keys, st.binary(max_size=40)).map(lambda t: (*t[0], t[1])),
    max_size=12,
)


@given(_cmsgs)
def test_arbitrary_cmsg_lists_never_raise(cmsgs: list[tuple[int, int, bytes]]) -> None:
    d = _d()
    decode_ancillary(d, cmsgs, CMSG_KINDS)
    assert d.data == b"x" and d.source == SRC4 and d.port == 4000
    assert d.ttl is None or isinstance(d.ttl, int)
    assert d.group is None or isinstance(d.group, str)
    assert d.drops is None or 0 <= d.drops < 1 << 32


@given(st.integers(0, (1 << 31) - 1), st.binary(min_size=4, max_size=4))
def test_pktinfo4_decodes_any_destination(ifindex: int, dst: bytes) -> None:
    d = _d()
    raw = struct.pack("=i4s4s", ifindex, b"\0" * 4, dst)
    decode_ancillary(d, [(*PKTINFO4, raw)], CMSG_KINDS)
    assert d.interface == ifindex
    assert d.group == socket.inet_ntop(socket.AF_INET, dst)
