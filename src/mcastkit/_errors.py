"""The error hierarchy and the one place where an errno becomes a typed error.

Owns: :class:`ErrorCode`, :class:`ErrOp` (the operations errors are keyed by), every
exception class, the (operation, errno) table and :func:`translate`. Every message
names the cause and the knob to turn.
Must not: import anything from mcastkit, make syscalls other than reading a sysctl or
a resource limit to quote its value in a message.
"""

from __future__ import annotations

import contextlib
import enum
import errno as _errno
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AlreadyJoinedError",
    "ClosedError",
    "DatagramTooLargeError",
    "ErrOp",
    "ErrorCode",
    "InterfaceError",
    "InterfaceNotFoundError",
    "McastError",
    "McastOSError",
    "McastScopeWarning",
    "McastStateError",
    "McastValueError",
    "MembershipLimitError",
    "NotJoinedError",
    "NothingQueuedError",
    "ReceiveTimeoutError",
    "SendError",
    "SourceFilterError",
    "UnsupportedError",
    "WouldBlockError",
    "descriptor_limit_error",
    "translate",
]


@enum.unique
class ErrorCode(enum.IntEnum):
    """Stable numeric codes. Bands: 1xx input, 2xx membership, 3xx interface, 4xx I/O,
    5xx platform, 6xx state, 9xx other OS errors. Never renumbered or reused."""

    BAD_ADDRESS = 101
    NOT_MULTICAST = 102
    WRONG_FAMILY = 103
    BAD_VALUE = 104
    ALREADY_JOINED = 201
    NOT_JOINED = 202
    MEMBERSHIP_LIMIT = 203
    SOURCE_FILTER = 204
    MODE_CONFLICT = 205
    INTERFACE_NOT_FOUND = 301
    INTERFACE_GONE = 302
    NO_ROUTE = 303
    SEND_TRANSIENT = 401
    DATAGRAM_TOO_LARGE = 402
    SEND_FAILED = 403
    RECEIVE_FAILED = 404
    TIMEOUT = 405
    ADDRESS_IN_USE = 406
    PERMISSION = 407
    UNSUPPORTED = 501
    CLOSED = 601
    BAD_STATE = 602
    NOT_OWNER = 603  # membership change from a process that did not open the socket
    OS_ERROR = 901


class ErrOp(str, enum.Enum):
    """The operation a kernel error came from: with the errno, the key of the translation
    table (errnos mean different things per operation). ``error.op`` is its value."""

    OPEN = "open"
    BIND = "bind"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    JOIN = "join"
    LEAVE = "leave"
    JOIN_SOURCE = "join_source"  # a further source of a group already joined
    JOIN_GROUP_SOURCE = "join_group_source"  # its first source: also joins the group
    LEAVE_SOURCE = "leave_source"
    BLOCK_SOURCE = "block_source"
    UNBLOCK_SOURCE = "unblock_source"
    SEND = "send"
    RECV = "recv"
    SET_INTERFACE = "set_interface"
    SET_TTL = "set_ttl"
    SET_LOOPBACK = "set_loopback"
    SET_DSCP = "set_dscp"
    SET_DONT_FRAGMENT = "set_dont_fragment"
    SET_BUFFER_SIZES = "set_buffer_sizes"
    SET_METADATA = "set_metadata"
    RAW_OPEN = "raw_open"  # an AF_PACKET socket of the raw send path (_rawsend)
    SET_BROADCAST = "set_broadcast"


class McastError(Exception):
    """Base of every mcastkit error. Carries a stable :class:`ErrorCode` and context.

    Args:
        message: what went wrong and how to fix it (``str(err)``).
        code: the stable code; None keeps the class's own (``ErrorCode.OS_ERROR`` here).
        op: the operation that failed (an ``ErrOp`` value such as ``"join"``).
        group: the group (or ``address:port``) involved.
        source: the source address involved (source-specific calls).
        interface: the interface name involved.

    Attributes:
        code: the stable :class:`ErrorCode` (compare it rather than the message).
        op: the operation that failed, or None.
        group: the group (or ``address:port``) involved, or None.
        source: the source address involved, or None.
        interface: the interface name involved, or None.
        datagrams_sent: set by :meth:`MulticastSocket.send_batch` on an error raised
            part-way through a batch: how many datagrams of the batch went out before it.
            None elsewhere.
    """

    code: ErrorCode = ErrorCode.OS_ERROR
    #: Set by :meth:`MulticastSocket.send_batch` on an error raised part-way through a
    #: batch: how many datagrams of the batch went out before it. None elsewhere.
    datagrams_sent: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        op: str | None = None,
        group: str | None = None,
        source: str | None = None,
        interface: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.op = op
        self.group = group
        self.source = source
        self.interface = interface

    @property
    def message(self) -> str:
        """The message without the ``[Errno N]`` prefix."""
        return str(self.args[0]) if self.args else ""


