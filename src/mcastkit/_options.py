"""The send options part of :class:`~mcastkit.MulticastSocket`.

Owns: the default (outgoing) interface and how it was named (re-resolved after the
interface is re-created, field notes B3), TTL / hop limit, loopback, DSCP, don't-fragment
and buffer sizes, each read back from the kernel; and the G3 scope warnings (a TTL that
contradicts the scope of a joined or connected group), with the set of warnings given.
Must not: join, send or receive; change the membership book (it only reads its groups).
"""

from __future__ import annotations

import ipaddress
import socket
import warnings

from ._addr import Group, Scope, is_multicast_text, scope_ttl_warning
from ._errors import ErrOp, McastScopeWarning, translate
from ._handle import Handle
from ._interfaces import Interface, resolve_interface
from ._membership import MembershipBook
from ._platform import Op
from ._platform import lookup as _lookup
from ._platform._structs import pack_ip_mreqn
from ._sockbase import InterfaceArg, _check_range

__all__ = ["SendOptions"]


class SendOptions:
    """Options that shape what the socket sends, read back from the kernel.

    Args:
        h: the socket's handle.
        book: the memberships, read for the groups the G3 warnings compare against.
    """

    def __init__(self, h: Handle, book: MembershipBook) -> None:
        self._h = h
        self._book = book
        self.iface: Interface | None = None  # None: the route's choice
        self.iface_spec: str | int | None = None  # how it was named (B3 re-resolve)
        self._scope_warned: frozenset[tuple[str, str]] = frozenset()

    @property
    def iface_name(self) -> str | None:
        """The default interface's name for error messages, or None."""
        return self.iface.name if self.iface is not None else None

    def set_interface(self, interface: InterfaceArg) -> Interface:
        """Set the default interface: outgoing multicast goes out of it, joins use it.

        Returns:
            The interface as resolved (name, index, addresses).

        Raises:
            InterfaceNotFoundError: no such interface.
        """
        h = self._h
        h.check_open()
        iface = resolve_interface(interface)
        if h.family == socket.AF_INET:
            value: int | bytes = pack_ip_mreqn(ipaddress.IPv4Address(0), iface.index)
        else:
            value = iface.index
        h.setopt(Op.MULTICAST_IF, value, ErrOp.SET_INTERFACE, interface=iface.name)
        self.iface = iface
        self.iface_spec = interface if isinstance(interface, str | int) else None
        return iface

    def set_ttl(self, ttl: int) -> None:
        """Multicast TTL (IPv4) or hop limit (IPv6), 0-255. 0 keeps datagrams on this host,
        1 on the local link. (-1, which Linux takes as "default", is refused: C4.)

        Warns:
            McastScopeWarning: ``ttl`` > 1 while the socket is joined or connected to a
                link- or interface-scope group (never routed; G3), once per group.
        """
        self._h.check_open()
        _check_range("ttl", ttl, 0, 255)
        self._h.setopt(Op.MULTICAST_TTL, ttl, ErrOp.SET_TTL)
        if ttl > 1:  # G3: TTL against the scopes of our groups
            peer = self._peer_group()
            for g in self._book.groups | ({peer} if peer else set()):
                self.warn_scope(g, ttl)

    def _peer_group(self) -> str | None:
        """The connected peer if it is a multicast group, else None."""
        try:
            peer = str(self._h.sock.getpeername()[0]).split("%", 1)[0]  # ff02::1%3 -> ff02::1
        except OSError:  # not connected (ENOTCONN), or disconnected
            return None
        return peer if is_multicast_text(peer) else None

    def warn_scope(self, group: str | Group, ttl: int | None = None, *,
                   stacklevel: int = 4) -> None:
        """Issue :class:`McastScopeWarning` when ``ttl`` (default: the socket's) contradicts
        ``group``'s scope (``_addr.scope_ttl_warning``), at most once per (group, cause).
        ``stacklevel`` 4 points at the user's call through the façade and one part."""
        g = Group.parse(group)
        msg = scope_ttl_warning(g, self.ttl if ttl is None else ttl)
        if msg is None:
            return
        key = (str(g), "reserved" if g.scope is Scope.RESERVED else "ttl")
        if key in self._scope_warned:
            return
        self._scope_warned = self._scope_warned | {key}
        warnings.warn(msg, McastScopeWarning, stacklevel=stacklevel)

    @property
    def ttl(self) -> int:
        """The multicast TTL / hop limit as the kernel reports it."""
        return self._h.getopt(Op.MULTICAST_TTL)

    def set_loopback(self, on: bool) -> None:
        """Deliver our own multicast sends to listeners on this host. On Linux this is a
        *sender* setting that silences every local receiver (field notes C5)."""
        self._h.check_open()
        self._h.setopt(Op.MULTICAST_LOOP, 1 if on else 0, ErrOp.SET_LOOPBACK)

    @property
    def loopback(self) -> bool:
        """Whether our own sends are looped back to local listeners."""
        return bool(self._h.getopt(Op.MULTICAST_LOOP))

    def set_dscp(self, dscp: int) -> None:
        """DSCP 0-63 for outgoing datagrams (IP_TOS / IPV6_TCLASS, ECN bits zero)."""
        self._h.check_open()
        _check_range("dscp", dscp, 0, 63)
        self._h.setopt(Op.TOS, dscp << 2, ErrOp.SET_DSCP)

    @property
    def dscp(self) -> int:
        """The DSCP of outgoing datagrams, read back from the kernel."""
        return self._h.getopt(Op.TOS) >> 2

    def set_dont_fragment(self, on: bool) -> None:
        """Refuse to fragment: datagrams over the path MTU raise DatagramTooLargeError."""
        h = self._h
        h.check_open()
        row = _lookup(h.family, Op.MTU_DISCOVER)
        with translate(ErrOp.SET_DONT_FRAGMENT, family=h.family):
            h.sock.setsockopt(row.level, row.name, row.on if on else row.off)

    @property
    def dont_fragment(self) -> bool:
        """Whether don't-fragment is on, read back from the kernel."""
        h = self._h
        h.check_open()
        row = _lookup(h.family, Op.MTU_DISCOVER)
        return h.sock.getsockopt(row.level, row.name) == row.on

    def set_buffer_sizes(self, *, rcvbuf_bytes: int | None = None,
                         sndbuf_bytes: int | None = None) -> tuple[int, int]:
        """Request buffer sizes; returns (rcvbuf, sndbuf) as the kernel applied them (it
        doubles the request and caps it at ``net.core.rmem_max`` / ``wmem_max``)."""
        self._h.check_open()
        # validate both before applying either, so a refused call changes nothing
        if rcvbuf_bytes is not None:
            _check_range("rcvbuf_bytes", rcvbuf_bytes, 1, 1 << 30)
        if sndbuf_bytes is not None:
            _check_range("sndbuf_bytes", sndbuf_bytes, 1, 1 << 30)
        if rcvbuf_bytes is not None:
            self._h.setopt(Op.RCVBUF, rcvbuf_bytes, ErrOp.SET_BUFFER_SIZES)
        if sndbuf_bytes is not None:
            self._h.setopt(Op.SNDBUF, sndbuf_bytes, ErrOp.SET_BUFFER_SIZES)
        return self.rcvbuf_bytes, self.sndbuf_bytes

    @property
    def rcvbuf_bytes(self) -> int:
        """The receive buffer size the kernel applied (SO_RCVBUF)."""
        return self._h.getopt(Op.RCVBUF)

    @property
    def sndbuf_bytes(self) -> int:
        """The send buffer size the kernel applied (SO_SNDBUF)."""
        return self._h.getopt(Op.SNDBUF)
