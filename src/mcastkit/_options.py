"""Socket options of :class:`~mcastkit.MulticastSocket` that shape what it sends.

Owns: the default (outgoing) interface, TTL / hop limit, loopback, DSCP, don't-fragment
and buffer sizes, each read back from the kernel; and the G3 scope warnings (a TTL that
contradicts the scope of a joined or connected group).
Must not: join, send or receive.
"""

from __future__ import annotations

import ipaddress
import socket

from . import _platform as plat
from ._addr import Group
from ._errors import translate
from ._interfaces import Interface, resolve_interface
from ._platform import Op
from ._platform._structs import pack_ip_mreqn
from ._sockbase import InterfaceArg, _check_range, _is_multicast_text, _SocketBase


class _OptionsMixin(_SocketBase):
    """Sender options and the G3 scope warnings (part of MulticastSocket)."""

    def set_interface(self, interface: InterfaceArg) -> Interface:
        """Set the default interface: outgoing multicast goes out of it, joins use it."""
        self._check_open()
        iface = resolve_interface(interface)
        with translate("set_interface", interface=iface.name, family=self._family):
            if self._family == socket.AF_INET:
                plat.setopt(self._sock, Op.MULTICAST_IF,
                            pack_ip_mreqn(ipaddress.IPv4Address(0), iface.index))
            else:
                plat.setopt(self._sock, Op.MULTICAST_IF, iface.index)
        self._iface = iface
        self._iface_spec = interface if isinstance(interface, str | int) else None
        return iface

    def set_ttl(self, ttl: int) -> None:
        """Multicast TTL (IPv4) or hop limit (IPv6), 0-255. 0 keeps datagrams on this host,
        1 on the local link. (-1, which Linux takes as "default", is refused: C4.)

        Warns:
            McastScopeWarning: ``ttl`` > 1 while the socket is joined or connected to a
                link- or interface-scope group (never routed; G3), once per group.
        """
        self._check_open()
        _check_range("ttl", ttl, 0, 255)
        with translate("set_ttl", family=self._family):
            plat.setopt(self._sock, Op.MULTICAST_TTL, ttl)
        if ttl > 1 and not self._closed:  # G3: TTL against the scopes of our groups
            peer = self._peer_group()
            for g in {m.group for m in self._book} | ({peer} if peer else set()):
                self._warn_scope(g, ttl)

    # G3 scope warnings (additive): once per socket and cause
    _scope_warned: frozenset[tuple[str, str]] = frozenset()

    def _peer_group(self) -> str | None:
        """The connected peer if it is a multicast group, else None."""
        try:
            peer = str(self._sock.getpeername()[0]).split("%", 1)[0]  # ff02::1%3 -> ff02::1
        except OSError:  # not connected (ENOTCONN), or disconnected
            return None
        return peer if _is_multicast_text(peer) else None

    def _warn_scope(self, group: str | Group, ttl: int) -> None:
        """Issue :class:`McastScopeWarning` when ``ttl`` contradicts ``group``'s scope
        (``_addr.scope_ttl_warning``), at most once per (group, cause) on this socket."""
        import warnings

        from ._addr import Scope, scope_ttl_warning
        from ._errors import McastScopeWarning

        g = Group.parse(group)
        msg = scope_ttl_warning(g, ttl)
        if msg is None:
            return
        key = (str(g), "reserved" if g.scope is Scope.RESERVED else "ttl")
        if key in self._scope_warned:
            return
        self._scope_warned = self._scope_warned | {key}
        warnings.warn(msg, McastScopeWarning, stacklevel=3)

    @property
    def ttl(self) -> int:
        """The multicast TTL / hop limit as the kernel reports it."""
        self._check_open()
        return plat.getopt(self._sock, Op.MULTICAST_TTL)

    def set_loopback(self, on: bool) -> None:
        """Deliver our own multicast sends to listeners on this host. On Linux this is a
        *sender* setting that silences every local receiver (field notes C5)."""
        self._check_open()
        with translate("set_loopback", family=self._family):
            plat.setopt(self._sock, Op.MULTICAST_LOOP, 1 if on else 0)

    @property
    def loopback(self) -> bool:
        """Whether our own sends are looped back to local listeners."""
        self._check_open()
        return bool(plat.getopt(self._sock, Op.MULTICAST_LOOP))

    def set_dscp(self, dscp: int) -> None:
        """DSCP 0-63 for outgoing datagrams (IP_TOS / IPV6_TCLASS, ECN bits zero)."""
        self._check_open()
        _check_range("dscp", dscp, 0, 63)
        with translate("set_dscp", family=self._family):
            plat.setopt(self._sock, Op.TOS, dscp << 2)

    @property
    def dscp(self) -> int:
        """The DSCP of outgoing datagrams, read back from the kernel."""
        self._check_open()
        return plat.getopt(self._sock, Op.TOS) >> 2

    def set_dont_fragment(self, on: bool) -> None:
        """Refuse to fragment: datagrams over the path MTU raise DatagramTooLargeError."""
        self._check_open()
        row = plat.lookup(self._family, Op.MTU_DISCOVER)
        with translate("set_dont_fragment", family=self._family):
            self._sock.setsockopt(row.level, row.name, row.on if on else row.off)

    @property
    def dont_fragment(self) -> bool:
        """Whether don't-fragment is on, read back from the kernel."""
        self._check_open()
        row = plat.lookup(self._family, Op.MTU_DISCOVER)
        return self._sock.getsockopt(row.level, row.name) == row.on

    def set_buffer_sizes(self, *, rcvbuf_bytes: int | None = None,
                         sndbuf_bytes: int | None = None) -> tuple[int, int]:
        """Request buffer sizes; returns (rcvbuf, sndbuf) as the kernel applied them (it
        doubles the request and caps it at ``net.core.rmem_max`` / ``wmem_max``)."""
        self._check_open()
        # validate both before applying either, so a refused call changes nothing
        if rcvbuf_bytes is not None:
            _check_range("rcvbuf_bytes", rcvbuf_bytes, 1, 1 << 30)
        if sndbuf_bytes is not None:
            _check_range("sndbuf_bytes", sndbuf_bytes, 1, 1 << 30)
        with translate("set_buffer_sizes", family=self._family):
            if rcvbuf_bytes is not None:
                plat.setopt(self._sock, Op.RCVBUF, rcvbuf_bytes)
            if sndbuf_bytes is not None:
                plat.setopt(self._sock, Op.SNDBUF, sndbuf_bytes)
        return self.rcvbuf_bytes, self.sndbuf_bytes

    @property
    def rcvbuf_bytes(self) -> int:
        """The receive buffer size the kernel applied (SO_RCVBUF)."""
        self._check_open()
        return plat.getopt(self._sock, Op.RCVBUF)

    @property
    def sndbuf_bytes(self) -> int:
        """The send buffer size the kernel applied (SO_SNDBUF)."""
        self._check_open()
        return plat.getopt(self._sock, Op.SNDBUF)