class McastValueError(McastError, ValueError):
    """Bad input caught before any syscall (address, family, size, setting)."""

    code = ErrorCode.BAD_VALUE


class UnsupportedError(McastError, NotImplementedError):
    """The platform lacks a capability; the message names the platform."""

    code = ErrorCode.UNSUPPORTED


class McastStateError(McastError, RuntimeError):
    """The object is in the wrong state for the call (closed, not bound...)."""

    code = ErrorCode.BAD_STATE


class ClosedError(McastStateError):
    """The socket was closed."""

    code = ErrorCode.CLOSED


class McastOSError(McastError, OSError):
    """The kernel refused. Keeps ``.errno`` and ``.strerror`` of the original error.

    ``str(err)`` is ``[Errno N] message`` (just the message when ``errno`` is 0).

    Args:
        errno: the OS error number (``errno.EADDRINUSE``...), or 0.
        message: what went wrong and how to fix it.
        code: the stable code; None keeps the class's own.
        op: the operation that failed (an ``ErrOp`` value).
        group: the group (or ``address:port``) involved.
        source: the source address involved.
        interface: the interface name involved.

    Attributes:
        errno: the OS error number (as on every OSError).
        strerror: the OS's text for ``errno`` (the message when ``errno`` is 0).
        code: the stable :class:`ErrorCode`.
        op: the operation that failed, or None.
        group: the group involved, or None.
        source: the source involved, or None.
        interface: the interface involved, or None.
    """

    def __init__(
        self,
        errno: int,
        message: str,
        *,
        code: ErrorCode | None = None,
        op: str | None = None,
        group: str | None = None,
        source: str | None = None,
        interface: str | None = None,
    ) -> None:
        McastError.__init__(
            self, message, code=code, op=op, group=group, source=source, interface=interface
        )
        # OSError's own slots: set after the McastError init so str() stays our message.
        self.errno = errno
        self.strerror = os.strerror(errno) if errno else message

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.message}" if self.errno else self.message


class AlreadyJoinedError(McastOSError):
    """The kernel already holds this membership (EADDRINUSE), e.g. in the other mode."""

    code = ErrorCode.ALREADY_JOINED


class NotJoinedError(McastOSError):
    """Leaving (or dropping a source of) a membership this socket does not hold."""

    code = ErrorCode.NOT_JOINED


class MembershipLimitError(McastOSError):
    """Over the kernel's membership limit; the message names the sysctl and its value."""

    code = ErrorCode.MEMBERSHIP_LIMIT


class SourceFilterError(McastOSError):
    """A source filter change was refused (too many sources, wrong mode, not blocked)."""

    code = ErrorCode.SOURCE_FILTER


class InterfaceError(McastOSError):
    """The interface is gone or unusable (ENODEV), or there is no route to choose one."""

    code = ErrorCode.INTERFACE_GONE


class InterfaceNotFoundError(InterfaceError, McastValueError):
    """No interface by that name, index or address (raised before any syscall)."""

    code = ErrorCode.INTERFACE_NOT_FOUND


class SendError(McastOSError):
    """A send failed. ``transient`` is True for ENOBUFS/EAGAIN: retrying may work."""

    code = ErrorCode.SEND_FAILED

    @property
    def transient(self) -> bool:
        """True for ENOBUFS / EAGAIN: the same send may succeed if retried later."""
        return self.errno in (_errno.ENOBUFS, _errno.EAGAIN)


class DatagramTooLargeError(SendError):
    """EMSGSIZE: over 65507 bytes (IPv4), or over the path MTU with don't-fragment set."""

    code = ErrorCode.DATAGRAM_TOO_LARGE


class WouldBlockError(SendError, BlockingIOError):
    """A non-blocking send found the socket buffer full. Wait for writability, retry."""

    code = ErrorCode.SEND_TRANSIENT


class ReceiveTimeoutError(McastOSError, TimeoutError):
    """No datagram arrived within the timeout."""

    code = ErrorCode.TIMEOUT


class NothingQueuedError(ReceiveTimeoutError, BlockingIOError):
    """A receive that was not to wait (``timeout_s=0``, a non-blocking socket) found nothing
    queued: what ``timeout_s=0`` promises, and what event loops catch (BlockingIOError)."""


