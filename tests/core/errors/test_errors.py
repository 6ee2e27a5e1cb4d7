"""Unit tests for mcastkit._translate and mcastkit._errors: the (operation, errno) table,
driven by raising plain OSError objects inside :func:`translate` (the mocked half; the
kernel-tier tests of tests/core reproduce each row with real sockets), the class hierarchy
and the ErrorCode snapshot.

Must not: open sockets.
"""

from __future__ import annotations

import errno as E
import socket

import pytest

from mcastkit import (
    AlreadyJoinedError,
    ClosedError,
    DatagramTooLargeError,
    ErrorCode,
    InterfaceError,
    InterfaceNotFoundError,
    McastError,
    McastOSError,
    McastStateError,
    McastValueError,
    MembershipLimitError,
    ModeConflictError,
    NotJoinedError,
    ReceiveTimeoutError,
    SendError,
    SourceFilterError,
    UnsupportedError,
    WouldBlockError,
)
from mcastkit._errors import ErrOp
from mcastkit._translate import _TABLE, from_oserror, translate
from tests.support.addrs import G4, G6, SRC4, SSM4

V4, V6 = int(socket.AF_INET), int(socket.AF_INET6)

# (op, errno, family, class, code, fragments the message must contain)
ROWS: list[tuple[str, int, int, type[McastOSError], ErrorCode, tuple[str, ...]]] = [
    ("join", E.EADDRINUSE, V4, AlreadyJoinedError, ErrorCode.ALREADY_JOINED, ("already joined",)),
    ("join", E.ENOBUFS, V4, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("net.ipv4.igmp_max_memberships=", "several sockets")),
    ("join", E.ENOMEM, V4, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("igmp_max_memberships",)),
    ("join", E.ENOBUFS, V6, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("net.core.optmem_max=",)),
    ("join", E.ENOMEM, V6, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT, ("optmem_max",)),
    ("join", E.ENODEV, V4, InterfaceError, ErrorCode.INTERFACE_GONE, ("interface=",)),
    ("join", E.EINVAL, V4, McastOSError, ErrorCode.OS_ERROR, ("multicast",)),
    ("leave", E.EADDRNOTAVAIL, V4, NotJoinedError, ErrorCode.NOT_JOINED, ("not joined",)),
    ("leave", E.ENODEV, V4, InterfaceError, ErrorCode.INTERFACE_GONE, ("no longer exists",)),
    ("join_source", E.EADDRNOTAVAIL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("already joined",)),
    ("join_source", E.EADDRINUSE, V4, AlreadyJoinedError, ErrorCode.ALREADY_JOINED,
     ("other filter mode",)),
    ("join_source", E.ENOBUFS, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("net.ipv4.igmp_max_msf=",)),
    ("join_source", E.ENOBUFS, V6, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("net.ipv6.mld_max_msf=",)),
    ("join_source", E.ENOMEM, V4, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("igmp_max_memberships",)),
    ("join_source", E.ENODEV, V4, InterfaceError, ErrorCode.INTERFACE_GONE, ("interface=",)),
    ("send", E.EDESTADDRREQ, V4, SendError, ErrorCode.SEND_FAILED, ("connect()",)),
    ("connect", E.ENETUNREACH, V4, McastOSError, ErrorCode.OS_ERROR,
     ("no multicast route out of lo",)),
    ("join_group_source", E.EADDRNOTAVAIL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("already joined",)),
    ("join_group_source", E.EADDRINUSE, V4, AlreadyJoinedError, ErrorCode.ALREADY_JOINED,
     ("other filter mode",)),
    ("join_group_source", E.ENOBUFS, V4, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("net.ipv4.igmp_max_memberships=",)),
    ("join_group_source", E.ENOMEM, V6, MembershipLimitError, ErrorCode.MEMBERSHIP_LIMIT,
     ("net.core.optmem_max=",)),
    ("join_group_source", E.ENODEV, V4, InterfaceError, ErrorCode.INTERFACE_GONE,
     ("interface=",)),
    ("leave_source", E.EINVAL, V4, NotJoinedError, ErrorCode.NOT_JOINED, ("not joined",)),
    ("leave_source", E.EADDRNOTAVAIL, V4, NotJoinedError, ErrorCode.NOT_JOINED,
     ("not joined",)),
    ("block_source", E.EADDRNOTAVAIL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("already blocked",)),
    ("block_source", E.ENOBUFS, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("igmp_max_msf",)),
    ("block_source", E.ENOBUFS, V6, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("mld_max_msf",)),
    ("block_source", E.EINVAL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("any-source",)),
    ("unblock_source", E.EADDRNOTAVAIL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("not blocked",)),
    ("unblock_source", E.EINVAL, V4, SourceFilterError, ErrorCode.SOURCE_FILTER,
     ("not blocked",)),
    ("send", E.EMSGSIZE, V4, DatagramTooLargeError, ErrorCode.DATAGRAM_TOO_LARGE,
     ("65507", "smaller")),
    ("send", E.ENETUNREACH, V4, SendError, ErrorCode.SEND_FAILED,
     ("no multicast route out of lo",)),
    ("send", E.EADDRNOTAVAIL, V6, SendError, ErrorCode.SEND_FAILED, ("tentative",)),
    ("send", E.ENOBUFS, V4, SendError, ErrorCode.SEND_FAILED, ("transient",)),
    ("send", E.ECONNREFUSED, V4, SendError, ErrorCode.SEND_FAILED, ("refused",)),
    ("send", E.EACCES, V4, SendError, ErrorCode.SEND_FAILED, ("broadcast=True",)),
    ("send", E.EPERM, V4, SendError, ErrorCode.SEND_FAILED, ("firewall",)),
    ("bind", E.EADDRINUSE, V4, McastOSError, ErrorCode.ADDRESS_IN_USE, ("reuse_port=True",)),
    ("bind", E.EADDRNOTAVAIL, V4, McastOSError, ErrorCode.OS_ERROR, ("not local",)),
    ("bind", E.EACCES, V4, McastOSError, ErrorCode.PERMISSION, ("CAP_NET_BIND_SERVICE",)),
    ("recv", E.ECONNREFUSED, V4, McastOSError, ErrorCode.OS_ERROR, ("port unreachable",)),
    ("recv", E.ESHUTDOWN, V4, McastOSError, ErrorCode.OS_ERROR, ("shut down", "forked")),
]


