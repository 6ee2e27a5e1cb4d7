"""The send options part of :class:`~mcastkit.MulticastSocket`.

Owns: the default (outgoing) interface and how it was named (re-resolved after the
interface is re-created, field notes B3), with the IPv4 source address its sends carry
(the address named, else the interface's primary one: ``ip_mreqn`` carries both), and
broadcast (SO_BROADCAST; the limited broadcast leaves through the default interface by
IP_UNICAST_IF); TTL / hop limit, loopback, DSCP, don't-fragment
and buffer sizes, each read back from the kernel; and the G3 scope warnings (a TTL that
contradicts the scope of a joined or connected group), with the set of warnings given.
Must not: join, send or receive; change the membership book (it only reads its groups).
"""

from __future__ import annotations

import ipaddress
import socket
import warnings

from ._addr import Group, IPAddress, Scope, is_multicast_text, scope_ttl_warning
from ._errors import ErrOp, ErrorCode, McastScopeWarning, McastValueError
from ._handle import Handle
from ._interfaces import Interface, resolve_interface
from ._membership import MembershipBook
from ._platform import Op
from ._platform import lookup as _lookup
from ._platform._structs import pack_ip_mreqn
from ._sockbase import InterfaceArg, _check_range
from ._translate import translate

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
        self.broadcast = False  # SO_BROADCAST is on (set once, at construction)

    @property
    def iface_name(self) -> str | None:
        """The default interface's name for error messages, or None."""
        return self.iface.name if self.iface is not None else None

    def set_interface(self, interface: InterfaceArg) -> Interface:
        """Set the default interface: outgoing multicast goes out of it, joins use it.

        IPv4 sends carry the address named as their source, or the interface's primary
        address when it is named by name or index (also on ``lo``, where the kernel
        would otherwise pick none and send from 0.0.0.0). IPv6 picks the source by the
        index alone (the kernel's source address selection, RFC 6724). With broadcast
        on, the limited broadcast 255.255.255.255 leaves through this interface too.

        Args:
            interface: the interface by name (``"eth1"``), index, local address or
                :class:`~mcastkit.Interface`.

        Returns:
            The interface as resolved (name, index, addresses).

        Raises:
            InterfaceNotFoundError: no such interface (``INTERFACE_NOT_FOUND``).
            ClosedError: the socket is closed (``CLOSED``).
            McastOSError: the kernel refused the option (the message names it).
        """
        self._h.check_open()
        return self.use_interface(resolve_interface(interface),
                                  interface if isinstance(interface, str | int) else None,
                                  interface)

    def use_interface(self, iface: Interface, spec: str | int | None,
                      named: InterfaceArg | None = None) -> Interface:
        """Apply an interface already resolved (the constructor resolves it before it
        opens the socket); ``spec`` is how the user named it (a name is re-resolved when
        the interface is re-created, B3); ``named`` what the user passed (an address
        named there becomes the IPv4 source; default ``spec``)."""
        h = self._h
        if h.family == socket.AF_INET:
            src = _source_of(named if named is not None else spec, iface)
            value: int | bytes = pack_ip_mreqn(ipaddress.IPv4Address(0), iface.index, src)
        else:
            value = iface.index
        h.setopt(Op.MULTICAST_IF, value, ErrOp.SET_INTERFACE, interface=iface.name)
        if self.broadcast:
            self._unicast_if(iface)
        self.iface = iface
        self.iface_spec = spec
        return iface

    def set_broadcast(self) -> None:
        """Turn SO_BROADCAST on (IPv4 only), so sends to 255.255.255.255 and to a local
        subnet's broadcast address are allowed; the limited broadcast then leaves
        through the default interface (IP_UNICAST_IF, which needs no privilege; the
        route's default interface is never used for it).

        Raises:
            McastValueError: an IPv6 socket (IPv6 has no broadcast).
        """
        h = self._h
        h.check_open()
        if h.family != socket.AF_INET:
            raise McastValueError(
                "IPv6 has no broadcast; send to the all-nodes group ff02::1 with an "
                "interface instead, or open MulticastSocket(4, broadcast=True)",
                code=ErrorCode.WRONG_FAMILY)
        h.setopt(Op.BROADCAST, 1, ErrOp.SET_BROADCAST)
        self.broadcast = True
        if self.iface is not None:
            self._unicast_if(self.iface)

    def check_limited_broadcast(self) -> None:
        """Refuse a send to 255.255.255.255 that would not leave as asked: without
        broadcast on (the kernel would refuse it), or with no default interface (the
        route's default interface would carry it).

        Raises:
            McastValueError: naming ``broadcast=True`` or ``interface=``.
        """
        if not self.broadcast:
            raise McastValueError(
                "send to 255.255.255.255: a broadcast needs broadcast=True "
                "(MulticastSocket(4, broadcast=True, interface=...)); the CLI: --broadcast",
                code=ErrorCode.BAD_ADDRESS, group="255.255.255.255")
        if self.iface is None:
            raise McastValueError(
                "send to 255.255.255.255: the limited broadcast goes out of one interface "
                "and this socket has none; pass interface= (a name, index or address) "
                "so it never leaves through the route's default",
                code=ErrorCode.BAD_ADDRESS, group="255.255.255.255")

    def _unicast_if(self, iface: Interface) -> None:
        """Send non-multicast datagrams (broadcasts) out of ``iface`` (IP_UNICAST_IF
        takes the index in network byte order)."""
        self._h.setopt(Op.UNICAST_IF, iface.index.to_bytes(4, "big"), ErrOp.SET_INTERFACE,
                       interface=iface.name)

    def set_ttl(self, ttl: int) -> None:
        """Set the multicast TTL (IPv4) or hop limit (IPv6) of outgoing datagrams.

        0 keeps datagrams on this host, 1 on the local link. (-1, which Linux takes as
        "default", is refused: C4.)

        Args:
            ttl: 0-255.

        Raises:
            McastValueError: ``ttl`` outside 0-255 (``BAD_VALUE``); nothing changes.
            ClosedError: the socket is closed (``CLOSED``).

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
        """Deliver our own multicast sends to listeners on this host (or not).

        On Linux this is a *sender* setting: turned off, it silences every local receiver
        of this socket's sends (field notes C5).

        Args:
            on: True to loop our sends back to local listeners.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.setopt(Op.MULTICAST_LOOP, 1 if on else 0, ErrOp.SET_LOOPBACK)

    @property
    def loopback(self) -> bool:
        """Whether our own sends are looped back to local listeners."""
        return bool(self._h.getopt(Op.MULTICAST_LOOP))

    def set_dscp(self, dscp: int) -> None:
        """Set the DSCP of outgoing datagrams (IP_TOS / IPV6_TCLASS, ECN bits zero).

        Args:
            dscp: Differentiated Services code point, 0-63.

        Raises:
            McastValueError: ``dscp`` outside 0-63 (``BAD_VALUE``); nothing changes.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        _check_range("dscp", dscp, 0, 63)
        self._h.setopt(Op.TOS, dscp << 2, ErrOp.SET_DSCP)

    @property
    def dscp(self) -> int:
        """The DSCP of outgoing datagrams, read back from the kernel."""
        return self._h.getopt(Op.TOS) >> 2

    def set_dont_fragment(self, on: bool) -> None:
        """Refuse (or allow) fragmentation of outgoing datagrams.

        Args:
            on: True: datagrams over the path MTU raise
                :class:`~mcastkit.DatagramTooLargeError` instead of being fragmented.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
            McastOSError: the kernel refused the option.
        """
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
        """Request receive and send buffer sizes; both are checked before either is set.

        Args:
            rcvbuf_bytes: SO_RCVBUF request, 1 B-1 GiB (None: unchanged).
            sndbuf_bytes: SO_SNDBUF request, 1 B-1 GiB (None: unchanged).

        Returns:
            (rcvbuf, sndbuf) as the kernel applied them: it doubles the request and
                caps it at ``net.core.rmem_max`` / ``wmem_max``.

        Raises:
            McastValueError: a size out of range (``BAD_VALUE``); nothing changes.
            ClosedError: the socket is closed (``CLOSED``).
        """
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


def _source_of(spec: InterfaceArg | None, iface: Interface) -> ipaddress.IPv4Address:
    """The IPv4 source for sends out of ``iface``: the address ``spec`` names, else the
    interface's primary address, else 0.0.0.0 (the kernel picks)."""
    named: object = spec
    if isinstance(spec, str):
        try:
            named = ipaddress.ip_address(spec.strip())
        except ValueError:
            named = None
    if isinstance(named, ipaddress.IPv4Address) and named in iface.addresses:
        return named
    first: IPAddress | None = iface.address(4)
    return first if isinstance(first, ipaddress.IPv4Address) else ipaddress.IPv4Address(0)