class McastScopeWarning(UserWarning):
    """A setting contradicts a group's scope (field notes G3), e.g. a TTL above 1 for a
    link-scope group (224.0.0.0/24, ff02::/16) that routers never forward, or a group with
    a reserved IPv6 scope. Issued with :func:`warnings.warn`, once per socket and cause;
    silence it with ``warnings.simplefilter("ignore", McastScopeWarning)``."""


# --------------------------------------------------------------------------- translation


def _sysctl(path: str) -> str:
    try:
        with open(f"/proc/sys/{path.replace('.', '/')}") as f:
            return f.read().strip()
    except OSError:
        return "?"


@dataclass(frozen=True, slots=True)
class _Ctx:
    op: ErrOp
    group: str | None
    source: str | None
    interface: str | None
    family: int | None
    held: int | None = None  # memberships the socket already holds (joins only)

    def what(self) -> str:
        parts = [self.op.value]
        if self.source:
            parts.append(f"({self.source}, {self.group})")
        elif self.group:
            parts.append(self.group)
        if self.interface:
            parts.append(f"on {self.interface}")
        return " ".join(parts)


_Rule = tuple[type[McastOSError], Callable[[_Ctx], str]]


def _limit_hint(c: _Ctx) -> str:
    if c.family == socket.AF_INET6:  # AF_INET6: the limit is option memory, not a count
        return (
            f"{c.what()}: the kernel ran out of socket option memory "
            f"(net.core.optmem_max={_sysctl('net.core.optmem_max')}); raise that sysctl "
            "or spread the groups over several sockets"
        )
    limit = _sysctl("net.ipv4.igmp_max_memberships")
    if c.held is not None and limit.isdigit() and c.held < int(limit):
        # IPv4 answers ENOBUFS for both limits: below the count, option memory ran out
        return (
            f"{c.what()}: the kernel ran out of socket option memory with {c.held} groups "
            f"joined (net.core.optmem_max={_sysctl('net.core.optmem_max')}); raise that "
            "sysctl or spread the groups over several sockets"
        )
    return (
        f"{c.what()}: exceeds net.ipv4.igmp_max_memberships={limit}; raise the sysctl or "
        "spread the groups over several sockets"
    )


def _no_route(c: _Ctx, op: ErrOp) -> str:
    if c.interface:  # an interface was set, yet the kernel found no route through it
        v6 = " (IPv6 multicast does not work over lo: use a real or veth interface)" \
            if c.family == socket.AF_INET6 and c.interface == "lo" else ""
        return (f"{c.what()}: no multicast route out of {c.interface} for this group{v6}; "
                "check the interface is up and has an address of this IP version")
    hint = ", or -i on the command line" if op is ErrOp.CONNECT else ""
    return (f"{c.what()}: no route to the group; set the outgoing interface "
            f"(interface= / set_interface(){hint})")


def _msf_hint(c: _Ctx) -> str:
    key = "net.ipv6.mld_max_msf" if c.family == socket.AF_INET6 else "net.ipv4.igmp_max_msf"
    return f"{c.what()}: too many sources for one group ({key}={_sysctl(key)}); raise the sysctl"


