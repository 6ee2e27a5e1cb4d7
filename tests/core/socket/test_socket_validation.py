"""MulticastSocket argument validation that needs no network: bad arguments are refused
with McastValueError (or InterfaceNotFoundError) *before* any socket is created, and a
refused setter leaves the socket unchanged. Sockets made here are never bound to a
non-loopback address and never send.

Must not: join, send or receive.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from mcastkit import (
    ClosedError,
    ErrorCode,
    InterfaceNotFoundError,
    McastValueError,
    MulticastSocket,
    open_receiver,
    open_sender,
)
from tests.support.addrs import G4, G6, SRC4, SSM4, asm4, asm6, lab_host

NO_SUCH_IF = "nosuchif0"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def socket_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """Record every socket.socket() made while the test runs."""
    calls: list[tuple[Any, ...]] = []
    real = socket.socket

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(socket, "socket", Recording)
    yield calls


@pytest.mark.parametrize(
    ("kwargs", "code", "fragment"),
    [
        ({"ttl": 256}, ErrorCode.BAD_VALUE, "ttl must be an integer 0-255, got 256"),
        ({"ttl": -1}, ErrorCode.BAD_VALUE, "ttl must be an integer 0-255, got -1"),
        ({"ttl": True}, ErrorCode.BAD_VALUE, "got True"),
        ({"ttl": 1.0}, ErrorCode.BAD_VALUE, "got 1.0"),
        ({"ttl": "1"}, ErrorCode.BAD_VALUE, "got '1'"),
        ({"dscp": 64}, ErrorCode.BAD_VALUE, "dscp must be an integer 0-63, got 64"),
        ({"dscp": -1}, ErrorCode.BAD_VALUE, "dscp"),
        ({"recv_size": 0}, ErrorCode.BAD_VALUE, "recv_size must be an integer"),
        ({"recv_size": (1 << 20) + 1}, ErrorCode.BAD_VALUE, "recv_size"),
        ({"rcvbuf_bytes": 0}, ErrorCode.BAD_VALUE, "rcvbuf_bytes"),
        ({"sndbuf_bytes": -5}, ErrorCode.BAD_VALUE, "sndbuf_bytes"),
        ({"family": 5}, ErrorCode.WRONG_FAMILY, "family 5"),
        ({"family": "ipv5"}, ErrorCode.WRONG_FAMILY, "'ipv5'"),
        ({"family": socket.AF_UNIX}, ErrorCode.WRONG_FAMILY, "family"),
        ({"family": True}, ErrorCode.WRONG_FAMILY, "family"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_bad_arguments_are_refused_before_a_socket_exists(
    socket_calls: list[tuple[Any, ...]], kwargs: dict[str, Any], code: ErrorCode,
    fragment: str,
) -> None:
    fds = _open_fds()
    with pytest.raises(McastValueError) as info:
        MulticastSocket(**kwargs)
    assert info.value.code is code
    assert fragment in str(info.value)
    assert socket_calls == []
    assert _open_fds() == fds


@pytest.mark.parametrize("family", [4, 6])
def test_unknown_interface_is_refused_before_a_socket_exists(
    socket_calls: list[tuple[Any, ...]], family: int
) -> None:
    fds = _open_fds()
    with pytest.raises(InterfaceNotFoundError) as info:
        MulticastSocket(family, interface=NO_SUCH_IF)
    exc = info.value
    assert isinstance(exc, ValueError) and isinstance(exc, OSError)
    assert exc.code is ErrorCode.INTERFACE_NOT_FOUND
    assert NO_SUCH_IF in str(exc) and "interfaces here:" in str(exc) and "lo" in str(exc)
    assert socket_calls == []
    assert _open_fds() == fds


@pytest.mark.parametrize(
    ("interface", "exc"),
    [("bad name with spaces", McastValueError), ("x" * 16, McastValueError),
     (-3, McastValueError), (99999, InterfaceNotFoundError),
     (lab_host(255, 254), InterfaceNotFoundError)],
)
def test_other_bad_interfaces(interface: str | int, exc: type[Exception]) -> None:
    fds = _open_fds()
    with pytest.raises(exc):
        MulticastSocket(4, interface=interface)
    assert _open_fds() == fds


@pytest.mark.parametrize(("family", "version"), [(4, 4), ("ipv4", 4), (socket.AF_INET, 4),
                                                 (6, 6), ("6", 6), (socket.AF_INET6, 6)])
def test_family_spellings(family: int | str, version: int) -> None:
    try:
        s = MulticastSocket(family)
    except OSError as exc:  # IPv6 disabled on this host
        pytest.skip(f"cannot create this socket here: {exc}")
    with s:
        assert s.version == version
        assert s.ttl == 1  # the safe default: stays on the link


@pytest.fixture
def sock() -> Iterator[MulticastSocket]:
    with MulticastSocket(4, interface="lo", ttl=3, dscp=10) as s:
        yield s


def test_valid_socket_reads_back_its_settings(sock: MulticastSocket) -> None:
    assert (sock.ttl, sock.dscp, sock.loopback) == (3, 10, True)
    assert sock.interface is not None and sock.interface.name == "lo"
    assert sock.memberships == ()


@pytest.mark.parametrize("bad", [256, -1, True, 2.5])
def test_refused_set_ttl_leaves_ttl(sock: MulticastSocket, bad: Any) -> None:
    with pytest.raises(McastValueError, match="ttl"):
        sock.set_ttl(bad)
    assert sock.ttl == 3


@pytest.mark.parametrize("bad", [64, -1, False])
def test_refused_set_dscp_leaves_dscp(sock: MulticastSocket, bad: Any) -> None:
    with pytest.raises(McastValueError, match="dscp"):
        sock.set_dscp(bad)
    assert sock.dscp == 10


def test_refused_set_interface_leaves_interface(sock: MulticastSocket) -> None:
    with pytest.raises(InterfaceNotFoundError):
        sock.set_interface(NO_SUCH_IF)
    assert sock.interface is not None and sock.interface.name == "lo"


@pytest.mark.parametrize(
    "kwargs",
    [{"rcvbuf_bytes": 0}, {"sndbuf_bytes": 0}, {"rcvbuf_bytes": 1 << 31},
     {"rcvbuf_bytes": 65536, "sndbuf_bytes": 0}, {"rcvbuf_bytes": 0, "sndbuf_bytes": 65536}],
)
def test_refused_buffer_sizes_change_nothing(sock: MulticastSocket, kwargs: dict[str, int]
                                             ) -> None:
    before = (sock.rcvbuf_bytes, sock.sndbuf_bytes)
    with pytest.raises(McastValueError, match="buf_bytes"):
        sock.set_buffer_sizes(**kwargs)
    assert (sock.rcvbuf_bytes, sock.sndbuf_bytes) == before


@pytest.mark.parametrize(
    ("call", "code", "fragment"),
    [
        (lambda s: s.join(SRC4), ErrorCode.NOT_MULTICAST, "not a multicast"),
        (lambda s: s.join(G6), ErrorCode.WRONG_FAMILY, "MulticastSocket(6)"),
        (lambda s: s.join("not-an-ip"), ErrorCode.BAD_ADDRESS, "not a numeric"),
        (lambda s: s.join_source("239.1.1.1", SSM4), ErrorCode.BAD_ADDRESS,
         "unicast sender"),
        (lambda s: s.join_source("0.0.0.0", SSM4), ErrorCode.BAD_ADDRESS,
         "unicast sender"),
        (lambda s: s.join_source("2001:db8::1", SSM4), ErrorCode.WRONG_FAMILY,
         "IPv6"),
        (lambda s: s.block_source("239.1.1.1", G4), ErrorCode.BAD_ADDRESS,
         "unicast sender"),
        (lambda s: s.bind(70000), ErrorCode.BAD_VALUE, "port"),
        (lambda s: s.bind(-1), ErrorCode.BAD_VALUE, "port"),
        (lambda s: s.bind(0, G6), ErrorCode.WRONG_FAMILY, "bind address"),
        (lambda s: s.connect(G4, 0), ErrorCode.BAD_VALUE, "port"),
        (lambda s: s.connect(G6, 5000), ErrorCode.WRONG_FAMILY, "peer address"),
        (lambda s: s.settimeout(-1), ErrorCode.BAD_VALUE, "timeout_s"),
        (lambda s: s.recv_many(0), ErrorCode.BAD_VALUE, "max_count"),
    ],
)
def test_refused_calls_change_nothing(
    sock: MulticastSocket, call: Any, code: ErrorCode, fragment: str
) -> None:
    local = sock.local_address
    with pytest.raises(McastValueError) as info:
        call(sock)
    assert info.value.code is code
    assert fragment in str(info.value)
    assert sock.memberships == ()
    assert sock.local_address == local


def test_leave_not_joined_is_refused_without_a_syscall(sock: MulticastSocket) -> None:
    from mcastkit import NotJoinedError

    with pytest.raises(NotJoinedError) as info:
        sock.leave(G4)
    assert info.value.errno == 0 and "not joined" in str(info.value)
    with pytest.raises(NotJoinedError):
        sock.leave_source(SRC4, SSM4)
    with pytest.raises(NotJoinedError):
        sock.block_source(SRC4, G4)


def test_closed_socket_refuses_everything() -> None:
    s = MulticastSocket(4)
    fd_count = _open_fds()
    s.close()
    assert _open_fds() == fd_count - 1
    s.close()  # idempotent
    assert s.closed
    for call in (lambda: s.join(G4), lambda: s.set_ttl(1), lambda: s.bind(0),
                 lambda: s.fileno(), lambda: s.recv(0), lambda: s.sock,
                 lambda: s.set_interface("lo"), lambda: s.ttl):
        with pytest.raises(ClosedError) as info:
            call()
        assert info.value.code is ErrorCode.CLOSED
        assert isinstance(info.value, RuntimeError)


def test_context_manager_closes_and_leaks_nothing() -> None:
    fds = _open_fds()
    with MulticastSocket(4, interface="lo", metadata=True, reuse_port=True) as s:
        assert not s.closed
    assert s.closed
    assert _open_fds() == fds


@pytest.mark.parametrize(
    ("endpoints", "fragment"),
    [((), "at least one"),
     ((f"{G4}:5000", f"{asm4(0, 2)}:5001"), "same port"),
     ((f"{G4}:5000", f"[{G6}]:5000"), "same port and IP version"),
     ((f"{SRC4}:5000",), "not a multicast"),
     ((G4,), "missing ':PORT'")],
)
def test_open_receiver_validates_before_opening(
    socket_calls: list[tuple[Any, ...]], endpoints: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(McastValueError, match=fragment):
        open_receiver(*endpoints, interface="lo")
    assert socket_calls == []


def test_open_receiver_bad_option_opens_nothing(socket_calls: list[tuple[Any, ...]]) -> None:
    with pytest.raises(McastValueError, match="ttl"):
        open_receiver(f"{G4}:5000", interface="lo", ttl=300)
    assert socket_calls == []


def test_open_sender_validates_before_opening(socket_calls: list[tuple[Any, ...]]) -> None:
    with pytest.raises(McastValueError, match="brackets"):
        open_sender(asm6("1:5000"), interface="lo")
    with pytest.raises(InterfaceNotFoundError):
        open_sender("[ff02::1%" + NO_SUCH_IF + "]:5000")
    assert socket_calls == []


@pytest.mark.parametrize(
    ("version", "address", "port", "fragment"),
    [(4, "not-an-ip", 5000, "not a numeric"),
     (4, G4, 70000, "0-65535"),
     (4, G4, -1, "0-65535"),
     (4, G4, True, "0-65535"),
     (4, G6, 5000, "IPv6 but this socket is IPv4"),
     (6, G4, 5000, "IPv4 but this socket is IPv6"),
     (6, "example.com", 5000, "not a numeric")],
)
def test_sendto_refuses_bad_destinations_before_sending(
    version: int, address: str, port: Any, fragment: str
) -> None:
    with MulticastSocket(version) as s:
        with pytest.raises(McastValueError, match=fragment):
            s.sendto(b"x", address, port)
        assert s.stats.send_errors == 0


def test_open_sender_refuses_a_source_prefix(socket_calls: list[tuple[Any, ...]]) -> None:
    with pytest.raises(McastValueError, match="SOURCE"):
        open_sender(f"{SRC4},{SSM4}:5000", interface="lo")
    assert socket_calls == []


@pytest.mark.parametrize("opener", ["receiver", "sender"])
def test_open_helpers_refuse_unknown_options_naming_the_valid_ones(
    socket_calls: list[tuple[Any, ...]], opener: str
) -> None:
    with pytest.raises(McastValueError, match=r"unknown option\(s\) ttll; valid options: .*ttl"):
        if opener == "receiver":
            open_receiver(f"{G4}:5000", interface="lo", ttll=3)
        else:
            open_sender(f"{G4}:5000", interface="lo", ttll=3)
    assert socket_calls == []
