"""Vendor-style error numbers for the compat class, and the one place they are made.

Owns: the component error numbers (1xx) with their texts, the errno → WinSock-style number
table (100xx/110xx) with texts, and :func:`from_core`, which turns any mcastkit core error
(or a bare :class:`OSError`) into an :class:`~mcastkit.compat.MCastError`.
Must not: make socket calls, import the CLI, or spell configuration setting names.

Numbers and their sources are listed in docs/compat.md (findings in
docs/compat-research.md §14 and its error table). Numbers marked "mcastkit" below were not
found in any vendor text and were assigned by us.
"""

from __future__ import annotations

import errno as _errno
from typing import Final

from .._errors import McastError, McastOSError, McastValueError, UnsupportedError

__all__ = [
    "ALREADY_ACTIVE",
    "BAD_VALUE",
    "CANNOT_CHANGE_LOCAL_HOST",
    "CANNOT_CHANGE_LOCAL_PORT",
    "CANNOT_CHANGE_MAX_PACKET_SIZE",
    "CANNOT_CHANGE_SHARE_LOCAL_PORT",
    "CANNOT_CHANGE_USE_CONNECTION",
    "CANNOT_CHANGE_USE_IPV6",
    "COMPONENT_TEXTS",
    "HANDLER_FAILED",
    "MUST_BE_ACTIVE",
    "NOT_IMPLEMENTED",
    "READ_ONLY_SETTING",
    "REMOTE_ADDRESS_NOT_SET",
    "REMOTE_PORT_ZERO",
    "SOCKET_TEXTS",
    "UNKNOWN_SETTING",
    "WOULD_BLOCK",
    "MCastError",
    "component_error",
    "from_core",
    "socket_error",
    "winsock_number",
]

# --------------------------------------------------------------------------- component codes
ALREADY_ACTIVE: Final = 104
CANNOT_CHANGE_LOCAL_PORT: Final = 106
CANNOT_CHANGE_LOCAL_HOST: Final = 107
MUST_BE_ACTIVE: Final = 109
CANNOT_CHANGE_MAX_PACKET_SIZE: Final = 112
CANNOT_CHANGE_SHARE_LOCAL_PORT: Final = 113  # mcastkit-assigned (spec)
REMOTE_ADDRESS_NOT_SET: Final = 114  # mcastkit-assigned (spec)
REMOTE_PORT_ZERO: Final = 116
CANNOT_CHANGE_USE_CONNECTION: Final = 117  # vendor table copy: 117 = UseConnection
CANNOT_CHANGE_USE_IPV6: Final = 119  # mcastkit-assigned (research §15)
UNKNOWN_SETTING: Final = 120  # mcastkit-assigned
BAD_VALUE: Final = 121  # mcastkit-assigned
READ_ONLY_SETTING: Final = 122  # mcastkit-assigned
NOT_IMPLEMENTED: Final = 123  # mcastkit-assigned
HANDLER_FAILED: Final = 124  # mcastkit-assigned: an event handler raised
WOULD_BLOCK: Final = 10035

COMPONENT_TEXTS: Final[dict[int, str]] = {
    ALREADY_ACTIVE: "The component is already active.",
    CANNOT_CHANGE_LOCAL_PORT: "Cannot change LocalPort while the component is active.",
    CANNOT_CHANGE_LOCAL_HOST: "Cannot change LocalHost while the component is active.",
    MUST_BE_ACTIVE: "The component must be active for this operation.",
    CANNOT_CHANGE_MAX_PACKET_SIZE: "Cannot change MaxPacketSize while the component is active.",
    CANNOT_CHANGE_SHARE_LOCAL_PORT: "Cannot change ShareLocalPort while the component is active.",
    REMOTE_ADDRESS_NOT_SET: "The remote address is not set.",
    REMOTE_PORT_ZERO: "RemotePort cannot be zero when UseConnection is set.",
    CANNOT_CHANGE_USE_CONNECTION: "Cannot change UseConnection while the component is active.",
    CANNOT_CHANGE_USE_IPV6: "Cannot change UseIPv6 while the component is active.",
    UNKNOWN_SETTING: "Unknown configuration setting.",
    BAD_VALUE: "Invalid value.",
    READ_ONLY_SETTING: "The configuration setting is read-only.",
    NOT_IMPLEMENTED: "Not implemented on this platform.",
    HANDLER_FAILED: "An event handler raised an exception.",
}

# --------------------------------------------------------------------------- socket codes
SOCKET_TEXTS: Final[dict[int, str]] = {
    10004: "Interrupted system call",
    10013: "Access denied",
    10014: "Bad address",
    10022: "Invalid argument",
    10024: "Too many open files",
    10035: "Operation would block",
    10036: "Operation now in progress",
    10037: "Operation already in progress",
    10038: "Socket operation on non-socket",
    10039: "Destination address required",
    10040: "Message too long",
    10041: "Protocol wrong type for socket",
    10042: "Bad protocol option",
    10043: "Protocol not supported",
    10044: "Socket type not supported",
    10045: "Operation not supported on socket",
    10046: "Protocol family not supported",
    10047: "Address family not supported by protocol family",
    10048: "Address already in use",
    10049: "Cannot assign requested address",
    10050: "Network is down",
    10051: "Network is unreachable",
    10052: "Net dropped connection or reset",
    10053: "Software caused connection abort",
    10054: "Connection reset by peer",
    10055: "No buffer space available",
    10056: "Socket is already connected",
    10057: "Socket is not connected",
    10058: "Cannot send after socket shutdown",
    10060: "Connection timed out",
    10061: "Connection refused",
    10064: "Host is down",
    10065: "No route to host",
    11001: "Host not found",
    11002: "Non-authoritative host not found",
    11003: "Non-recoverable error",
    11004: "Valid name, no data record of requested type",
}