_TABLE: Final[dict[tuple[ErrOp, int], _Rule]] = {
    (ErrOp.JOIN, _errno.EADDRINUSE): (AlreadyJoinedError, lambda c: f"{c.what()}: already joined"),
    (ErrOp.JOIN, _errno.ENOBUFS): (MembershipLimitError, _limit_hint),
    (ErrOp.JOIN, _errno.ENOMEM): (MembershipLimitError, _limit_hint),
    (ErrOp.JOIN, _errno.ENODEV): (
        InterfaceError,
        lambda c: f"{c.what()}: no such interface (it may have been removed); pass interface=",
    ),
    (ErrOp.JOIN, _errno.EINVAL): (
        McastOSError,
        lambda c: f"{c.what()}: the kernel rejected the request (is the group multicast?)",
    ),
    (ErrOp.LEAVE, _errno.EADDRNOTAVAIL): (NotJoinedError, lambda c: f"{c.what()}: not joined"),
    (ErrOp.LEAVE, _errno.ENODEV): (
        InterfaceError, lambda c: f"{c.what()}: the interface no longer exists"
    ),
    (ErrOp.JOIN_SOURCE, _errno.EADDRNOTAVAIL): (
        SourceFilterError, lambda c: f"{c.what()}: this source is already joined"
    ),
    (ErrOp.JOIN_SOURCE, _errno.EADDRINUSE): (
        AlreadyJoinedError,
        lambda c: f"{c.what()}: the group is already joined in the other filter mode",
    ),
    (ErrOp.JOIN_SOURCE, _errno.ENOBUFS): (SourceFilterError, _msf_hint),
    (ErrOp.JOIN_SOURCE, _errno.ENOMEM): (MembershipLimitError, _limit_hint),
    (ErrOp.JOIN_SOURCE, _errno.ENODEV): (
        InterfaceError, lambda c: f"{c.what()}: no such interface; pass interface="
    ),
    # the first source of a group on a socket also creates the group membership, so an
    # ENOBUFS there is the membership count, not the source count (field notes A5/A6)
    (ErrOp.JOIN_GROUP_SOURCE, _errno.EADDRINUSE): (
        AlreadyJoinedError,
        lambda c: f"{c.what()}: the group is already joined in the other filter mode",
    ),
    (ErrOp.JOIN_GROUP_SOURCE, _errno.EADDRNOTAVAIL): (
        SourceFilterError, lambda c: f"{c.what()}: this source is already joined"
    ),
    (ErrOp.JOIN_GROUP_SOURCE, _errno.ENOBUFS): (MembershipLimitError, _limit_hint),
    (ErrOp.JOIN_GROUP_SOURCE, _errno.ENOMEM): (MembershipLimitError, _limit_hint),
    (ErrOp.JOIN_GROUP_SOURCE, _errno.ENODEV): (
        InterfaceError, lambda c: f"{c.what()}: no such interface; pass interface="
    ),
    (ErrOp.LEAVE_SOURCE, _errno.EINVAL): (
        NotJoinedError, lambda c: f"{c.what()}: this source is not joined"
    ),
    (ErrOp.LEAVE_SOURCE, _errno.EADDRNOTAVAIL): (
        NotJoinedError, lambda c: f"{c.what()}: this source is not joined"
    ),
    (ErrOp.BLOCK_SOURCE, _errno.EADDRNOTAVAIL): (
        SourceFilterError, lambda c: f"{c.what()}: source already blocked or group not joined"
    ),
    (ErrOp.BLOCK_SOURCE, _errno.ENOBUFS): (SourceFilterError, _msf_hint),
    (ErrOp.BLOCK_SOURCE, _errno.EINVAL): (
        SourceFilterError, lambda c: f"{c.what()}: group not joined in any-source mode"
    ),
    (ErrOp.UNBLOCK_SOURCE, _errno.EADDRNOTAVAIL): (
        SourceFilterError, lambda c: f"{c.what()}: source is not blocked"
    ),
    (ErrOp.UNBLOCK_SOURCE, _errno.EINVAL): (
        SourceFilterError, lambda c: f"{c.what()}: source is not blocked"
    ),
    (ErrOp.SEND, _errno.EMSGSIZE): (
        DatagramTooLargeError,
        lambda c: f"{c.what()}: datagram too large (over 65507 bytes for IPv4, or over the "
        "path MTU with don't-fragment set); send smaller datagrams",
    ),
    (ErrOp.SEND, _errno.ENETUNREACH): (SendError, lambda c: _no_route(c, ErrOp.SEND)),
    (ErrOp.SEND, _errno.EADDRNOTAVAIL): (
        SendError,
        lambda c: f"{c.what()}: no usable source address (an IPv6 link-local address may "
        "still be tentative for ~2 s after link up, or the interface has no address)",
    ),
    (ErrOp.SEND, _errno.ENOBUFS): (
        SendError, lambda c: f"{c.what()}: no buffer space (transient); retry later"
    ),
    (ErrOp.SEND, _errno.EAGAIN): (
        SendError, lambda c: f"{c.what()}: send buffer full (transient); retry later"
    ),
    (ErrOp.SEND, _errno.ECONNREFUSED): (
        SendError, lambda c: f"{c.what()}: the peer refused an earlier datagram (ICMP)"
    ),
    (ErrOp.SEND, _errno.EDESTADDRREQ): (
        SendError,
        lambda c: f"{c.what()}: no destination; pass an endpoint (send(data, \"G:P\")) "
        "or connect() first",
    ),
    (ErrOp.SEND, _errno.EACCES): (  # the route is a broadcast one, SO_BROADCAST is off
        SendError,
        lambda c: f"{c.what()}: this is a broadcast address; open the socket with "
        "broadcast=True (SO_BROADCAST) to send broadcasts",
    ),
    (ErrOp.SEND, _errno.EPERM): (
        SendError, lambda c: f"{c.what()}: refused by a firewall rule (EPERM); check nft/iptables"
    ),
    (ErrOp.CONNECT, _errno.ENETUNREACH): (McastOSError, lambda c: _no_route(c, ErrOp.CONNECT)),
    (ErrOp.BIND, _errno.EADDRINUSE): (
        McastOSError,
        lambda c: f"{c.what()}: address already in use; pass reuse_port=True on every socket "
        "that shares the port",
    ),
    (ErrOp.BIND, _errno.EADDRNOTAVAIL): (
        McastOSError, lambda c: f"{c.what()}: that address is not local to this host"
    ),
    (ErrOp.BIND, _errno.EACCES): (
        McastOSError,
        lambda c: f"{c.what()}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)",
    ),
    (ErrOp.RECV, _errno.ESHUTDOWN): (McastOSError, lambda c: (
        f"{c.what()}: the socket was shut down, by close() in another process sharing it "
        "(a forked child?); open a new MulticastSocket")),
    (ErrOp.RECV, _errno.ECONNREFUSED): (
        McastOSError,
        lambda c: f"{c.what()}: the connected peer refused a datagram (ICMP port unreachable)",
    ),
}

