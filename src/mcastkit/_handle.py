"""The handle: the one small object every part of a MulticastSocket shares.

Owns: the kernel socket, its family, the closed flag and the default wait (``timeout``:
None blocks, 0 never waits, else seconds), plus option access with error translation
(:meth:`Handle.setopt` / :meth:`Handle.getopt`) and the checks every part makes (open,
family of an address). The kernel socket itself always stays in blocking mode: reads use
``MSG_DONTWAIT`` and wait through ``mcastkit._io.wait_ready`` with one deadline per call,
so no part ever flips a mode another thread relies on (issue 14.6).
Must not: hold the state of a part (options, memberships, receive or send state), or
read or write datagrams. Model: Go's x/net/ipv4 ``genericOpt``: every part holds only it.
"""

from __future__ import annotations

import socket
from typing import Final

from . import _platform as plat
from ._addr import IPAddress
from ._errors import ClosedError, ErrOp, ErrorCode, McastValueError, translate
from ._platform import Op
from ._sockbase import _check_timeout

__all__ = ["Handle"]

_DONTWAIT: Final = int(socket.MSG_DONTWAIT)


class Handle:
    """The socket, its family, its closed flag and its default wait."""

    __slots__ = ("closed", "family", "send_flags", "sock", "timeout")

    def __init__(self, sock: socket.socket, family: socket.AddressFamily) -> None:
        self.sock = sock
        self.family = family
        self.closed = False
        self.timeout: float | None = None  # the default wait of a receive
        self.send_flags = 0  # MSG_DONTWAIT while non-blocking (timeout 0)

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

    def local_or_none(self) -> tuple[str, int] | None:
        """The bound (address, port), or None (not bound, or closed)."""
        try:
            a = self.sock.getsockname()
        except OSError:
            return None
        return (str(a[0]), int(a[1]))
