"""The synchronous multicast socket: the one core every face (asyncio, MCast, CLI) wraps.

Owns: the socket object, binding, memberships (through the book), sender options,
send and receive with per-datagram metadata, drop accounting and clean teardown.
Must not: know about events, settings names or the CLI.

Platform notes: tested on Linux only. Joins and leaves always go by interface index
(field notes B4); ``IP(V6)_MULTICAST_ALL`` is turned off (D3); ``IPV6_V6ONLY`` is set
explicitly (A12); the default TTL / hop limit is 1 (G3).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from . import _batch  # batch I/O section (issue 5)
from . import _platform as plat
from ._addr import Endpoint, Group, IPAddress, parse_endpoint, parse_ip
from ._errors import (
    ClosedError,
    ErrorCode,
    InterfaceError,
    McastError,
    McastOSError,
    McastValueError,
    ReceiveTimeoutError,
    UnsupportedError,
    translate,
)
from ._interfaces import Interface, resolve_interface, route_interface
from ._membership import Membership, MembershipBook
from ._packet import Datagram, decode_ancillary
from ._platform import Op
from ._platform._structs import pack_group_req, pack_group_source_req, pack_ip_mreqn

__all__ = ["MulticastSocket", "RecvStats", "open_receiver", "open_sender"]

InterfaceArg = str | int | IPAddress | Interface
_ANC_SIZE: Final = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) * 3 + socket.CMSG_SPACE(16)
_SEND_RETRIES: Final = 3


@dataclass(slots=True)
class RecvStats:
    """Counters of what this socket received, dropped or refused. Nothing is lost silently.

    ``kernel_drops`` is the last SO_RXQ_OVFL total the kernel reported (metadata on);
    :meth:`MulticastSocket.kernel_drops` reads the live counter, which also covers drops
    after the last queued datagram (field notes D1).
    """

    datagrams: int = 0
    bytes: int = 0
    truncated: int = 0
    kernel_drops: int = 0
    filtered: int = 0  # destination was a group this socket never joined (defence in depth)
    send_retries: int = 0
    send_errors: int = 0


def _family_of(family: int | str) -> socket.AddressFamily:
    if family in (4, "4", "ipv4", socket.AF_INET):
        return socket.AF_INET
    if family in (6, "6", "ipv6", socket.AF_INET6):
        return socket.AF_INET6
    raise McastValueError(f"family {family!r}: use 4, 6, 'ipv4', 'ipv6' or socket.AF_INET(6)",
                          code=ErrorCode.WRONG_FAMILY)


def _check_range(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise McastValueError(f"{name} must be an integer {lo}-{hi}, got {value!r}",
                              code=ErrorCode.BAD_VALUE)
    return value


def _is_multicast_text(addr: str) -> bool:
    if ":" in addr:
        return addr[:2].lower() == "ff"
    head = addr.split(".", 1)[0]
    return head.isdigit() and 224 <= int(head) <= 239


class MulticastSocket:
    """A UDP socket for IPv4 or IPv6 multicast, safe by default.

    Args:
        family: 4 / 6 (or ``socket.AF_INET`` / ``AF_INET6``).
        interface: default interface (name, index, local address) for joins and the
            outgoing interface for sends. ``None``: joins use the interface the routing
            table picks for the group (reported on the membership); sends use the route.
        ttl: multicast TTL / IPv6 hop limit, 0-255 (default 1: stays on the link).
        loopback: deliver our own sends to local listeners (a sender-side setting on Linux).
        reuse_port: SO_REUSEPORT, so several sockets of the same user share the port.
        reuse_address: SO_REUSEADDR as well (what other stacks need to share a port).
        metadata: receive the destination group, arrival interface, TTL and drop count
            with every datagram (IP_PKTINFO, IP_RECVTTL, SO_RXQ_OVFL).
        timestamps: also receive the kernel arrival time (SO_TIMESTAMPNS).
        rcvbuf_bytes / sndbuf_bytes: socket buffer requests; read back what was applied.
        dscp: Differentiated Services code point 0-63 for outgoing datagrams.
        dont_fragment: refuse to fragment (larger datagrams raise DatagramTooLargeError).
        recv_size: receive buffer per datagram; longer datagrams are cut and flagged.
        blocking: False for event loops (recv raises BlockingIOError when empty).

    Raises:
        McastValueError: a bad argument (nothing is created).
        InterfaceNotFoundError: ``interface`` does not exist.
    """

    def __init__(
        self,
        family: int | str = 4,
        *,
        interface: InterfaceArg | None = None,
        ttl: int = 1,
        loopback: bool = True,
        reuse_port: bool = False,
        reuse_address: bool = False,
        metadata: bool = False,
        timestamps: bool = False,
        rcvbuf_bytes: int | None = None,
        sndbuf_bytes: int | None = None,
        dscp: int | None = None,
        dont_fragment: bool = False,
        recv_size: int = 65535,
        blocking: bool = True,
    ) -> None:
        fam = _family_of(family)
        _check_range("ttl", ttl, 0, 255)
        _check_range("recv_size", recv_size, 1, 1 << 20)
        if dscp is not None:
            _check_range("dscp", dscp, 0, 63)
        for name, val in (("rcvbuf_bytes", rcvbuf_bytes), ("sndbuf_bytes", sndbuf_bytes)):
            if val is not None:
                _check_range(name, val, 1, 1 << 30)
        iface = resolve_interface(interface) if interface is not None else None
        self._family: Final = fam
        self._iface_spec: str | int | None = (
            interface if isinstance(interface, str | int) else None
        )
        self._closed = False
        self._book = MembershipBook()
        self._recv_size = recv_size
        self._metadata = False
        self._timestamps = False
        self._timeout: float | None = None  # applied to the socket right now
        self._default_timeout: float | None = None if blocking else 0.0  # settimeout()'s
        self._last_drops = 0
        self.stats = RecvStats()
        self._sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            with translate("open", family=fam):
                if fam == socket.AF_INET6:
                    plat.setopt(self._sock, Op.V6ONLY, 1)
                if plat.supports(fam, Op.MULTICAST_ALL):
                    plat.setopt(self._sock, Op.MULTICAST_ALL, 0)
                if reuse_address:
                    plat.setopt(self._sock, Op.REUSEADDR, 1)
                if reuse_port:
                    plat.setopt(self._sock, Op.REUSEPORT, 1)
            self._iface: Interface | None = None
            if iface is not None:
                self.set_interface(iface)
                self._iface_spec = interface if isinstance(interface, str | int) else None
            self.set_ttl(ttl)
            self.set_loopback(loopback)
            if dscp is not None:
                self.set_dscp(dscp)
            if dont_fragment:
                self.set_dont_fragment(True)
            if rcvbuf_bytes is not None or sndbuf_bytes is not None:
                self.set_buffer_sizes(rcvbuf_bytes=rcvbuf_bytes, sndbuf_bytes=sndbuf_bytes)
            self.set_metadata(metadata, timestamps=timestamps)
            self._apply_timeout(self._default_timeout)
        except BaseException:
            self._sock.close()
            raise

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"bound to {self._local_or_none()}"
        return f"<MulticastSocket IPv{self.version} {state} groups={len(self._book)}>"

    def __enter__(self) -> MulticastSocket:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def family(self) -> socket.AddressFamily:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return self._family

    @property
    def version(self) -> int:
        """4 or 6."""
        return 4 if self._family == socket.AF_INET else 6

    @property
    def sock(self) -> socket.socket:
        """The underlying socket (an escape hatch; options set on it bypass our checks)."""
        self._check_open()
        return self._sock

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def fileno(self) -> int:
        """The socket's file descriptor (for selectors and event loops)."""
        self._check_open()
        return self._sock.fileno()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the socket is closed; open a new MulticastSocket")

    def _local_or_none(self) -> tuple[str, int] | None:
        try:
            a = self._sock.getsockname()
        except OSError:
            return None
        return (str(a[0]), int(a[1]))

    @property
    def local_address(self) -> tuple[str, int]:
        """(address, port) after bind; port 0 reads back the port the kernel chose."""
        self._check_open()
        a = self._sock.getsockname()
        return (str(a[0]), int(a[1]))

    @property
    def memberships(self) -> tuple[Membership, ...]:
        """The memberships this socket holds, as committed after the kernel accepted them."""
        return tuple(self._book)

    @property
    def interface(self) -> Interface | None:
        """The default interface (for joins and sends), or None for the route's choice."""
        return self._iface

    # ------------------------------------------------------------------ bind / connect

    def bind(self, port: int = 0, address: str | IPAddress | None = None) -> tuple[str, int]:
        """Bind to ``address`` (default: the wildcard) and ``port`` (0: the kernel picks).

        Binding to a group address (IPv4) receives only that group. Returns the bound
        (address, port).

        Raises:
            McastOSError: EADDRINUSE (the message names ``reuse_port``), EADDRNOTAVAIL.
        """
        self._check_open()
        _check_range("port", port, 0, 65535)
        if address is None or address == "":
            host = "0.0.0.0" if self._family == socket.AF_INET else "::"
        else:
            ip = parse_ip(str(address), what="bind address")
            self._check_family(ip, "bind address")
            host = str(ip)
        with translate("bind", group=f"{host}:{port}", family=self._family):
            self._sock.bind((host, port))
        return self.local_address

    def connect(self, address: str | IPAddress, port: int) -> None:
        """Send to and receive only from (address, port). To a group, no ICMP errors ever
        arrive (field notes C6): "nobody listens" cannot be detected for multicast."""
        self._check_open()
        _check_range("port", port, 1, 65535)
        ip = parse_ip(str(address), what="peer address")
        self._check_family(ip, "peer address")
        with translate("connect", group=f"{ip}:{port}", family=self._family):
            self._sock.connect((str(ip), port))
        if ip.is_multicast:  # G3: a TTL above 1 to a link-scope group, reserved scopes
            self._warn_scope(str(ip), self.ttl)

    def disconnect(self) -> None:
        """Undo :meth:`connect` (AF_UNSPEC connect)."""
        self._check_open()
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        sa = bytes(16)  # sa_family = AF_UNSPEC (0)
        if libc.connect(self._sock.fileno(), sa, len(sa)) != 0:
            err = ctypes.get_errno()
            raise McastOSError(err, f"disconnect: {os.strerror(err)}", op="disconnect")

    def _check_family(self, ip: IPAddress, what: str) -> None:
        if ip.version != self.version:
            raise McastValueError(
                f"{what} {ip} is IPv{ip.version} but this socket is IPv{self.version}; open "
                f"MulticastSocket({ip.version}) for it",
                code=ErrorCode.WRONG_FAMILY,
            )

    # ------------------------------------------------------------------ memberships

    def _group(self, group: str | IPAddress | Group) -> Group:
        g = Group.parse(group)
        self._check_family(g.address, "group")
        return g

    def _source(self, source: str | IPAddress) -> IPAddress:
        s = parse_ip(source, what="source") if isinstance(source, str) else source
        self._check_family(s, "source")
        if s.is_multicast or s.is_unspecified:
            raise McastValueError(f"source {s} must be a unicast sender address",
                                  code=ErrorCode.BAD_ADDRESS)
        return s

    def _join_iface(
        self, g: Group, interface: InterfaceArg | None
    ) -> tuple[Interface, str | int | None]:
        if interface is not None:
            spec = interface if isinstance(interface, str | int) else None
            return resolve_interface(interface), spec
        if self._iface is not None:
            return self._iface, self._iface_spec
        return route_interface(g.address), None

    def join(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
             ) -> Membership:
        """Join ``group`` (any source) on ``interface`` (by index). Joining again is a no-op
        that returns the existing membership.

        Raises:
            McastValueError: not a multicast address, or the wrong IP version.
            ModeConflictError: the group is joined source-specifically on this interface.
            InterfaceNotFoundError / InterfaceError: no such interface, or no route.
            MembershipLimitError: over ``net.ipv4.igmp_max_memberships`` (named, with its
                value); the memberships already held stay intact.
        """
        self._check_open()
        g = self._group(group)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join(iface.index, key, iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        with translate("join", group=key, interface=iface.name, family=self._family):
            plat.setopt(self._sock, Op.JOIN, pack_group_req(iface.index, g.address))
        m = self._book.commit_join(iface.index, key, iface.name, spec)
        self._warn_scope(g, self.ttl)  # G3
        return m

    def leave(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None) -> None:
        """Leave an any-source or source-specific membership (all its sources).

        Raises:
            NotJoinedError: this socket holds no such membership.
        """
        self._check_open()
        g = self._group(group)
        idx, name = self._lookup_membership_iface(g, interface)
        self._book.check_leave(idx, str(g), name)
        self._leave_index(idx, g.address, name)
        self._book.commit_leave(idx, str(g))

    def _lookup_membership_iface(self, g: Group, interface: InterfaceArg | None) -> tuple[int, str]:
        """Find the membership's interface without requiring the interface still exists."""
        key = str(g)
        if interface is None:
            held = [m for m in self._book if m.group == key]
            if len(held) == 1:
                return held[0].ifindex, held[0].ifname
            if self._iface is not None:
                return self._iface.index, self._iface.name
            if not held:
                iface = route_interface(g.address)
                return iface.index, iface.name
            raise McastValueError(
                f"{g} is joined on {len(held)} interfaces "
                f"({', '.join(m.ifname for m in held)}); pass interface=",
                code=ErrorCode.BAD_VALUE, group=key,
            )
        if isinstance(interface, str | int) and not isinstance(interface, bool):
            for m in self._book:
                if m.group == key and (m.ifname == interface or m.ifindex == interface
                                       or str(m.ifindex) == interface):
                    return m.ifindex, m.ifname
        iface = resolve_interface(interface)
        return iface.index, iface.name

    def _drop_membership(self, ifindex: int, g: Group) -> None:
        m = self._book.get(ifindex, str(g))
        if m is not None:
            self._leave_index(ifindex, g.address, m.ifname)
            self._book.commit_leave(ifindex, str(g))

    def _leave_index(self, ifindex: int, group: IPAddress, ifname: str) -> None:
        try:
            with translate("leave", group=str(group), interface=ifname, family=self._family):
                plat.setopt(self._sock, Op.LEAVE, pack_group_req(ifindex, group))
        except InterfaceError:
            pass  # the interface is gone, and the kernel dropped the membership with it (B3)

    def join_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> Membership:
        """Source-specific join: receive ``group`` only from ``source`` (RFC 4607).
        Adding the same source again is a no-op.

        Raises:
            ModeConflictError: the group is joined any-source on this interface.
            SourceFilterError: over ``igmp_max_msf`` / ``mld_max_msf`` (named).
        """
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join_source(iface.index, key, str(s), iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        op = "join_source" if self._book.get(iface.index, key) else "join_group_source"
        with translate(op, group=key, source=str(s), interface=iface.name,
                       family=self._family):
            plat.setopt(self._sock, Op.JOIN_SOURCE,
                        pack_group_source_req(iface.index, g.address, s))
        m = self._book.commit_join_source(iface.index, key, str(s), iface.name, spec)
        self._warn_scope(g, self.ttl)  # G3
        return m

    def leave_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Drop one source of a source-specific join (the last one leaves the group)."""
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_membership_iface(g, interface)
        self._book.check_leave_source(idx, str(g), str(s), name)
        try:
            with translate("leave_source", group=str(g), source=str(s), interface=name,
                           family=self._family):
                plat.setopt(self._sock, Op.LEAVE_SOURCE,
                            pack_group_source_req(idx, g.address, s))
        except InterfaceError:
            pass
        self._book.commit_leave_source(idx, str(g), str(s))

    def block_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Stop receiving ``source`` on an any-source join (EXCLUDE filter)."""
        self._filter(source, group, interface, block=True)

    def unblock_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Undo :meth:`block_source`."""
        self._filter(source, group, interface, block=False)

    def _filter(self, source: str | IPAddress, group: str | IPAddress | Group,
                interface: InterfaceArg | None, *, block: bool) -> None:
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_membership_iface(g, interface)
        if not self._book.check_block(idx, str(g), str(s), name, block):
            return
        op = Op.BLOCK_SOURCE if block else Op.UNBLOCK_SOURCE
        with translate(op.value, group=str(g), source=str(s), interface=name,
                       family=self._family):
            plat.setopt(self._sock, op, pack_group_source_req(idx, g.address, s))
        self._book.commit_block(idx, str(g), str(s), block)

    def refresh_interfaces(self) -> list[Membership]:
        """Re-join memberships made by interface *name* whose interface was re-created
        (new index; field notes B3). Returns the memberships re-joined. Memberships whose
        interface is still missing are kept and retried on the next call."""
        self._check_open()
        done: list[Membership] = []
        for m in self._book:
            if not m.by_name:
                continue
            assert isinstance(m.interface_spec, str)
            try:
                idx = socket.if_nametoindex(m.interface_spec)
            except OSError:
                continue
            if idx == m.ifindex:
                continue
            g = Group.parse(m.group)
            self._leave_index(m.ifindex, g.address, m.ifname)
            self._book.commit_leave(m.ifindex, m.group)
            try:
                if m.mode.value == "exclude":
                    nm = self.join(g, m.interface_spec)
                    for src in m.sources:
                        self.block_source(src, g, m.interface_spec)
                else:
                    for src in m.sources:
                        nm = self.join_source(src, g, m.interface_spec)
            except McastError:
                # undo what the re-join did, keep the old record so the next call retries
                with contextlib.suppress(McastError):
                    self._drop_membership(idx, g)
                self._book.restore(m)
                raise
            done.append(nm)
        if self._iface is not None and isinstance(self._iface_spec, str):
            try:
                if socket.if_nametoindex(self._iface_spec) != self._iface.index:
                    self.set_interface(self._iface_spec)
            except (OSError, McastValueError):
                pass
        return done

    # ------------------------------------------------------------------ sender options

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

    def set_metadata(self, on: bool, *, timestamps: bool | None = None) -> None:
        """Turn per-datagram metadata on or off (may be toggled mid-stream)."""
        self._check_open()
        v = 1 if on else 0
        with translate("set_metadata", family=self._family):
            for op in (Op.RECV_PKTINFO, Op.RECV_TTL, Op.RXQ_OVFL):
                plat.setopt(self._sock, op, v)
            if timestamps is not None:
                plat.setopt(self._sock, Op.TIMESTAMPNS, 1 if timestamps else 0)
                self._timestamps = timestamps
        self._metadata = on

    @property
    def metadata(self) -> bool:
        """Whether per-datagram metadata is on (see :meth:`set_metadata`)."""
        return self._metadata

    def setblocking(self, flag: bool) -> None:
        """Like :meth:`socket.socket.setblocking`; the default for :meth:`recv`."""
        self.settimeout(None if flag else 0.0)

    # ------------------------------------------------------------------ send

    def _dest(
        self, address: str | IPAddress, port: int
    ) -> tuple[str, int] | tuple[str, int, int, int]:
        host = str(address)
        if self._family == socket.AF_INET6:
            scope = 0
            if "%" in host:
                host, zone = host.split("%", 1)
                scope = int(zone) if zone.isdigit() else resolve_interface(zone).index
            return (host, port, 0, scope)
        return (host, port)

    def sendto(self, data: bytes | bytearray | memoryview, address: str | IPAddress, port: int
               ) -> int:
        """Send one datagram to (address, port). Retries a transient ENOBUFS a few times
        (counted in ``stats.send_retries``) before raising :class:`SendError`.

        Raises:
            DatagramTooLargeError: EMSGSIZE (over 65507 B, or over the MTU with DF).
            SendError: ENETUNREACH (the message says to set the interface) and others.
            WouldBlockError: non-blocking socket with a full buffer (a BlockingIOError).
        """
        if address is self._dc_addr and port == self._dc_port:  # same target as last time
            dest = self._dc_dest
        else:
            dest = self._dest(address, port)
            if len(dest) == 2 or "%" not in str(address):  # a zone name may re-resolve
                self._dc_addr, self._dc_port, self._dc_dest = address, port, dest
        try:
            return self._sock.sendto(data, dest)
        except OSError as exc:
            return self._send_failed(exc, data, dest)

    # sendto()'s one-entry cache of the last (address, port) -> socket address
    _dc_addr: object = None
    _dc_port: int = -1
    _dc_dest: tuple[str, int] | tuple[str, int, int, int] = ("", 0)

    def send(self, data: bytes | bytearray | memoryview, endpoint: str | Endpoint | None = None
             ) -> int:
        """Send to ``endpoint`` (``"GROUP:PORT"`` or an Endpoint), or to the connected peer."""
        if endpoint is None:
            try:
                return self._sock.send(data)
            except OSError as exc:
                return self._send_failed(exc, data, None)
        ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
        return self.sendto(data, ep.group.address, ep.port)

    def sendto_from(self, data: bytes | bytearray | memoryview, address: str | IPAddress,
                    port: int, source: str | IPAddress) -> int:
        """Send one datagram to (address, port) with ``source`` as its source address
        (``sendmsg`` with an IP_PKTINFO ``ipi_spec_dst`` / IPV6_PKTINFO control message).

        ``source`` must be an address of this host: that needs no privileges. The kernel
        refuses a foreign one (EINVAL); sending with someone else's address would need
        IP_TRANSPARENT and CAP_NET_ADMIN, which this method does not attempt.

        Raises:
            McastValueError: ``source`` is not an address, or is of the other IP version.
            SendError: the kernel refused (a foreign source gives errno EINVAL).
            WouldBlockError: non-blocking socket with a full buffer.
        """
        import struct  # local: keeps this additive method self-contained

        self._check_open()
        ip = parse_ip(str(source), what="source address")
        self._check_family(ip, "source address")
        kind = plat.CmsgKind.PKTINFO4 if self._family == socket.AF_INET else plat.CmsgKind.PKTINFO6
        level, ctype = next(k for k, v in plat.CMSG_KINDS.items() if v is kind)
        if self._family == socket.AF_INET:
            info = struct.pack("=i4s4s", 0, ip.packed, bytes(4))
        else:
            info = struct.pack("=16sI", ip.packed, 0)
        dest = self._dest(address, port)
        try:
            return self._sock.sendmsg([data], [(level, ctype, info)], 0, dest)
        except OSError as exc:
            if self._closed:
                raise ClosedError("the socket is closed; open a new MulticastSocket") from exc
            self.stats.send_errors += 1
            with translate("send", group=f"{dest[0]}:{dest[1]} from {ip}",
                           interface=self._iface.name if self._iface else None,
                           family=self._family):
                raise
            raise AssertionError("unreachable") from None  # pragma: no cover

    def _send_failed(self, exc: OSError, data: bytes | bytearray | memoryview,
                     dest: tuple[str, int] | tuple[str, int, int, int] | None) -> int:
        if self._closed:
            raise ClosedError("the socket is closed; open a new MulticastSocket") from exc
        what = f"{dest[0]}:{dest[1]}" if dest else "connected peer"
        if exc.errno == errno.ENOBUFS and self._timeout != 0.0:  # never sleep non-blocking
            for attempt in range(_SEND_RETRIES):
                time.sleep(0.001 * (2**attempt))
                self.stats.send_retries += 1
                try:
                    return self._sock.sendto(data, dest) if dest else self._sock.send(data)
                except OSError as again:
                    if again.errno != errno.ENOBUFS:
                        exc = again
                        break
        if not isinstance(exc, BlockingIOError):  # would-block is flow control, not an error
            self.stats.send_errors += 1
        with translate("send", group=what,
                       interface=self._iface.name if self._iface else None, family=self._family):
            raise exc
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ receive

    def settimeout(self, timeout_s: float | None) -> None:
        """Default wait of :meth:`recv` (None: forever, 0: non-blocking).

        Raises:
            McastValueError: a negative timeout.
        """
        self._check_open()
        if timeout_s is not None and timeout_s < 0:
            raise McastValueError(f"timeout_s must be >= 0 or None, got {timeout_s}")
        self._default_timeout = timeout_s
        self._apply_timeout(timeout_s)

    def _apply_timeout(self, timeout_s: float | None) -> None:
        if timeout_s != self._timeout:
            self._sock.settimeout(timeout_s)
            self._timeout = timeout_s

    def recv(self, timeout_s: float | None = None) -> Datagram:
        """Receive one datagram, waiting up to ``timeout_s`` (None: the socket's own
        timeout from :meth:`settimeout` / ``blocking``; a per-call value does not stick).

        Raises:
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError).
            BlockingIOError: non-blocking socket and nothing queued.
            ClosedError: the socket was closed.
        """
        self._check_open()
        if timeout_s is not None and timeout_s < 0:
            raise McastValueError(f"timeout_s must be >= 0 or None, got {timeout_s}")
        try:
            self._apply_timeout(self._default_timeout if timeout_s is None else timeout_s)
        except OSError as exc:  # closed by another thread after the check above (D8)
            if self._closed:
                raise ClosedError("the socket was closed while receiving") from exc
            raise
        while True:
            try:
                if self._metadata or self._recv_size < 65535:
                    d = self._recv_msg()
                else:
                    data, addr = self._sock.recvfrom(self._recv_size)
                    if addr is None and self._closed:  # woken by close() (D8)
                        raise ClosedError("the socket was closed while receiving")
                    d = Datagram(data, self._fmt_source(addr), addr[1])
            except TimeoutError:
                raise ReceiveTimeoutError(
                    errno.ETIMEDOUT,
                    f"no datagram within {self._timeout} s on {self._local_or_none()}",
                    op="recv",
                ) from None
            except BlockingIOError:
                raise
            except OSError as exc:
                if self._closed:
                    raise ClosedError("the socket was closed while receiving") from exc
                with translate("recv", family=self._family):
                    raise
                raise AssertionError("unreachable") from None  # pragma: no cover
            if self._accept(d):
                return d

    def _fmt_source(self, addr: tuple[str, int] | tuple[str, int, int, int]) -> str:
        if len(addr) == 4 and addr[3]:
            return f"{addr[0]}%{addr[3]}"
        return addr[0]

    def _recv_msg(self) -> Datagram:
        data, anc, flags, addr = self._sock.recvmsg(self._recv_size, _ANC_SIZE)
        if addr is None and self._closed:  # woken by close() from another thread (D8)
            raise ClosedError("the socket was closed while receiving")
        d = Datagram(data, self._fmt_source(addr), addr[1],
                     truncated=bool(flags & socket.MSG_TRUNC))
        if anc:
            decode_ancillary(d, anc, plat.CMSG_KINDS)
        return d

    def _accept(self, d: Datagram) -> bool:
        """Count the datagram; drop (and count) one addressed to a group we never joined."""
        st = self.stats
        if d.drops is not None and d.drops != self._last_drops:
            if d.drops > self._last_drops:
                st.kernel_drops += d.drops - self._last_drops
            self._last_drops = d.drops
        g = d.group
        if g is not None and _is_multicast_text(g) and (
            g not in self._book.groups
            # IPv6 sockets get a joined group from *any* interface some other socket
            # joined it on (the kernel's per-socket check ignores the ifindex): G1
            or (d.interface is not None and self._book.get(d.interface, g) is None)
        ):
            st.filtered += 1
            return False
        st.datagrams += 1
        st.bytes += len(d.data)
        if d.truncated:
            st.truncated += 1
        return True

    def recv_many(self, max_count: int = 64, timeout_s: float | None = None) -> list[Datagram]:
        """Receive up to ``max_count`` datagrams: waits for the first (like :meth:`recv`),
        then takes whatever else is already queued without waiting."""
        _check_range("max_count", max_count, 1, 1 << 20)
        out = [self.recv(timeout_s)]
        while len(out) < max_count:
            try:
                out.append(self.recv(0.0))
            except BlockingIOError:
                break
        return out

    def kernel_drops(self) -> int:
        """The socket's live drop counter from ``/proc/net/udp(6)`` (includes drops after
        the last queued datagram, which SO_RXQ_OVFL cannot show yet). -1 if unreadable."""
        self._check_open()
        inode = os.fstat(self._sock.fileno()).st_ino
        path = "/proc/thread-self/net/udp" + ("6" if self._family == socket.AF_INET6 else "")
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == str(inode):
                        return int(cols[-1])
        except OSError:
            return -1
        return -1

    # ------------------------------------------------------------------ batch I/O
    # BEGIN batch section (issue 5; the machinery lives in mcastkit._batch)

    _batch_rx: _batch.BatchReceiver | None = None
    _batch_tx: _batch.BatchSender | None = None

    def recv_batch(self, max_count: int = 64, timeout_s: float | None = None
                   ) -> list[Datagram]:
        """Receive up to ``max_count`` datagrams with one ``recvmmsg(2)`` call.

        Waits for the first datagram like :meth:`recv` (``timeout_s``; None: the socket's
        timeout), then takes whatever else is already queued without waiting
        (MSG_WAITFORONE semantics). Datagrams, metadata, truncation flags and the
        ``stats`` counters are exactly what the same number of :meth:`recv` calls would
        give. Buffers are allocated once per socket (``recv_size`` bytes per slot, at most
        16 MiB) and reused. Falls back to a loop of ``recvmsg`` where recvmmsg or ctypes
        is unavailable.

        Raises:
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError).
            BlockingIOError: non-blocking socket and nothing queued.
            ClosedError: the socket was closed.
            McastValueError: ``max_count`` is not 1-1048576.
        """
        self._check_open()
        _check_range("max_count", max_count, 1, 1 << 20)
        if timeout_s is not None and timeout_s < 0:
            raise McastValueError(f"timeout_s must be >= 0 or None, got {timeout_s}")
        try:  # like recv(): a per-call timeout does not stick
            self._apply_timeout(self._default_timeout if timeout_s is None else timeout_s)
        except OSError as exc:  # closed by another thread after the check above (D8)
            if self._closed:
                raise ClosedError("the socket was closed while receiving") from exc
            raise
        rx = self._batch_rx
        if rx is None or rx.impl != _batch.current_impl():
            rx = self._batch_rx = _batch.new_receiver(self._family, self._recv_size,
                                                      min(max_count, 1024))
        wait = self._sock.gettimeout()
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                got = rx.receive(self._sock, max_count, wait)
            except TimeoutError:
                raise ReceiveTimeoutError(
                    errno.ETIMEDOUT,
                    f"no datagram within {self._timeout} s on {self._local_or_none()}",
                    op="recv",
                ) from None
            except BlockingIOError:
                raise
            except OSError as exc:
                if self._closed:
                    raise ClosedError("the socket was closed while receiving") from exc
                with translate("recv", family=self._family):
                    raise
                raise AssertionError("unreachable") from None  # pragma: no cover
            kept = self._accept_batch(got, rx.summary if rx.python is False else None)
            if kept:
                return kept
            if deadline is not None and wait:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise ReceiveTimeoutError(
                        errno.ETIMEDOUT,
                        f"no datagram within {self._timeout} s on {self._local_or_none()}",
                        op="recv")

    def _accept_batch(self, got: list[Datagram],
                      summary: _batch.Summary | None = None) -> list[Datagram]:
        """:meth:`_accept` for a whole batch (same counting and filtering). With a
        ``summary`` (every datagram has the same group, interface and drop count) it
        decides once for the batch; else one pass without a per-item call."""
        st = self.stats
        last = self._last_drops
        if summary is not None and got:
            g, ifx, dr, nbytes, ntrunc = summary
            if dr is not None and dr != last:
                if dr > last:
                    st.kernel_drops += dr - last
                self._last_drops = dr
            if g is not None and not self._wanted(g, ifx, None):
                st.filtered += len(got)
                return []
            st.datagrams += len(got)
            st.bytes += nbytes
            st.truncated += ntrunc
            return got
        verdict: dict[tuple[str, int | None], bool] = {}
        joined: list[frozenset[str] | None] = [None]
        kept: list[Datagram] = []
        keep = kept.append
        nbytes = 0
        ntrunc = 0
        for d in got:
            dr = d.drops
            if dr is not None and dr != last:
                if dr > last:
                    st.kernel_drops += dr - last
                last = dr
            g = d.group
            if g is not None:
                key = (g, d.interface)
                ok = verdict.get(key)
                if ok is None:
                    ok = verdict[key] = self._wanted(g, d.interface, joined)
                if not ok:
                    st.filtered += 1
                    continue
            keep(d)
            nbytes += len(d.data)
            if d.truncated:
                ntrunc += 1
        self._last_drops = last
        st.datagrams += len(kept)
        st.bytes += nbytes
        st.truncated += ntrunc
        return kept

    def _wanted(self, g: str, ifindex: int | None, joined: list[frozenset[str] | None] | None
                ) -> bool:
        """:meth:`_accept`'s group rule: False for a multicast group this socket did not
        join, or did not join on the arrival interface (G1). ``joined`` caches the set."""
        if not _is_multicast_text(g):
            return True
        if joined is None:
            groups = self._book.groups
        else:
            cached = joined[0]
            if cached is None:
                cached = joined[0] = self._book.groups
            groups = cached
        if g not in groups:
            return False
        return ifindex is None or self._book.get(ifindex, g) is not None

    def send_batch(
        self,
        payloads: Sequence[bytes | bytearray | memoryview],
        address: str | IPAddress,
        port: int,
        *,
        method: str = "auto",
    ) -> int:
        """Send every payload, in order, to (address, port) with as few syscalls as possible.

        ``method``: ``"auto"`` (UDP GSO when all payloads but the last have one size and
        the kernel takes it, else ``sendmmsg(2)``), ``"gso"`` (GSO or raise
        UnsupportedError), ``"mmsg"`` (sendmmsg only) or ``"loop"`` (one sendto each).
        Errors go through the same path as :meth:`sendto` (ENOBUFS retried, then a typed
        error); an error raised mid-batch carries ``datagrams_sent`` (how many went out
        before it).

        Returns:
            The number of datagrams sent: all of them, or fewer on a non-blocking socket
            whose buffer filled up after at least one was sent.

        Raises:
            DatagramTooLargeError: EMSGSIZE (a payload over 65507 B, or over the MTU
                with DF).
            SendError: ENETUNREACH and others.
            WouldBlockError: non-blocking socket with a full buffer and nothing sent.
            UnsupportedError: ``method="gso"`` where the kernel refuses UDP GSO.
            McastValueError: unknown ``method``; ``"gso"`` with unequal sizes.
        """
        self._check_open()
        if method not in ("auto", "gso", "mmsg", "loop"):
            raise McastValueError(f"method {method!r}: use 'auto', 'gso', 'mmsg' or 'loop'")
        items = payloads if isinstance(payloads, list | tuple) else list(payloads)
        n = len(items)
        if n == 0:
            return 0
        dest = self._dest(address, port)
        tx = self._batch_tx
        if tx is None or tx.python != _batch.using_python():
            tx = self._batch_tx = _batch.BatchSender(self._family)
        sent = 0
        if method == "loop" or (tx.python and method != "gso"):
            return self._send_loop(items, dest, 0)
        if method in ("auto", "gso"):
            seg = len(memoryview(items[0]))
            equal = all(len(memoryview(p)) == seg for p in items[:-1]) and (
                len(memoryview(items[-1])) <= seg)
            if method == "gso" and not equal:
                raise McastValueError("method='gso' needs payloads of one size (the last may "
                                      "be shorter); use method='auto'")
            if equal and (n > 1 or method == "gso") and tx.gso_size_ok(seg) and (
                    plat.supports(self._family, Op.UDP_SEGMENT)):
                sent, err = tx.gso_send(self._sock, items, dest)
                if err is not None and isinstance(err, BlockingIOError) and sent:
                    return sent
                if method == "gso" and tx.gso_ok is False:
                    raise UnsupportedError(
                        f"the kernel refused UDP GSO ({err}); use method='auto' or 'mmsg'")
            elif method == "gso":
                raise UnsupportedError("UDP GSO is not available on this socket; use "
                                       "method='auto' or 'mmsg'")
            if sent == n:
                return sent
        if tx.python:
            return self._send_loop(items, dest, sent)
        tx.set_dest(dest)
        while sent < n:
            fd = self._sock.fileno()
            try:
                if fd < 0:
                    raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                sent += tx.sendmmsg(fd, items[sent: sent + tx.slots])
            except OSError as exc:
                if isinstance(exc, BlockingIOError) and sent:
                    return sent
                sent = self._send_one_failed(exc, items, sent, dest)
        return sent

    def _send_loop(self, items: Sequence[bytes | bytearray | memoryview],
                   dest: tuple[str, int] | tuple[str, int, int, int], sent: int) -> int:
        sendto = self._sock.sendto
        n = len(items)
        while sent < n:
            try:
                sendto(items[sent], dest)
                sent += 1
            except OSError as exc:
                if isinstance(exc, BlockingIOError) and sent:
                    return sent
                sent = self._send_one_failed(exc, items, sent, dest)
        return sent

    def _send_one_failed(self, exc: OSError, items: Sequence[bytes | bytearray | memoryview],
                         sent: int, dest: tuple[str, int] | tuple[str, int, int, int]) -> int:
        """Hand the failing datagram to :meth:`_send_failed` (retry or typed error)."""
        try:
            self._send_failed(exc, items[sent], dest)
        except McastError as err:
            err.__dict__["datagrams_sent"] = sent
            raise
        return sent + 1

    # END batch section
    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Leave every group (by index) and close. Idempotent; never raises because an
        interface already disappeared (field notes B3, G11)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):  # wakes a recv blocked in another thread (D8)
            self._sock.shutdown(socket.SHUT_RDWR)
        for m in self._book.clear():
            # closing drops the kernel's memberships anyway; leaving first is tidiness
            with contextlib.suppress(OSError, McastValueError):
                self._leave_index(m.ifindex, Group.parse(m.group).address, m.ifname)
        self._sock.close()


def open_receiver(
    *endpoints: str | Endpoint,
    interface: InterfaceArg | None = None,
    **options: object,
) -> MulticastSocket:
    """Open, bind and join in one call: ``open_receiver("239.255.0.1:5000", interface="lo")``.

    Every endpoint must share one port and IP version. ``SOURCE,GROUP:PORT`` joins
    source-specifically. On failure nothing stays joined or open.
    """
    if not endpoints:
        raise McastValueError("open_receiver needs at least one GROUP:PORT endpoint")
    eps = [parse_endpoint(e) if isinstance(e, str) else e for e in endpoints]
    ports = {e.port for e in eps}
    versions = {e.group.version for e in eps}
    if len(ports) > 1 or len(versions) > 1:
        raise McastValueError(
            "all endpoints of one socket need the same port and IP version; open one socket "
            "per port", code=ErrorCode.BAD_VALUE)
    sock = MulticastSocket(eps[0].group.version, interface=interface, **options)  # type: ignore[arg-type]
    try:
        sock.bind(eps[0].port)
        for e in eps:
            where: InterfaceArg | None = e.interface if e.interface else None
            if e.source is not None:
                sock.join_source(e.source, e.group, where)
            else:
                sock.join(e.group, where)
    except BaseException:
        sock.close()
        raise
    return sock


def open_sender(
    endpoint: str | Endpoint,
    *,
    interface: InterfaceArg | None = None,
    **options: object,
) -> MulticastSocket:
    """A socket connected to ``GROUP:PORT`` for :meth:`MulticastSocket.send` without a
    destination. ``interface`` sets the outgoing interface (recommended: C1)."""
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    iface: InterfaceArg | None = interface if interface is not None else ep.interface
    sock = MulticastSocket(ep.group.version, interface=iface, **options)  # type: ignore[arg-type]
    try:
        sock.connect(ep.group.address, ep.port)
    except BaseException:
        sock.close()
        raise
    return sock