_CODES_BY_ERRNO: Final[dict[int, ErrorCode]] = {
    _errno.EADDRINUSE: ErrorCode.ADDRESS_IN_USE,
    _errno.EACCES: ErrorCode.PERMISSION,
    _errno.EPERM: ErrorCode.PERMISSION,
    _errno.ETIMEDOUT: ErrorCode.TIMEOUT,
}


def descriptor_limit_error(exc: OSError, what: str, op: str = "open") -> McastOSError:
    """The typed error for EMFILE/ENFILE while trying to ``what``: names the limit and
    how to raise it (``ulimit -n`` / ``RLIMIT_NOFILE``, or ``fs.file-max``). The one
    message for running out of descriptors (socket core, interface lookups, aio)."""
    err = exc.errno or _errno.EMFILE
    if err == _errno.ENFILE:
        hint = ("the system-wide limit of open files is reached (ENFILE); close files or "
                "raise the sysctl fs.file-max")
    else:
        try:
            import resource

            soft = f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]} "
        except (ImportError, OSError, ValueError):  # not POSIX
            soft = ""
        hint = (f"this process has reached its limit of {soft}open files (RLIMIT_NOFILE); "
                "raise it (`ulimit -n`, or resource.setrlimit(resource.RLIMIT_NOFILE, ...)) "
                "or close sockets it no longer uses")
    return McastOSError(err, f"cannot {what}: {hint}", op=op)


def from_oserror(
    exc: OSError,
    op: ErrOp,
    *,
    group: str | None = None,
    source: str | None = None,
    interface: str | None = None,
    family: int | None = None,
    held: int | None = None,
) -> McastOSError:
    """Return the typed error for ``exc`` raised by operation ``op`` (``held``: the
    memberships the socket holds, which tells the IPv4 join limits apart)."""
    err = exc.errno or 0
    if err in (_errno.EMFILE, _errno.ENFILE):
        return descriptor_limit_error(exc, "open a multicast socket" if op is ErrOp.OPEN
                                      else f"{op.value}: out of file descriptors", op.value)
    ctx = _Ctx(op, group, source, interface, family, held)
    rule = _TABLE.get((op, err))
    if rule is not None:
        cls, make = rule
        code = _CODES_BY_ERRNO.get(err) if cls is McastOSError else None
        return cls(err, make(ctx), code=code, op=op, group=group, source=source,
                   interface=interface)
    cls2: type[McastOSError] = SendError if op == "send" else McastOSError
    code2 = _CODES_BY_ERRNO.get(err, ErrorCode.OS_ERROR) if cls2 is McastOSError else None
    reason = os.strerror(err) if err else str(exc)
    return cls2(err, f"{ctx.what()}: {reason}", code=code2, op=op.value, group=group,
                source=source, interface=interface)


@contextlib.contextmanager
def translate(
    op: ErrOp,
    *,
    group: str | None = None,
    source: str | None = None,
    interface: str | None = None,
    family: int | None = None,
    held: int | None = None,
) -> Iterator[None]:
    """Turn an :class:`OSError` raised inside the block into a typed :class:`McastOSError`.

    Keyed by (operation, errno) because the kernel reuses errnos across operations.
    Errors that are already ours, and timeouts, pass through unchanged.
    """
    try:
        yield
    except McastError:
        raise
    except BlockingIOError as exc:
        if op is not ErrOp.SEND:
            raise
        raise WouldBlockError(
            exc.errno or _errno.EAGAIN,
            f"{_Ctx(op, group, source, interface, family).what()}: send buffer full; "
            "wait until the socket is writable and retry",
            op=op.value, group=group, source=source, interface=interface,
        ) from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise from_oserror(
            exc, op, group=group, source=source, interface=interface, family=family,
            held=held
        ) from exc
