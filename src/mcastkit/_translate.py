"""The one place where an errno becomes a typed error.

Owns: the (operation, errno) table (which :mod:`~mcastkit._errors` class each refusal
becomes, and its message naming the cause and the knob to turn: sysctls quoted with their
current values, the option or call that fixes it), the codes of errnos without a row,
the out-of-descriptors error (:func:`descriptor_limit_error`), :func:`from_oserror` and
the :func:`translate` context manager every syscall site wraps.
Must not: define error classes or codes (the hierarchy lives in :mod:`~mcastkit._errors`),
import anything else from mcastkit, or make syscalls other than reading a sysctl or a
resource limit to quote its value in a message.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from ._errors import (
    AlreadyJoinedError,
    DatagramTooLargeError,
    ErrOp,
    ErrorCode,
    InterfaceError,
    McastError,
    McastOSError,
    MembershipLimitError,
    NotJoinedError,
    SendError,
    SourceFilterError,
    WouldBlockError,
)

__all__ = ["descriptor_limit_error", "from_oserror", "translate"]


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