def _raise_in(op: str, err: int, family: int, **ctx: str) -> McastOSError:
    with pytest.raises(McastOSError) as info, translate(ErrOp(op), family=family, **ctx):
        raise OSError(err, "kernel says no")
    return info.value


@pytest.mark.parametrize(("op", "fragments"), [("connect", ("interface=", "-i")),
                                               ("send", ("interface=",))])
def test_no_route_without_an_interface_says_to_set_one(op: str, fragments: tuple[str, ...]
                                                       ) -> None:
    exc = _raise_in(op, E.ENETUNREACH, V4, group=G4)
    assert "no route to the group" in str(exc)
    for frag in fragments:
        assert frag in str(exc)


def test_no_route_on_lo_for_ipv6_names_the_cause() -> None:
    exc = _raise_in("send", E.ENETUNREACH, V6, group=G6, interface="lo")
    assert "IPv6 multicast does not work over lo" in str(exc)


@pytest.mark.parametrize(
    ("op", "err", "family", "cls", "code", "fragments"),
    ROWS,
    ids=[f"{r[0]}-{E.errorcode[r[1]]}-v{4 if r[2] == V4 else 6}" for r in ROWS],
)
def test_table_row(
    op: str, err: int, family: int, cls: type[McastOSError], code: ErrorCode,
    fragments: tuple[str, ...],
) -> None:
    exc = _raise_in(op, err, family, group=G4, interface="lo")
    assert type(exc) is cls
    assert exc.code is code
    assert exc.errno == err
    assert isinstance(exc, OSError) and isinstance(exc, McastError)
    assert exc.op == op and exc.group == G4 and exc.interface == "lo"
    msg = str(exc)
    assert msg.startswith(f"[Errno {err}] {op} {G4} on lo: ")
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == err


def test_every_table_row_is_covered() -> None:
    """A new (op, errno) row must come with an expectation above (and a kernel test)."""
    # ("send", EAGAIN) is unreachable through translate() (OSError(EAGAIN) is a
    # BlockingIOError, which becomes WouldBlockError); it is checked via from_oserror below.
    assert set(_TABLE) == {(r[0], r[1]) for r in ROWS} | {("send", E.EAGAIN)}


