"""The handle: the one small object every part of a MulticastSocket shares.

Owns: the kernel socket, its family, the closed flag and the default wait (``timeout``:
None blocks, 0 never waits, else seconds), plus option access with error translation
(:meth:`Handle.setopt` / :meth:`Handle.getopt`) and the checks every part makes (open,
family of an address). The kernel socket itself always stays in blocking mode: reads use
``MSG_DONTWAIT`` and wait through ``mcastkit._io.wait_ready`` with one deadline per call,
so no part ever flips a mode another thread relies on (issue 14.6).
Also owns who may change the socket: the process that opened it (``owner``), and
whether its descriptor may be held elsewhere (``may_be_shared``: handed out through
``fileno()`` / ``sock``, or a fork since it was opened), which decides what ``close()``
may do to the one kernel socket every holder shares (issue 14.2).
Must not: hold the state of a part (options, memberships, receive or send state), or
read or write datagrams. Model: Go's x/net/ipv4 ``genericOpt``: every part holds only it.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Final

from . import _platform as plat
from ._addr import IPAddress
from ._errors import ClosedError, ErrOp, ErrorCode, McastStateError, McastValueError
from ._platform import Op
from ._sockbase import _check_timeout
from ._translate import translate

__all__ = ["Handle"]

_DONTWAIT: Final = int(socket.MSG_DONTWAIT)
_ERRQUEUE: Final = int(getattr(socket, "MSG_ERRQUEUE", 0x2000))
#: errors an ICMP message for an earlier unicast datagram leaves on the socket (sk_err,
#: IP_RECVERR): the send and receive paths drain them with :meth:`Handle.drain_errors`
ICMP_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})
_forks = [0]  # forks of this process so far (parent side); a handle compares its own


def _count_fork() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_parent=_count_fork)


class Handle:
    """The socket, its family, its closed flag and its default wait."""

    __slots__ = ("_forks_at_open", "closed", "family", "handed_out", "owner", "send_flags",
                 "sock", "timeout")

    def __init__(self, sock: socket.socket, family: socket.AddressFamily) -> None:
        self.sock = sock
        self.family = family
        self.closed = False
        self.timeout: float | None = None  # the default wait of a receive
        self.send_flags = 0  # MSG_DONTWAIT while non-blocking (timeout 0)
        self.owner = os.getpid()  # the process that may change memberships (14.2)
        self.handed_out = False  # fileno() / sock given out: it may be dup'ed or passed
        self._forks_at_open = _forks[0]

    def is_owner(self) -> bool:
        """True in the process that opened the socket (False in a forked child)."""
        return os.getpid() == self.owner

    def may_be_shared(self) -> bool:
        """True when another descriptor of this socket may exist: a forked child (or
        this is the child), or the descriptor was handed out (``fileno()`` / ``sock``)
        and may have been dup'ed or passed over SCM_RIGHTS."""
        return self.handed_out or _forks[0] != self._forks_at_open or not self.is_owner()

    def check_owner(self, what: str) -> None:
        """Raise a typed error when a process that did not open the socket (a forked
        child) tries to change its memberships: they belong to the one kernel socket
        every holder shares, so the change would act on the parent's socket too."""
        if not self.is_owner():
            raise McastStateError(
                f"{what}: this socket was opened by process {self.owner}, not this one "
                f"({os.getpid()}, a forked child?); memberships are shared by every holder "
                "of the socket, so only the process that opened it changes them; open a new "
                "MulticastSocket in this process", code=ErrorCode.NOT_OWNER)

    @property
    def version(self) -> int:
        """4 or 6."""
        return 4 if self.family == socket.AF_INET else 6

    def settimeout(self, timeout_s: float | None) -> None:
        """Set the default wait (None: forever, 0: non-blocking, also for sends).

        Raises:
            McastValueError: not a number >= 0 or None.
        """
        self.check_open()
        if timeout_s is not None:
            _check_timeout(timeout_s)
        self.timeout = timeout_s
        self.send_flags = _DONTWAIT if timeout_s == 0 else 0

    def check_open(self) -> None:
        """Raise :class:`ClosedError` after close."""
        if self.closed:
            raise self.closed_error()

    @staticmethod
    def closed_error(cause: str = "") -> ClosedError:
        """The error of a call on (or interrupted by closing) this socket."""
        return ClosedError(f"the socket was closed{cause}; open a new MulticastSocket")

    def check_family(self, ip: IPAddress, what: str) -> None:
        """Refuse an address of the other IP version, naming the socket to open instead."""
        if ip.version != self.version:
            raise McastValueError(
                f"{what} {ip} is IPv{ip.version} but this socket is IPv{self.version}; open "
                f"MulticastSocket({ip.version}) for it",
                code=ErrorCode.WRONG_FAMILY,
            )

    def setopt(self, op: Op, value: int | bytes, err: ErrOp, *, group: str | None = None,
               source: str | None = None, interface: str | None = None,
               held: int | None = None) -> None:
        """Set ``op`` through the platform table; a refusal becomes the typed error of
        operation ``err`` (with the group / source / interface named in its message;
        ``held``: memberships already held, for a join's limit message)."""
        with translate(err, group=group, source=source, interface=interface,
                       family=self.family, held=held):
            plat.setopt(self.sock, op, value)

    def getopt(self, op: Op) -> int:
        """Read ``op`` back through the platform table."""
        self.check_open()
        return plat.getopt(self.sock, op)

    def drain_errors(self) -> int:
        """Take every queued ICMP error off the socket's error queue (IP_RECVERR is on):
        a queued error makes the socket "readable" with nothing to read and fails the next
        send or receive once. Returns how many were taken."""
        n = 0
        while True:
            try:
                self.sock.recvmsg(1, 512, _ERRQUEUE | _DONTWAIT)
            except OSError:  # EAGAIN: empty (or closed)
                return n
            n += 1

    def connected(self) -> bool:
        """True after connect() (asked of the kernel; only on error paths)."""
        try:
            self.sock.getpeername()
        except OSError:
            return False
        return True

    def local_or_none(self) -> tuple[str, int] | None:
        """The bound (address, port), or None (not bound, or closed)."""
        try:
            a = self.sock.getsockname()
        except OSError:
            return None
        return (str(a[0]), int(a[1]))
