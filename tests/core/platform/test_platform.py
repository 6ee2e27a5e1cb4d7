"""Unit tests for mcastkit._platform: lookup / supports / UnsupportedError (with the option
table dict patched, never the network), the Linux numbers against Python's socket module,
and that every Op the core uses has a row for both families.

Must not: send or receive (sockets here are only created to set and read options).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import mcastkit
from mcastkit import ErrorCode, UnsupportedError
from mcastkit import _platform as plat
from mcastkit._packet import CmsgKind
from mcastkit._platform import _linux
from mcastkit._platform._table import Op, Opt

linux_only = pytest.mark.skipif(plat.PLATFORM != "linux", reason="Linux table only")
SRC = Path(mcastkit.__file__).parent
FAMILIES = [socket.AF_INET, socket.AF_INET6]
# The table lookup() reads (re-exported from the platform module chosen at import).
OPTIONS: dict[int, dict[Op, Opt]] = vars(plat)["OPTIONS"]


def _ops_used_by_core() -> set[Op]:
    used: set[Op] = set()
    for path in SRC.rglob("*.py"):
        if "_platform" in path.parts:
            continue
        used |= {Op[name] for name in re.findall(r"\bOp\.([A-Z0-9_]+)\b", path.read_text())}
    return used


@pytest.fixture
def sock4() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield s
    s.close()


def test_lookup_returns_the_row() -> None:
    row = plat.lookup(socket.AF_INET, Op.MULTICAST_TTL)
    assert isinstance(row, Opt)
    assert row == OPTIONS[socket.AF_INET][Op.MULTICAST_TTL]


@pytest.mark.parametrize("family", FAMILIES)
def test_missing_row_raises_unsupported_naming_the_platform(
    monkeypatch: pytest.MonkeyPatch, family: int
) -> None:
    monkeypatch.delitem(OPTIONS[family], Op.JOIN_SOURCE)
    monkeypatch.setattr(plat, "PLATFORM", "plan9")
    assert not plat.supports(family, Op.JOIN_SOURCE)
    with pytest.raises(UnsupportedError) as info:
        plat.lookup(family, Op.JOIN_SOURCE)
    exc = info.value
    assert isinstance(exc, NotImplementedError)
    assert exc.code is ErrorCode.UNSUPPORTED
    fam = "IPv4" if family == socket.AF_INET else "IPv6"
    assert str(exc) == f"join_source ({fam}) is not implemented on plan9"


def test_unknown_family_has_no_rows() -> None:
    assert not plat.supports(socket.AF_UNIX, Op.JOIN)
    with pytest.raises(UnsupportedError, match="not implemented on"):
        plat.lookup(socket.AF_UNIX, Op.JOIN)


def test_empty_table_supports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plat, "OPTIONS", {})
    assert not any(plat.supports(f, op) for f in FAMILIES for op in Op)


def test_setopt_without_a_row_raises_before_any_syscall(
    monkeypatch: pytest.MonkeyPatch, sock4: socket.socket
) -> None:
    before = sock4.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL)
    monkeypatch.delitem(OPTIONS[socket.AF_INET], Op.MULTICAST_TTL)
    with pytest.raises(UnsupportedError):
        plat.setopt(sock4, Op.MULTICAST_TTL, 9)
    with pytest.raises(UnsupportedError):
        plat.getopt(sock4, Op.MULTICAST_TTL)
    assert sock4.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == before


def test_supports_follows_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTIONS[socket.AF_INET], Op.V6ONLY, Opt(1, 2))
    assert plat.supports(socket.AF_INET, Op.V6ONLY)
    assert plat.lookup(socket.AF_INET, Op.V6ONLY) == Opt(1, 2)


def test_unsupported_option_in_the_socket_surfaces_as_unsupported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(OPTIONS[socket.AF_INET], Op.TOS)
    with mcastkit.MulticastSocket(4) as s, pytest.raises(UnsupportedError, match="tos"):
        s.set_dscp(10)


# --------------------------------------------------------------------------- the Linux table


@linux_only
def test_platform_is_linux() -> None:
    assert plat.PLATFORM == "linux"
    assert OPTIONS is _linux.OPTIONS and plat.CMSG_KINDS is _linux.CMSG_KINDS


@linux_only
@pytest.mark.parametrize("family", FAMILIES, ids=["v4", "v6"])
def test_every_op_used_by_the_core_exists(family: int) -> None:
    used = _ops_used_by_core()
    assert {Op.JOIN, Op.LEAVE, Op.JOIN_SOURCE, Op.MULTICAST_TTL} <= used  # the scan works
    if family == socket.AF_INET:
        used.discard(Op.V6ONLY)  # set only on IPv6 sockets
    missing = {op for op in used if not plat.supports(family, op)}
    assert not missing


@linux_only
def test_every_op_has_a_linux_row() -> None:
    assert set(OPTIONS[socket.AF_INET6]) == set(Op)
    assert set(OPTIONS[socket.AF_INET]) == set(Op) - {Op.V6ONLY}


# Numbers Python's socket module also knows: the table must agree with it.
_PY_NAMES = {
    (socket.AF_INET, Op.MULTICAST_IF): "IP_MULTICAST_IF",
    (socket.AF_INET, Op.MULTICAST_TTL): "IP_MULTICAST_TTL",
    (socket.AF_INET, Op.MULTICAST_LOOP): "IP_MULTICAST_LOOP",
    (socket.AF_INET, Op.TOS): "IP_TOS",
    (socket.AF_INET, Op.RECV_TOS): "IP_RECVTOS",
    (socket.AF_INET, Op.RECV_PKTINFO): "IP_PKTINFO",
    (socket.AF_INET, Op.RECV_TTL): "IP_RECVTTL",
    (socket.AF_INET, Op.RECVERR): "IP_RECVERR",
    (socket.AF_INET, Op.MULTICAST_ALL): "IP_MULTICAST_ALL",
    (socket.AF_INET, Op.JOIN): "MCAST_JOIN_GROUP",
    (socket.AF_INET, Op.BROADCAST): "SO_BROADCAST",
    (socket.AF_INET, Op.LEAVE): "MCAST_LEAVE_GROUP",
    (socket.AF_INET, Op.JOIN_SOURCE): "MCAST_JOIN_SOURCE_GROUP",
    (socket.AF_INET, Op.LEAVE_SOURCE): "MCAST_LEAVE_SOURCE_GROUP",
    (socket.AF_INET, Op.BLOCK_SOURCE): "MCAST_BLOCK_SOURCE",
    (socket.AF_INET, Op.UNBLOCK_SOURCE): "MCAST_UNBLOCK_SOURCE",
    (socket.AF_INET, Op.MTU_DISCOVER): "IP_MTU_DISCOVER",
    (socket.AF_INET6, Op.MULTICAST_IF): "IPV6_MULTICAST_IF",
    (socket.AF_INET6, Op.MULTICAST_TTL): "IPV6_MULTICAST_HOPS",
    (socket.AF_INET6, Op.MULTICAST_LOOP): "IPV6_MULTICAST_LOOP",
    (socket.AF_INET6, Op.RECV_PKTINFO): "IPV6_RECVPKTINFO",
    (socket.AF_INET6, Op.RECV_TTL): "IPV6_RECVHOPLIMIT",
    (socket.AF_INET6, Op.RECV_TOS): "IPV6_RECVTCLASS",
    (socket.AF_INET6, Op.TOS): "IPV6_TCLASS",
    (socket.AF_INET6, Op.V6ONLY): "IPV6_V6ONLY",
    (socket.AF_INET6, Op.RECVERR): "IPV6_RECVERR",
    (socket.AF_INET6, Op.MTU_DISCOVER): "IPV6_DONTFRAG",
    (socket.AF_INET, Op.REUSEADDR): "SO_REUSEADDR",
    (socket.AF_INET, Op.REUSEPORT): "SO_REUSEPORT",
    (socket.AF_INET, Op.RCVBUF): "SO_RCVBUF",
    (socket.AF_INET, Op.SNDBUF): "SO_SNDBUF",
    (socket.AF_INET, Op.UDP_SEGMENT): "UDP_SEGMENT",
}


# The rest, from <linux/in.h>, <linux/in6.h> and <linux/udp.h> (Python lacks them).
_HEADER_NUMBERS = {
    "IPV6_RECVERR": 25, "MCAST_JOIN_GROUP": 42, "MCAST_BLOCK_SOURCE": 43,
    "MCAST_UNBLOCK_SOURCE": 44, "MCAST_LEAVE_GROUP": 45, "MCAST_JOIN_SOURCE_GROUP": 46,
    "MCAST_LEAVE_SOURCE_GROUP": 47, "IP_MTU_DISCOVER": 10, "IP_MULTICAST_ALL": 49,
    "IP_RECVERR": 11, "IP_PKTINFO": 8, "IP_RECVTTL": 12, "UDP_SEGMENT": 103,
}
_NUMBER_CASES = sorted(
    ((key, name, getattr(socket, name, _HEADER_NUMBERS.get(name))) for key, name in
     _PY_NAMES.items()),
    key=lambda c: c[1] + str(c[0][0]),
)


@linux_only
@pytest.mark.parametrize(("key", "name", "value"), _NUMBER_CASES,
                         ids=[f"{c[1]}-{int(c[0][0])}" for c in _NUMBER_CASES])
def test_numbers_agree_with_the_headers(key: tuple[int, Op], name: str, value: int) -> None:
    family, op = key
    assert value is not None, f"no reference number for {name}"
    assert plat.lookup(family, op).name == value


@linux_only
def test_common_rows_are_shared() -> None:
    for op in (Op.REUSEADDR, Op.REUSEPORT, Op.RXQ_OVFL, Op.TIMESTAMPNS, Op.RCVBUF, Op.SNDBUF):
        assert OPTIONS[socket.AF_INET][op] == OPTIONS[socket.AF_INET6][op]
        assert OPTIONS[socket.AF_INET][op].level == socket.SOL_SOCKET


@linux_only
def test_dont_fragment_on_off_values() -> None:
    v4 = plat.lookup(socket.AF_INET, Op.MTU_DISCOVER)
    v6 = plat.lookup(socket.AF_INET6, Op.MTU_DISCOVER)
    assert (v4.on, v4.off) == (2, 0)  # IP_PMTUDISC_DO / DONT
    assert (v6.on, v6.off) == (1, 0)


@linux_only
@pytest.mark.parametrize(("op", "value"), [(Op.MULTICAST_TTL, 7), (Op.MULTICAST_LOOP, 0),
                                           (Op.TOS, 0xB8), (Op.MULTICAST_ALL, 0)])
def test_setopt_getopt_round_trip_on_a_real_socket(
    sock4: socket.socket, op: Op, value: int
) -> None:
    plat.setopt(sock4, op, value)
    assert plat.getopt(sock4, op) == value


def test_opt_defaults() -> None:
    assert Opt(1, 2) == Opt(1, 2, on=1, off=0)


def test_cmsg_type_finds_the_pair_the_receive_table_uses() -> None:
    assert plat.cmsg_type(CmsgKind.PKTINFO4) == (socket.IPPROTO_IP, _linux.IP_PKTINFO)
    assert plat.cmsg_type(CmsgKind.PKTINFO6) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO)


def test_cmsg_type_missing_row_names_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = plat.cmsg_type(CmsgKind.PKTINFO6)
    monkeypatch.delitem(plat.CMSG_KINDS, pair)
    with pytest.raises(UnsupportedError, match=plat.PLATFORM):
        plat.cmsg_type(CmsgKind.PKTINFO6)