def test_limit_message_quotes_the_sysctl_value() -> None:
    exc = _raise_in("join", E.ENOBUFS, V4, group=G4)
    with open("/proc/sys/net/ipv4/igmp_max_memberships") as f:
        value = f.read().strip()
    assert f"net.ipv4.igmp_max_memberships={value};" in str(exc)


def test_source_context_in_message() -> None:
    exc = _raise_in("join_source", E.EADDRNOTAVAIL, V4, group=SSM4, source=SRC4)
    assert f"join_source ({SRC4}, {SSM4})" in str(exc)
    assert exc.source == SRC4


@pytest.mark.parametrize(
    ("op", "err"),
    [("join", E.EPROTO), ("set_ttl", E.EINVAL), ("leave", E.EINVAL), ("bind", E.EBADF),
     ("open", E.EAFNOSUPPORT), ("recv", E.EIO)],
)
def test_unknown_errno_gives_os_error(op: str, err: int) -> None:
    exc = _raise_in(op, err, V4)
    assert type(exc) is McastOSError
    assert exc.code is ErrorCode.OS_ERROR
    assert exc.errno == err
    import os

    assert os.strerror(err) in str(exc) and op in str(exc)


@pytest.mark.parametrize(
    ("err", "code"),
    [(E.EADDRINUSE, ErrorCode.ADDRESS_IN_USE), (E.EACCES, ErrorCode.PERMISSION),
     (E.EPERM, ErrorCode.PERMISSION)],
)
def test_unknown_op_with_known_errno_gets_a_specific_code(err: int, code: ErrorCode) -> None:
    assert _raise_in("connect", err, V4).code is code


def test_unknown_errno_on_send_is_a_send_error() -> None:
    exc = _raise_in("send", E.EIO, V4)
    assert type(exc) is SendError
    assert exc.code is ErrorCode.SEND_FAILED
    assert not exc.transient


def test_oserror_without_errno() -> None:
    with pytest.raises(McastOSError) as info, translate(ErrOp.JOIN):
        raise OSError("odd")
    assert info.value.errno == 0
    assert info.value.code is ErrorCode.OS_ERROR
    assert str(info.value) == "join: odd"


@pytest.mark.parametrize("err", [E.EAGAIN, E.EWOULDBLOCK])
def test_blocking_send_becomes_would_block(err: int) -> None:
    with pytest.raises(WouldBlockError) as info, translate(ErrOp.SEND, group=f"{G4}:5000"):
        raise BlockingIOError(err, "Resource temporarily unavailable")
    exc = info.value
    assert isinstance(exc, BlockingIOError) and isinstance(exc, SendError)
    assert exc.code is ErrorCode.SEND_TRANSIENT
    assert exc.errno == E.EAGAIN
    assert exc.transient
    assert "wait until the socket is writable" in str(exc)


def test_oserror_eagain_is_blocking_io_error_too() -> None:
    """OSError(EAGAIN, ...) is constructed as a BlockingIOError, so it takes that path."""
    with pytest.raises(WouldBlockError), translate(ErrOp.SEND):
        raise OSError(E.EAGAIN, "x")


def test_blocking_io_error_outside_send_passes_through() -> None:
    with pytest.raises(BlockingIOError) as info, translate(ErrOp.RECV):
        raise BlockingIOError(E.EAGAIN, "x")
    assert not isinstance(info.value, McastError)


def test_send_eagain_row_via_from_oserror() -> None:
    exc = from_oserror(OSError(E.EAGAIN, "x"), ErrOp.SEND, group="g")
    assert type(exc) is SendError and exc.transient
    assert "retry" in str(exc)


