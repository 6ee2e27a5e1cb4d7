"""The synchronous multicast socket: the one core every face (asyncio, MCast, CLI) wraps.

Owns: the public :class:`MulticastSocket` façade (construction with the open-time socket
options, clean teardown, and one-line delegations to its parts). The one-call openers
(``open_receiver`` / ``open_sender``) live in :mod:`~mcastkit._open`.
The parts, each owning its own state and sharing only the :class:`~._handle.Handle`
(socket, family, closed flag, default wait): :class:`~._options.SendOptions` (interface,
TTL, loopback, DSCP, DF, buffers, G3 warnings), :class:`~._joins.Memberships` (the
membership book), :class:`~._receiver.ReceivePath` (every receive call, counting and
filtering), :class:`~._sender.SendPath` (every send call) and
:class:`~._binding.Binding` (bind, connect, disconnect). See docs/architecture.md.
Must not: know about events, settings names or the CLI; hold receive, send, option,
address or membership state itself.

Platform notes: tested on Linux only. Joins and leaves always go by interface index
(field notes B4); ``IP(V6)_MULTICAST_ALL`` is turned off (D3); ``IPV6_V6ONLY`` is set
explicitly (A12); the default TTL / hop limit is 1 (G3).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from types import TracebackType

from . import _platform as plat
from ._addr import Endpoint, IPAddress
from ._binding import Binding
from ._errors import ErrOp
from ._handle import Handle
from ._interfaces import Interface, is_broadcast_address, resolve_interface
from ._joins import GroupArg, Memberships
from ._membership import Membership, MembershipBook
from ._options import SendOptions
from ._packet import Datagram
from ._platform import Op
from ._receiver import ReceivePath
from ._sender import Payload, SendPath
from ._sockbase import InterfaceArg, RecvStats, _check_range, _family_of
from ._sockbase import same_doc as _doc
from ._translate import translate

__all__ = ["MulticastSocket", "RecvStats"]

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
        rcvbuf_bytes: receive buffer request (SO_RCVBUF); read back what was applied.
        sndbuf_bytes: send buffer request (SO_SNDBUF); read back what was applied.
        dscp: Differentiated Services code point 0-63 for outgoing datagrams.
        dont_fragment: refuse to fragment (larger datagrams raise DatagramTooLargeError).
        recv_size: receive buffer per datagram; longer datagrams are cut and flagged.
        blocking: False for event loops (a receive with nothing queued raises
            :class:`~mcastkit._errors.NothingQueuedError`, a BlockingIOError).
        min_ttl: drop (and count in ``stats.ttl_filtered``) datagrams that arrive with a
            smaller TTL / hop limit; 255 accepts only senders on this link (GTSM, RFC 5082;
            security goal G4). Turns metadata on.
        broadcast: IPv4 only: allow sends to 255.255.255.255 (out of ``interface``,
            which it then needs; unicast sends then leave through it too) and to a
            local subnet's broadcast address (SO_BROADCAST), and admit received
            broadcasts (with metadata on they are otherwise dropped and counted in
            ``stats.filtered``).

    Attributes:
        stats: what this socket received, dropped, refused and failed to send
            (:class:`RecvStats`; the counters move as the socket works).

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
        broadcast: bool = False,
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
        with translate(ErrOp.OPEN, family=fam):  # EMFILE: names `ulimit -n` (14.7)
            sock = socket.socket(fam, socket.SOCK_DGRAM)
        self._h = h = Handle(sock, fam)
        book = MembershipBook()
        book.is_broadcast = is_broadcast_address
        self.stats = RecvStats()  # shared by the receive and send paths (their own fields)
        self._opts = SendOptions(h, book)
        self._members = Memberships(h, book, self._opts)
        self._rx = ReceivePath(h, book, self.stats, recv_size)
        self._tx = SendPath(h, self.stats, self._opts)
        self._link = Binding(h, self._opts)
        # the hot calls go straight to their part (no façade frame) unless a subclass
        # overrides them; the class methods below are the documented, equivalent ones
        hot = {"recv": self._rx.recv, "recv_many": self._rx.recv_many,
               "recv_batch": self._rx.recv_batch, "sendto": self._tx.sendto,
               "send": self._tx.send, "send_batch": self._tx.send_batch}
        self.__dict__.update({k: f for k, f in hot.items()
                              if getattr(type(self), k) is getattr(MulticastSocket, k)})
        try:
            with translate(ErrOp.OPEN, family=fam):
                if fam == socket.AF_INET6:
                    plat.setopt(sock, Op.V6ONLY, 1)
                if plat.supports(fam, Op.MULTICAST_ALL):
                    plat.setopt(sock, Op.MULTICAST_ALL, 0)
                if plat.supports(fam, Op.RECVERR):  # egress drops become ENOBUFS (14.5)
                    plat.setopt(sock, Op.RECVERR, 1)
                if reuse_address:
                    plat.setopt(sock, Op.REUSEADDR, 1)
                if reuse_port:
                    plat.setopt(sock, Op.REUSEPORT, 1)
            if broadcast:
                self._opts.set_broadcast()
                book.broadcast = True
            if iface is not None:
                self._opts.use_interface(
                    iface, interface if isinstance(interface, str | int) else None, interface)
            self._opts.set_ttl(ttl)
            self._opts.set_loopback(loopback)
            if dscp is not None:
                self._opts.set_dscp(dscp)
            if dont_fragment:
                self._opts.set_dont_fragment(True)
            if rcvbuf_bytes is not None or sndbuf_bytes is not None:
                self._opts.set_buffer_sizes(rcvbuf_bytes=rcvbuf_bytes, sndbuf_bytes=sndbuf_bytes)
            self._rx.set_metadata(metadata, timestamps=timestamps)
            if min_ttl is not None:
                self._rx.set_min_ttl(min_ttl)
            h.settimeout(None if blocking else 0.0)
        except BaseException:
            sock.close()
            raise

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        state = "closed" if self._h.closed else f"bound to {self._h.local_or_none()}"
        return f"<MulticastSocket IPv{self.version} {state} groups={len(self._members)}>"

    def __enter__(self) -> MulticastSocket:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def family(self) -> socket.AddressFamily:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return self._h.family

    @property
    def version(self) -> int:
        """4 or 6."""
        return self._h.version

    @property
    def sock(self) -> socket.socket:
        """The underlying socket (an escape hatch; options set on it bypass our checks).
        It stays in blocking mode: mcastkit reads with MSG_DONTWAIT and waits itself."""
        self._h.check_open()
        self._h.handed_out = True  # it may be dup'ed or passed on: close() spares it
        return self._h.sock

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._h.closed

    def fileno(self) -> int:
        """The socket's file descriptor (for selectors and event loops).

        Returns:
            The file descriptor number.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.handed_out = True  # it may be dup'ed or passed on: close() spares it
        return self._h.sock.fileno()

    @property
    @_doc(Binding.local_address.fget)  # type: ignore[attr-defined]
    def local_address(self) -> tuple[str, int]:
        return self._link.local_address

    @property
    def memberships(self) -> tuple[Membership, ...]:
        """The memberships this socket holds, as committed after the kernel accepted them."""
        return self._members.held()

    @property
    def broadcast(self) -> bool:
        """True when the socket was opened with ``broadcast=True`` (SO_BROADCAST)."""
        return self._opts.broadcast

    @property
    def interface(self) -> Interface | None:
        """The default interface (for joins and sends), or None for the route's choice."""
        return self._opts.iface

    # ------------------------------------------------------------------ bind / connect / close

    @_doc(Binding.bind)
    def bind(self, port: int = 0, address: str | IPAddress | None = None) -> tuple[str, int]:
        return self._link.bind(port, address)

    @_doc(Binding.connect)
    def connect(self, address: str | IPAddress, port: int) -> None:
        self._link.connect(address, port)

    @_doc(Binding.disconnect)
    def disconnect(self) -> None:
        self._link.disconnect()

    def close(self) -> None:
        """Close this descriptor. Idempotent; never raises because an interface already
        disappeared (field notes B3, G11).

        While no other descriptor of the socket can exist, it first shuts the socket down
        (a receive blocked in another thread wakes at once, D8) and leaves every group.
        When one may (a forked child, or ``fileno()`` / ``sock`` handed out: a dup, a
        descriptor passed over SCM_RIGHTS), it only closes this descriptor: the other
        holder keeps receiving, and the kernel drops the memberships when the last
        descriptor closes (issue 14.2); a receive blocked in another thread of this
        process then wakes within a second.
        """
        h = self._h
        if h.closed:
            return
        h.closed = True
        if h.may_be_shared():
            self._members.forget_all()
        else:
            with contextlib.suppress(OSError):  # wakes a recv blocked in another thread (D8)
                h.sock.shutdown(socket.SHUT_RDWR)
            self._members.leave_all()
        h.sock.close()

    # ------------------------------------------------------------------ send options

    @_doc(SendOptions.set_interface)
    def set_interface(self, interface: InterfaceArg) -> Interface:
        return self._opts.set_interface(interface)

    @_doc(SendOptions.set_ttl)
    def set_ttl(self, ttl: int) -> None:
        self._opts.set_ttl(ttl)

    @property
    @_doc(SendOptions.ttl.fget)  # type: ignore[attr-defined]
    def ttl(self) -> int:
        return self._opts.ttl

    @_doc(SendOptions.set_loopback)
    def set_loopback(self, on: bool) -> None:
        self._opts.set_loopback(on)

    @property
    @_doc(SendOptions.loopback.fget)  # type: ignore[attr-defined]
    def loopback(self) -> bool:
        return self._opts.loopback

    @_doc(SendOptions.set_dscp)
    def set_dscp(self, dscp: int) -> None:
        self._opts.set_dscp(dscp)

    @property
    @_doc(SendOptions.dscp.fget)  # type: ignore[attr-defined]
    def dscp(self) -> int:
        return self._opts.dscp

    @_doc(SendOptions.set_dont_fragment)
    def set_dont_fragment(self, on: bool) -> None:
        self._opts.set_dont_fragment(on)

    @property
    @_doc(SendOptions.dont_fragment.fget)  # type: ignore[attr-defined]
    def dont_fragment(self) -> bool:
        return self._opts.dont_fragment

    @_doc(SendOptions.set_buffer_sizes)
    def set_buffer_sizes(self, *, rcvbuf_bytes: int | None = None,
                         sndbuf_bytes: int | None = None) -> tuple[int, int]:
        return self._opts.set_buffer_sizes(rcvbuf_bytes=rcvbuf_bytes, sndbuf_bytes=sndbuf_bytes)

    @property
    @_doc(SendOptions.rcvbuf_bytes.fget)  # type: ignore[attr-defined]
    def rcvbuf_bytes(self) -> int:
        return self._opts.rcvbuf_bytes

    @property
    @_doc(SendOptions.sndbuf_bytes.fget)  # type: ignore[attr-defined]
    def sndbuf_bytes(self) -> int:
        return self._opts.sndbuf_bytes

    # ------------------------------------------------------------------ memberships

    @_doc(Memberships.join)
    def join(self, group: GroupArg, interface: InterfaceArg | None = None) -> Membership:
        return self._members.join(group, interface)

    @_doc(Memberships.leave)
    def leave(self, group: GroupArg, interface: InterfaceArg | None = None) -> None:
        self._members.leave(group, interface)

    @_doc(Memberships.join_source)
    def join_source(self, source: str | IPAddress, group: GroupArg,
                    interface: InterfaceArg | None = None) -> Membership:
        return self._members.join_source(source, group, interface)

    @_doc(Memberships.leave_source)
    def leave_source(self, source: str | IPAddress, group: GroupArg,
                     interface: InterfaceArg | None = None) -> None:
        self._members.leave_source(source, group, interface)

    @_doc(Memberships.block_source)
    def block_source(self, source: str | IPAddress, group: GroupArg,
                     interface: InterfaceArg | None = None) -> None:
        self._members.block_source(source, group, interface)

    @_doc(Memberships.unblock_source)
    def unblock_source(self, source: str | IPAddress, group: GroupArg,
                       interface: InterfaceArg | None = None) -> None:
        self._members.unblock_source(source, group, interface)

    @_doc(Memberships.refresh_interfaces)
    def refresh_interfaces(self) -> list[Membership]:
        return self._members.refresh_interfaces()

    # ------------------------------------------------------------------ receiving

    def setblocking(self, flag: bool) -> None:
        """Like :meth:`socket.socket.setblocking`: the default wait of :meth:`recv`.

        Args:
            flag: True: wait (forever); False: a receive with nothing queued raises
                :class:`~mcastkit._errors.NothingQueuedError`, and sends raise
                :class:`~mcastkit.WouldBlockError` instead of waiting for buffer space.
        """
        self._h.settimeout(None if flag else 0.0)

    def settimeout(self, timeout_s: float | None) -> None:
        """Set the default wait of :meth:`recv`.

        Args:
            timeout_s: seconds; None: wait forever, 0: non-blocking.

        Raises:
            McastValueError: a negative timeout (or NaN, or not a number).
        """
        self._h.settimeout(timeout_s)

    @_doc(ReceivePath.set_metadata)
    def set_metadata(self, on: bool, *, timestamps: bool | None = None) -> None:
        self._rx.set_metadata(on, timestamps=timestamps)

    @property
    @_doc(ReceivePath.metadata.fget)  # type: ignore[attr-defined]
    def metadata(self) -> bool:
        return self._rx.metadata

    @_doc(ReceivePath.set_min_ttl)
    def set_min_ttl(self, min_ttl: int | None) -> None:
        self._rx.set_min_ttl(min_ttl)

    @property
    @_doc(ReceivePath.min_ttl.fget)  # type: ignore[attr-defined]
    def min_ttl(self) -> int | None:
        return self._rx.min_ttl

    @_doc(ReceivePath.recv)
    def recv(self, timeout_s: float | None = None) -> Datagram:
        return self._rx.recv(timeout_s)

    @_doc(ReceivePath.recv_many)
    def recv_many(self, max_count: int = 64, timeout_s: float | None = None
                  ) -> list[Datagram]:
        return self._rx.recv_many(max_count, timeout_s)

    @_doc(ReceivePath.recv_batch)
    def recv_batch(self, max_count: int = 64, timeout_s: float | None = None
                   ) -> list[Datagram]:
        return self._rx.recv_batch(max_count, timeout_s)

    @_doc(ReceivePath.pending)
    def pending(self) -> int:
        return self._rx.pending()

    @_doc(ReceivePath.kernel_drops)
    def kernel_drops(self) -> int:
        return self._rx.kernel_drops()

    # ------------------------------------------------------------------ sending

    @_doc(SendPath.sendto)
    def sendto(self, data: Payload, address: str | IPAddress, port: int) -> int:
        return self._tx.sendto(data, address, port)

    @_doc(SendPath.send)
    def send(self, data: Payload, endpoint: str | Endpoint | None = None) -> int:
        return self._tx.send(data, endpoint)

    @_doc(SendPath.sendto_from)
    def sendto_from(self, data: Payload, address: str | IPAddress, port: int,
                    source: str | IPAddress) -> int:
        return self._tx.sendto_from(data, address, port, source)

    @_doc(SendPath.send_batch)
    def send_batch(self, payloads: Sequence[Payload], address: str | IPAddress, port: int,
                   *, method: str = "auto") -> int:
        return self._tx.send_batch(payloads, address, port, method=method)
