"""The socket's addresses: where it receives (bind) and whom it talks to (connect).

Owns: :class:`Binding`, the part of a :class:`~mcastkit.MulticastSocket` that binds the
kernel socket (the wildcard or a local or group address, with the port the kernel chose
read back), connects it to a group or peer (checks of the address, its IP version and a
limited broadcast's interface, then the G3 scope warning) and disconnects it again
(AF_UNSPEC connect). Errors are translated per operation (``ErrOp.BIND`` /
``CONNECT`` / ``DISCONNECT``).
Must not: hold state of its own (the kernel holds the addresses; the
:class:`~._options.SendOptions` it reads hold the interface and the scope warnings), or
read, write, join or set options.
"""

from __future__ import annotations

import ctypes
import os
import socket

from ._addr import LIMITED_BROADCAST, IPAddress, parse_ip
from ._errors import ErrOp, McastOSError
from ._handle import Handle
from ._options import SendOptions
from ._sockbase import _check_range
from ._translate import translate

__all__ = ["Binding"]


class Binding:
    """Bind, connect and disconnect one socket.

    Args:
        h: the socket's handle.
        opts: its send options (the interface named in errors, the limited-broadcast
            check and the scope warnings).
    """

    __slots__ = ("_h", "_opts")

    def __init__(self, h: Handle, opts: SendOptions) -> None:
        self._h = h
        self._opts = opts

    @property
    def local_address(self) -> tuple[str, int]:
        """(address, port) after bind; port 0 reads back the port the kernel chose."""
        self._h.check_open()
        a = self._h.sock.getsockname()
        return (str(a[0]), int(a[1]))

    def bind(self, port: int = 0, address: str | IPAddress | None = None) -> tuple[str, int]:
        """Bind to ``address`` and ``port``: where datagrams are received.

        Binding to a group address (IPv4) receives only that group.

        Args:
            port: UDP port, 0-65535 (0: the kernel picks one).
            address: local or group address; None or "": the wildcard.

        Returns:
            The bound (address, port), with the port the kernel chose for 0.

        Raises:
            McastOSError: EADDRINUSE (the message names ``reuse_port``;
                ``ADDRESS_IN_USE``), EADDRNOTAVAIL.
            McastValueError: a bad port or address, or the other IP version
                (``BAD_VALUE`` / ``BAD_ADDRESS`` / ``WRONG_FAMILY``).
            ClosedError: the socket is closed (``CLOSED``).
        """
        h = self._h
        h.check_open()
        _check_range("port", port, 0, 65535)
        if address is None or address == "":
            host = "0.0.0.0" if h.family == socket.AF_INET else "::"
        else:
            ip = parse_ip(str(address), what="bind address")
            h.check_family(ip, "bind address")
            host = str(ip)
        with translate(ErrOp.BIND, group=f"{host}:{port}", family=h.family):
            h.sock.bind((host, port))
        return self.local_address

    def connect(self, address: str | IPAddress, port: int) -> None:
        """Send to and receive only from (address, port).

        To a group, no ICMP errors ever arrive (field notes C6): "nobody listens" cannot
        be detected for multicast.

        Args:
            address: the peer: a group (or unicast) address of this socket's IP version.
            port: the peer's UDP port, 1-65535.

        Raises:
            McastValueError: a bad address or port, or the other IP version.
            McastOSError: the kernel refused (e.g. no route; the message names the
                interface).
            ClosedError: the socket is closed (``CLOSED``).

        Warns:
            McastScopeWarning: the TTL contradicts the group's scope (G3).
        """
        h = self._h
        h.check_open()
        _check_range("port", port, 1, 65535)
        ip = parse_ip(str(address), what="peer address")
        h.check_family(ip, "peer address")
        if ip == LIMITED_BROADCAST:
            self._opts.check_limited_broadcast()
        with translate(ErrOp.CONNECT, group=f"{ip}:{port}", family=h.family,
                       interface=self._opts.iface_name):
            h.sock.connect((str(ip), port))
        if ip.is_multicast:  # G3: a TTL above 1 to a link-scope group, reserved scopes
            self._opts.warn_scope(str(ip))  # its default stacklevel skips the façade and us

    def disconnect(self) -> None:
        """Undo :meth:`connect` (AF_UNSPEC connect).

        Raises:
            McastOSError: the kernel refused (``op`` is ``"disconnect"``).
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        libc = ctypes.CDLL(None, use_errno=True)
        sa = bytes(16)  # sa_family = AF_UNSPEC (0)
        if libc.connect(self._h.sock.fileno(), sa, len(sa)) != 0:
            err = ctypes.get_errno()
            raise McastOSError(err, f"disconnect: {os.strerror(err)}",
                               op=ErrOp.DISCONNECT.value)
