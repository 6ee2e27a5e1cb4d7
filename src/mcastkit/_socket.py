"""The synchronous multicast socket: the one core every face (asyncio, MCast, CLI) wraps.

Owns: the public :class:`MulticastSocket` class (composed from the parts below), its
construction, binding, connecting and clean teardown; ``open_receiver`` / ``open_sender``.
The parts: ``_sockbase`` (state, checks, RecvStats), ``_options`` (sender options, G3
warnings), ``_joins`` (memberships through the book), ``_sender`` (send path, send_batch),
``_receiver`` (receive path with metadata, drop accounting, recv_batch).
Must not: know about events, settings names or the CLI.

Platform notes: tested on Linux only. Joins and leaves always go by interface index
(field notes B4); ``IP(V6)_MULTICAST_ALL`` is turned off (D3); ``IPV6_V6ONLY`` is set
explicitly (A12); the default TTL / hop limit is 1 (G3).
"""

from __future__ import annotations

import contextlib
import os
import socket
from types import TracebackType

from . import _platform as plat
from ._addr import Endpoint, Group, IPAddress, parse_endpoint, parse_ip
from ._errors import ErrorCode, McastOSError, McastValueError, translate
from ._interfaces import Interface, resolve_interface
from ._joins import _JoinsMixin
from ._membership import Membership, MembershipBook
from ._platform import Op
from ._receiver import _ReceiverMixin
from ._sender import _SenderMixin
from ._sockbase import InterfaceArg, RecvStats, _check_range, _family_of

__all__ = ["MulticastSocket", "RecvStats", "open_receiver", "open_sender"]


class MulticastSocket(_JoinsMixin, _SenderMixin, _ReceiverMixin):
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
        min_ttl: drop (and count in ``stats.ttl_filtered``) datagrams that arrive with a
            smaller TTL / hop limit; 255 accepts only senders on this link (GTSM, RFC 5082;
            security goal G4). Turns metadata on.

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
        min_ttl: int | None = None,
    ) -> None:
        fam = _family_of(family)
        _check_range("ttl", ttl, 0, 255)
        if min_ttl is not None:
            _check_range("min_ttl", min_ttl, 1, 255)
        _check_range("recv_size", recv_size, 1, 1 << 20)
        if dscp is not None:
            _check_range("dscp", dscp, 0, 63)
        for name, val in (("rcvbuf_bytes", rcvbuf_bytes), ("sndbuf_bytes", sndbuf_bytes)):
            if val is not None:
                _check_range(name, val, 1, 1 << 30)
        iface = resolve_interface(interface) if interface is not None else None
        self._family = fam
        self._iface_spec = (
            interface if isinstance(interface, str | int) else None
        )
        self._closed = False
        self._book = MembershipBook()
        self._recv_size = recv_size
        self._metadata = False
        self._timeout = None  # applied to the socket right now
        self._default_timeout = None if blocking else 0.0  # settimeout()'s
        self._last_drops = 0
        self._min_ttl = 0
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
            self._iface = None
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
            if min_ttl is not None:
                self.set_min_ttl(min_ttl)
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
        with translate("connect", group=f"{ip}:{port}", family=self._family,
                       interface=self._iface.name if self._iface else None):
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


def _check_options(caller: str, options: dict[str, object]) -> None:
    """Refuse unknown keyword options with a message listing the valid ones."""
    code = MulticastSocket.__init__.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    valid = set(names) - {"self", "family", "interface"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise McastValueError(
            f"{caller}: unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(sorted(valid))}", code=ErrorCode.BAD_VALUE)


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
    _check_options("open_receiver", options)
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
    if ep.source is not None:
        raise McastValueError(
            f"open_sender({str(endpoint)!r}): a sender has no source to choose; drop the "
            "'SOURCE,' part (receivers use it for source-specific joins)",
            code=ErrorCode.BAD_VALUE)
    _check_options("open_sender", options)
    iface: InterfaceArg | None = interface if interface is not None else ep.interface
    sock = MulticastSocket(ep.group.version, interface=iface, **options)  # type: ignore[arg-type]
    try:
        sock.connect(ep.group.address, ep.port)
    except BaseException:
        sock.close()
        raise
    return sock

