"""Unit tests for mcastkit._platform._structs: the packed kernel structs checked against
independent ctypes declarations of ``<netinet/in.h>`` / ``<linux/in.h>`` / ``<linux/in6.h>``.

Must not: call setsockopt (the kernel half lives in tests/core/receive).
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastkit._platform._structs import (
    GROUP_REQ_SIZE,
    GROUP_SOURCE_REQ_SIZE,
    SOCKADDR_STORAGE_SIZE,
    pack_group_req,
    pack_group_source_req,
    pack_in6_pktinfo,
    pack_in_pktinfo,
    pack_ip_mreqn,
    pack_sockaddr,
    unpack_in6_pktinfo,
    unpack_in_pktinfo,
)
from tests.support.addrs import G4, G6, SRC4, SSM4

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
_LP64 = ctypes.sizeof(ctypes.c_void_p) == 8


# ------------------------------------------------------------ the kernel's structs, in ctypes


class in_addr(ctypes.Structure):
    _fields_ = [("s_addr", ctypes.c_uint8 * 4)]


class in6_addr(ctypes.Structure):
    _fields_ = [("s6_addr", ctypes.c_uint8 * 16)]


class sockaddr_in(ctypes.Structure):
    _fields_ = [
        ("sin_family", ctypes.c_ushort),
        ("sin_port", ctypes.c_uint8 * 2),  # network byte order
        ("sin_addr", in_addr),
        ("sin_zero", ctypes.c_uint8 * 8),
    ]


class sockaddr_in6(ctypes.Structure):
    _fields_ = [
        ("sin6_family", ctypes.c_ushort),
        ("sin6_port", ctypes.c_uint8 * 2),
        ("sin6_flowinfo", ctypes.c_uint32),
        ("sin6_addr", in6_addr),
        ("sin6_scope_id", ctypes.c_uint32),
    ]


class sockaddr_storage(ctypes.Structure):
    _fields_ = [
        ("ss_family", ctypes.c_ushort),
        ("ss_padding", ctypes.c_uint8 * (128 - 2 - ctypes.sizeof(ctypes.c_ulong))),
        ("ss_align", ctypes.c_ulong),
    ]


class group_req(ctypes.Structure):
    _fields_ = [("gr_interface", ctypes.c_uint32), ("gr_group", sockaddr_storage)]


class group_source_req(ctypes.Structure):
    _fields_ = [
        ("gsr_interface", ctypes.c_uint32),
        ("gsr_group", sockaddr_storage),
        ("gsr_source", sockaddr_storage),
    ]


class ip_mreqn(ctypes.Structure):
    _fields_ = [("imr_multiaddr", in_addr), ("imr_address", in_addr), ("imr_ifindex", ctypes.c_int)]


class in_pktinfo(ctypes.Structure):
    _fields_ = [("ipi_ifindex", ctypes.c_int), ("ipi_spec_dst", in_addr), ("ipi_addr", in_addr)]


class in6_pktinfo(ctypes.Structure):
    _fields_ = [("ipi6_addr", in6_addr), ("ipi6_ifindex", ctypes.c_uint)]


def _port(raw: ctypes.Array[ctypes.c_uint8]) -> int:
    return int.from_bytes(bytes(raw), "big")


def _decode_storage(ss: sockaddr_storage) -> tuple[int, str, int, int]:
    """(family, address, port, scope_id) of a sockaddr_storage, read through ctypes."""
    raw = bytes(ss)
    if ss.ss_family == socket.AF_INET:
        sin = sockaddr_in.from_buffer_copy(raw)
        assert bytes(sin.sin_zero) == bytes(8)
        return socket.AF_INET, str(V4(bytes(sin.sin_addr.s_addr))), _port(sin.sin_port), 0
    sin6 = sockaddr_in6.from_buffer_copy(raw)
    assert sin6.sin6_flowinfo == 0
    return (socket.AF_INET6, str(V6(bytes(sin6.sin6_addr.s6_addr))), _port(sin6.sin6_port),
            sin6.sin6_scope_id)


# --------------------------------------------------------------------------- sizes and offsets


def test_sizes_match_ctypes() -> None:
    assert SOCKADDR_STORAGE_SIZE == ctypes.sizeof(sockaddr_storage) == 128
    assert ctypes.sizeof(group_req) == GROUP_REQ_SIZE
    assert ctypes.sizeof(group_source_req) == GROUP_SOURCE_REQ_SIZE
    assert ctypes.sizeof(sockaddr_in) == 16
    assert ctypes.sizeof(sockaddr_in6) == 28
    assert ctypes.sizeof(ip_mreqn) == 12
    assert ctypes.sizeof(in_pktinfo) == 12
    assert ctypes.sizeof(in6_pktinfo) == 20


@pytest.mark.skipif(not _LP64, reason="the 136/264 sizes are those of 64-bit (LP64) Linux")
def test_lp64_sizes_and_offsets() -> None:
    assert GROUP_REQ_SIZE == 136
    assert GROUP_SOURCE_REQ_SIZE == 264
    assert group_req.gr_group.offset == 8
    assert group_source_req.gsr_group.offset == 8
    assert group_source_req.gsr_source.offset == 136


def test_field_offsets() -> None:
    assert sockaddr_in6.sin6_addr.offset == 8
    assert sockaddr_in6.sin6_scope_id.offset == 24
    assert ip_mreqn.imr_ifindex.offset == 8
    assert in_pktinfo.ipi_addr.offset == 8
    assert in6_pktinfo.ipi6_ifindex.offset == 16


@pytest.mark.parametrize(
    ("addr", "size"),
    [(V4(G4), SOCKADDR_STORAGE_SIZE), (V6(G6), SOCKADDR_STORAGE_SIZE)],
)
def test_sockaddr_is_padded_to_storage(addr: V4 | V6, size: int) -> None:
    raw = pack_sockaddr(addr, 5000)
    assert len(raw) == size
    tail = 16 if addr.version == 4 else 28
    assert raw[tail:] == bytes(size - tail)


def test_packed_sizes() -> None:
    assert len(pack_group_req(1, V4(G4))) == GROUP_REQ_SIZE
    assert len(pack_group_req(1, V6(G6))) == GROUP_REQ_SIZE
    assert len(pack_group_source_req(1, V4(SSM4), V4(SRC4))) == (
        GROUP_SOURCE_REQ_SIZE
    )
    assert len(pack_ip_mreqn(V4(G4), 1)) == 12
    assert len(pack_in_pktinfo(1, V4(SRC4))) == 12
    assert len(pack_in6_pktinfo(1, V6("fe80::1"))) == 20


# --------------------------------------------------------------------------- round trips

_u32 = st.integers(min_value=0, max_value=(1 << 32) - 1)
_i32 = st.integers(min_value=0, max_value=(1 << 31) - 1)
_ports = st.integers(min_value=0, max_value=65535)
_v4 = st.builds(V4, _u32)
_v6 = st.builds(V6, st.integers(min_value=0, max_value=(1 << 128) - 1))
_v4_groups = st.builds(V4, st.integers(min_value=0xE0000000, max_value=0xEFFFFFFF))
_v6_groups = st.builds(V6, st.integers(min_value=0xFF << 120, max_value=(1 << 128) - 1))


@given(_v4 | _v6, _ports, _u32)
def test_sockaddr_round_trip(addr: V4 | V6, port: int, scope_id: int) -> None:
    scope = scope_id if addr.version == 6 else 0
    ss = sockaddr_storage.from_buffer_copy(pack_sockaddr(addr, port, scope))
    fam = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    assert _decode_storage(ss) == (fam, str(addr), port, scope)


@given(_u32, _v4_groups | _v6_groups)
def test_group_req_round_trip(ifindex: int, group: V4 | V6) -> None:
    raw = pack_group_req(ifindex, group)
    gr = group_req.from_buffer_copy(raw)
    assert gr.gr_interface == ifindex
    assert _decode_storage(gr.gr_group)[:3] == (
        socket.AF_INET if group.version == 4 else socket.AF_INET6, str(group), 0
    )
    assert raw[4 : group_req.gr_group.offset] == bytes(group_req.gr_group.offset - 4)


@st.composite
def _group_and_source(draw: st.DrawFn) -> tuple[V4 | V6, V4 | V6]:
    if draw(st.booleans()):
        return draw(_v4_groups), draw(_v4)
    return draw(_v6_groups), draw(_v6)


@given(_u32, _group_and_source())
def test_group_source_req_round_trip(ifindex: int, gs: tuple[V4 | V6, V4 | V6]) -> None:
    group, source = gs
    gsr = group_source_req.from_buffer_copy(pack_group_source_req(ifindex, group, source))
    assert gsr.gsr_interface == ifindex
    assert _decode_storage(gsr.gsr_group)[1:3] == (str(group), 0)
    assert _decode_storage(gsr.gsr_source)[1:3] == (str(source), 0)
    assert gsr.gsr_group.ss_family == gsr.gsr_source.ss_family


@given(_v4_groups, _i32)
def test_ip_mreqn_round_trip(group: V4, ifindex: int) -> None:
    m = ip_mreqn.from_buffer_copy(pack_ip_mreqn(group, ifindex))
    assert V4(bytes(m.imr_multiaddr.s_addr)) == group
    assert bytes(m.imr_address.s_addr) == bytes(4)  # INADDR_ANY: choose by index only
    assert m.imr_ifindex == ifindex


@given(_i32, _v4)
def test_in_pktinfo_round_trip(ifindex: int, spec: V4) -> None:
    raw = pack_in_pktinfo(ifindex, spec)
    p = in_pktinfo.from_buffer_copy(raw)
    assert p.ipi_ifindex == ifindex
    assert V4(bytes(p.ipi_spec_dst.s_addr)) == spec
    assert bytes(p.ipi_addr.s_addr) == bytes(4)


@given(_i32, _v4)
def test_unpack_in_pktinfo_reads_the_destination(ifindex: int, dst: V4) -> None:
    p = in_pktinfo(ipi_ifindex=ifindex)
    ctypes.memmove(ctypes.byref(p, in_pktinfo.ipi_addr.offset), dst.packed, 4)
    assert unpack_in_pktinfo(bytes(p)) == (ifindex, str(dst))


@given(_i32, _v6)
def test_in6_pktinfo_round_trip(ifindex: int, addr: V6) -> None:
    raw = pack_in6_pktinfo(ifindex, addr)
    p = in6_pktinfo.from_buffer_copy(raw)
    assert V6(bytes(p.ipi6_addr.s6_addr)) == addr
    assert p.ipi6_ifindex == ifindex
    got_index, got_addr = unpack_in6_pktinfo(raw)
    assert (got_index, V6(got_addr)) == (ifindex, addr)  # inet_ntop may spell ::a.b.c.d


def test_unpack_reads_only_the_struct_prefix() -> None:
    raw = pack_in6_pktinfo(3, V6(G6)) + b"\xff" * 8  # cmsg padding
    assert unpack_in6_pktinfo(raw) == (3, G6)