def test_enobufs_send_error_is_transient() -> None:
    assert _raise_in("send", E.ENOBUFS, V4).transient  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "exc",
    [TimeoutError("t"), McastValueError("v"), ClosedError("c"), KeyError("k"),
     NotJoinedError(E.EADDRNOTAVAIL, "n")],
)
def test_passthrough(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as info, translate(ErrOp.JOIN):
        raise exc
    assert info.value is exc


def test_no_error_no_effect() -> None:
    with translate(ErrOp.JOIN):
        pass


# --------------------------------------------------------------------------- hierarchy


@pytest.mark.parametrize(
    ("cls", "bases", "code"),
    [
        (McastValueError, (McastError, ValueError), ErrorCode.BAD_VALUE),
        (ModeConflictError, (McastValueError, ValueError), ErrorCode.MODE_CONFLICT),
        (UnsupportedError, (McastError, NotImplementedError), ErrorCode.UNSUPPORTED),
        (McastStateError, (McastError, RuntimeError), ErrorCode.BAD_STATE),
        (ClosedError, (McastStateError, RuntimeError), ErrorCode.CLOSED),
        (McastOSError, (McastError, OSError), ErrorCode.OS_ERROR),
        (AlreadyJoinedError, (McastOSError,), ErrorCode.ALREADY_JOINED),
        (NotJoinedError, (McastOSError,), ErrorCode.NOT_JOINED),
        (MembershipLimitError, (McastOSError,), ErrorCode.MEMBERSHIP_LIMIT),
        (SourceFilterError, (McastOSError,), ErrorCode.SOURCE_FILTER),
        (InterfaceError, (McastOSError,), ErrorCode.INTERFACE_GONE),
        (InterfaceNotFoundError, (InterfaceError, McastValueError, ValueError, OSError),
         ErrorCode.INTERFACE_NOT_FOUND),
        (SendError, (McastOSError,), ErrorCode.SEND_FAILED),
        (DatagramTooLargeError, (SendError,), ErrorCode.DATAGRAM_TOO_LARGE),
        (WouldBlockError, (SendError, BlockingIOError), ErrorCode.SEND_TRANSIENT),
        (ReceiveTimeoutError, (McastOSError, TimeoutError), ErrorCode.TIMEOUT),
    ],
)
def test_hierarchy_and_default_codes(
    cls: type[McastError], bases: tuple[type[BaseException], ...], code: ErrorCode
) -> None:
    assert issubclass(cls, McastError)
    for base in bases:
        assert issubclass(cls, base), base
    assert cls.code is code


def test_os_error_keeps_errno_and_strerror() -> None:
    exc = McastOSError(E.ENODEV, "gone", op="join", interface="veth0")
    assert exc.errno == E.ENODEV
    assert exc.strerror == "No such device"
    assert str(exc) == f"[Errno {E.ENODEV}] gone"
    assert exc.message == "gone"
    assert exc.interface == "veth0"


def test_os_error_without_errno_prints_the_message_only() -> None:
    exc = NotJoinedError(0, f"leave {G4} on lo: not joined")
    assert str(exc) == f"leave {G4} on lo: not joined"
    assert exc.strerror == exc.message


def test_code_can_be_overridden_per_instance() -> None:
    exc = McastValueError("x", code=ErrorCode.WRONG_FAMILY)
    assert exc.code is ErrorCode.WRONG_FAMILY
    assert McastValueError.code is ErrorCode.BAD_VALUE


def test_interface_not_found_is_caught_as_value_error_and_os_error() -> None:
    for catch in (ValueError, OSError, InterfaceError):
        with pytest.raises(catch):
            raise InterfaceNotFoundError(E.ENODEV, "no interface named 'x'")


# --------------------------------------------------------------------------- ErrorCode snapshot

ERROR_CODES = {
    "BAD_ADDRESS": 101, "NOT_MULTICAST": 102, "WRONG_FAMILY": 103, "BAD_VALUE": 104,
    "ALREADY_JOINED": 201, "NOT_JOINED": 202, "MEMBERSHIP_LIMIT": 203, "SOURCE_FILTER": 204,
    "MODE_CONFLICT": 205,
    "INTERFACE_NOT_FOUND": 301, "INTERFACE_GONE": 302, "NO_ROUTE": 303,
    "SEND_TRANSIENT": 401, "DATAGRAM_TOO_LARGE": 402, "SEND_FAILED": 403,
    "RECEIVE_FAILED": 404, "TIMEOUT": 405, "ADDRESS_IN_USE": 406, "PERMISSION": 407,
    "UNSUPPORTED": 501,
    "CLOSED": 601, "BAD_STATE": 602, "NOT_OWNER": 603,
    "OS_ERROR": 901,
}


def test_error_codes_are_never_renumbered() -> None:
    """Existing codes are frozen. Adding a code: append it here in the same commit."""
    assert {c.name: c.value for c in ErrorCode} == ERROR_CODES


def test_error_codes_stay_in_their_bands() -> None:
    bands = {"1": "input", "2": "membership", "3": "interface", "4": "I/O", "5": "platform",
             "6": "state", "9": "other"}
    for code in ErrorCode:
        assert str(code.value)[0] in bands and 100 <= code.value <= 999
