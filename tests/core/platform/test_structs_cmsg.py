"""The byte layouts mcastkit._platform._structs packs by hand agree with ctypes and
with the kernel's CMSG rules."""

from __future__ import annotations

import ctypes
import ipaddress
import socket

from hypothesis import given
from hypothesis import strategies as st

from mcastkit._platform._structs import (
    MMSGHDR,
    pack_dest,
    pack_iovec,
    pack_mmsghdr,
    parse_cmsgs,
)
from tests.support.structs_ref import IOVec, MMsgHdr, pack_cmsgs

PTR = st.integers(0, (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1)
SIZE = st.integers(0, (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1)
U32 = st.integers(0, (1 << 32) - 1)
I32 = st.integers(-(1 << 31), (1 << 31) - 1)


@given(PTR, U32, PTR, SIZE, PTR, SIZE, I32, U32)
def test_mmsghdr_matches_ctypes(name: int, namelen: int, iov: int, iovlen: int, ctl: int,
                                ctllen: int, flags: int, mlen: int) -> None:
    ref = MMsgHdr()
    h = ref.msg_hdr
    h.msg_name, h.msg_namelen, h.msg_iov, h.msg_iovlen = name, namelen, iov, iovlen
    h.msg_control, h.msg_controllen, h.msg_flags = ctl, ctllen, flags
    ref.msg_len = mlen
    assert pack_mmsghdr(name, namelen, iov, iovlen, ctl, ctllen, flags, mlen) == \
        bytes(ref)
    assert MMSGHDR.size == ctypes.sizeof(MMsgHdr)


@given(PTR, SIZE)
def test_iovec_matches_ctypes(base: int, length: int) -> None:
    assert pack_iovec(base, length) == bytes(IOVec(base, length))


CMSG = st.tuples(st.integers(0, 300), st.integers(0, 100), st.binary(max_size=40))


@given(st.lists(CMSG, max_size=6))
def test_cmsg_roundtrip_and_spacing(items: list[tuple[int, int, bytes]]) -> None:
    raw = pack_cmsgs(items)
    assert len(raw) == sum(socket.CMSG_SPACE(len(d)) for _, _, d in items)
    assert parse_cmsgs(raw) == items


@given(st.binary(max_size=200))
def test_parse_cmsgs_never_raises(raw: bytes) -> None:
    for level, ctype, data in parse_cmsgs(raw):
        assert isinstance(level, int) and isinstance(ctype, int) and isinstance(data, bytes)


@given(st.lists(CMSG, min_size=1, max_size=4), st.integers(0, 64))
def test_parse_cmsgs_stops_at_truncation(items: list[tuple[int, int, bytes]], cut: int) -> None:
    raw = pack_cmsgs(items)
    short = raw[: max(0, len(raw) - cut)]
    got = parse_cmsgs(short)
    assert got == items[: len(got)]


@given(st.ip_addresses(v=4), st.integers(0, 65535))
def test_pack_dest_v4(addr: ipaddress.IPv4Address, port: int) -> None:
    raw = pack_dest((str(addr), port))
    assert int.from_bytes(raw[0:2], "little") == socket.AF_INET
    assert int.from_bytes(raw[2:4], "big") == port
    assert raw[4:8] == addr.packed


@given(st.ip_addresses(v=6), st.integers(0, 65535), U32)
def test_pack_dest_v6(addr: ipaddress.IPv6Address, port: int, scope: int) -> None:
    raw = pack_dest((str(addr), port, 0, scope))
    assert int.from_bytes(raw[2:4], "big") == port
    assert raw[8:24] == addr.packed
    assert int.from_bytes(raw[24:28], "little") == scope
