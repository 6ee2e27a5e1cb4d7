"""The error hierarchy: every exception mcastkit raises, and the vocabulary they carry.

Owns: :class:`ErrorCode` (stable codes), :class:`ErrOp` (the operations errors are keyed
by; ``error.op`` is its value), every exception class and warning, with what each carries
(``.code``, ``.op``, ``.group``, ``.source``, ``.interface``, ``.errno``). Which class and
message a kernel refusal becomes is decided in :mod:`~mcastkit._translate`.
Must not: import anything from mcastkit, make syscalls, or build messages for errnos.
"""

from __future__ import annotations

import enum
import errno as _errno
import os

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