_ERRNO_TO_WINSOCK: Final[dict[int, int]] = {
    _errno.EINTR: 10004,
    _errno.EACCES: 10013,
    _errno.EPERM: 10013,
    _errno.EFAULT: 10014,
    _errno.EINVAL: 10022,
    _errno.EMFILE: 10024,
    _errno.ENFILE: 10024,
    _errno.EAGAIN: 10035,  # == EWOULDBLOCK on Linux
    _errno.EINPROGRESS: 10036,
    _errno.EALREADY: 10037,
    _errno.ENOTSOCK: 10038,
    _errno.EDESTADDRREQ: 10039,
    _errno.EMSGSIZE: 10040,
    _errno.EPROTOTYPE: 10041,
    _errno.ENOPROTOOPT: 10042,
    _errno.EPROTONOSUPPORT: 10043,
    _errno.ESOCKTNOSUPPORT: 10044,
    _errno.EOPNOTSUPP: 10045,
    _errno.EPFNOSUPPORT: 10046,
    _errno.EAFNOSUPPORT: 10047,
    _errno.EADDRINUSE: 10048,
    _errno.EADDRNOTAVAIL: 10049,
    _errno.ENETDOWN: 10050,
    _errno.ENODEV: 10050,  # the interface is gone: closest WinSock meaning is "network down"
    _errno.ENETUNREACH: 10051,
    _errno.ENETRESET: 10052,
    _errno.ECONNABORTED: 10053,
    _errno.ECONNRESET: 10054,
    _errno.ENOBUFS: 10055,
    _errno.ENOMEM: 10055,
    _errno.EISCONN: 10056,
    _errno.ENOTCONN: 10057,
    _errno.ESHUTDOWN: 10058,
    _errno.ETIMEDOUT: 10060,
    _errno.ECONNREFUSED: 10061,
    _errno.EHOSTDOWN: 10064,
    _errno.EHOSTUNREACH: 10065,
}

# getaddrinfo() failures arrive as socket.gaierror with a negative EAI_* number.
_EAI_TO_WINSOCK: Final[dict[int, int]] = {
    -2: 11001,  # EAI_NONAME
    -5: 11004,  # EAI_NODATA
    -3: 11002,  # EAI_AGAIN
    -4: 11003,  # EAI_FAIL
}


class MCastError(McastError):
    """The one exception the compat class raises: ``MCastError(code, message)``.

    Args:
        code: the vendor-style error number.
        message: the text; "" takes the standard text of ``code``.
        errno: the original Linux errno of a socket error.

    Attributes:
        code: the vendor-style number (component 1xx, or WinSock-style 100xx/110xx for
            socket errors, whatever the platform).
        message: the text; socket errors read ``"[10040] Message too long: ..."``.
        errno: the original Linux errno for socket errors, else None.
        core_code: the mcastkit :class:`~mcastkit.ErrorCode` of the core error this came
            from, if any.

    ``IPWorksError`` is an alias of this class, for code written for the vendor's class.
    """

    code: int  # type: ignore[assignment]  # vendor numbers, not ErrorCode

    def __init__(self, code: int, message: str = "", *, errno: int | None = None) -> None:
        text = message or COMPONENT_TEXTS.get(code) or SOCKET_TEXTS.get(code, "Error")
        super().__init__(text)
        self.code = int(code)
        self.errno = errno
        self.core_code: int | None = None

    def __reduce__(self) -> tuple[type[MCastError], tuple[int, str]]:
        return (type(self), (self.code, self.message))

    def __repr__(self) -> str:
        return f"MCastError({self.code}, {self.message!r})"


def winsock_number(err: int) -> int | None:
    """The WinSock-style number for a Linux errno (or a negative EAI_* code), or None."""
    if err < 0:
        return _EAI_TO_WINSOCK.get(err, 11003)
    return _ERRNO_TO_WINSOCK.get(err)


def socket_error(err: int, detail: str = "") -> MCastError:
    """An MCastError for errno ``err`` with the text ``"[N] Text: detail"``.

    An errno without a WinSock counterpart becomes 10022 (invalid argument); ``.errno``
    still holds the original number."""
    num = winsock_number(err) or 10022
    text = f"[{num}] {SOCKET_TEXTS.get(num, 'Socket error')}"
    if detail:
        text += f": {detail}"
    return MCastError(num, text, errno=err)


def component_error(code: int, detail: str = "") -> MCastError:
    """An MCastError for a component number, with an optional explanation appended."""
    text = COMPONENT_TEXTS.get(code, "Error")
    if detail:
        text = f"{text} {detail}"
    return MCastError(code, text)


def from_core(exc: BaseException) -> MCastError:
    """Convert a core error (or OSError) into an MCastError, keeping errno and the core text.

    Bad input caught by the core (:class:`McastValueError` without an errno) becomes
    ``BAD_VALUE`` (121); :class:`UnsupportedError` becomes ``NOT_IMPLEMENTED`` (123).
    """
    if isinstance(exc, MCastError):
        return exc
    out: MCastError
    if isinstance(exc, McastOSError) and exc.errno:
        out = socket_error(exc.errno, exc.message)
    elif isinstance(exc, UnsupportedError):
        out = component_error(NOT_IMPLEMENTED, exc.message)
    elif isinstance(exc, McastValueError):
        out = component_error(BAD_VALUE, exc.message)
    elif isinstance(exc, McastError):
        out = MCastError(BAD_VALUE, exc.message)
    elif isinstance(exc, OSError) and exc.errno is not None:
        out = socket_error(exc.errno, exc.strerror or str(exc))
    else:
        out = component_error(BAD_VALUE, str(exc))
    if isinstance(exc, McastError):
        out.core_code = int(exc.code)
    return out
