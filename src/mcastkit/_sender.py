"""The send path of :class:`~mcastkit.MulticastSocket`.

Owns: sendto (with its destination cache: the last two targets, then a bounded dict),
send, sendto_from, send_batch (UDP GSO / sendmmsg through ``mcastkit._io.BatchSender``,
or a sendto loop; a batch to the last target goes to the accelerator's sendmmsg as it
is), the one error path of every send (``_failed``: the ENOBUFS retry, as egress drops
surface as ENOBUFS with IP_RECVERR, and the typed error) with the one drain of queued
ICMP errors (``_icmp_drained``), and the send counters (``stats.send_retries`` /
``send_errors`` / ``send_drops`` / ``icmp_errors``).
A non-blocking socket (timeout 0) sends with ``MSG_DONTWAIT``; otherwise sends block
while the socket buffer is full, as a blocking UDP socket does.
Must not: set socket options (``_options``), receive, or wait on its own (beyond the
short ENOBUFS back-off).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from typing import Final, NoReturn

from . import _io
from . import _platform as plat
from ._addr import Endpoint, IPAddress, parse_destination, parse_endpoint, parse_ip
from ._errors import ErrOp, ErrorCode, McastError, McastValueError, UnsupportedError
from ._handle import ICMP_ERRNOS, Handle
from ._interfaces import resolve_interface
from ._io._send import nbytes
from ._options import SendOptions
from ._packet import CmsgKind
from ._platform import Op
from ._platform._structs import pack_dest, pack_in6_pktinfo, pack_in_pktinfo
from ._sockbase import RecvStats
from ._translate import translate

__all__ = ["SendPath"]

_SEND_RETRIES: Final = 3
_METHODS: Final = frozenset(("auto", "gso", "mmsg", "loop"))
_DESTS_MAX: Final = 64  # recent destinations kept per socket (bounded: G6)
_SEQS: Final = (list, tuple)  # payload sequences send_batch hands to the accelerator as-is
_PLAIN: Final = frozenset((bytes, bytearray))  # payload types whose len() is their size
_csendto = _io.csendto  # the accelerator's sendto(fd, data, sockaddr, flags), or None
Payload = _io.Payload
Dest = _io.Dest


class SendPath:
    """Sending (a part of MulticastSocket).

    Args:
        h: the socket's handle.
        stats: the socket's counters (this part writes ``send_retries`` / ``send_errors``).
        opts: the send options, for the interface named in error messages.
    """

    def __init__(self, h: Handle, stats: RecvStats, opts: SendOptions) -> None:
        self._h = h
        self._sock = h.sock
        self.stats = stats
        self._opts = opts
        # the last two (address, port) -> (socket address, its packed bytes or b""
        # without the accelerator), checked by identity first; then a dict of recent ones
        self._dc: tuple[object, int, Dest, bytes] = (None, -1, ("", 0), b"")
        self._dc2: tuple[object, int, Dest, bytes] = self._dc
        self._dests: dict[tuple[object, int], tuple[Dest, bytes]] = {}
        self._batch: _io.BatchSender | None = None  # made on the first send_batch

    def dest(self, address: str | IPAddress, port: int) -> Dest:
        """Validate (address, port) and build the socket address (the cache-miss path)."""
        fam = self._h.family
        host = str(address)
        zone = ""
        if fam == socket.AF_INET6 and "%" in host:
            host, zone = host.split("%", 1)
        try:  # numeric only: names are never resolved on the send path
            socket.inet_pton(fam, host)
        except (OSError, ValueError):
            ip = parse_ip(host, what="destination")  # raises McastValueError for non-IPs
            self._h.check_family(ip, "destination")  # and this for the other IP version
            host = str(ip)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise McastValueError(f"destination port must be an integer 0-65535, got {port!r}")
        if fam == socket.AF_INET6:
            scope = 0
            if zone:
                scope = int(zone) if zone.isdigit() else resolve_interface(zone).index
            return (host, port, 0, scope)
        if host == "255.255.255.255":  # once per new target: the cache keeps the verdict
            self._opts.check_limited_broadcast()
        return (host, port)

    def sendto(self, data: Payload, address: str | IPAddress, port: int) -> int:
        """Send one datagram to (address, port).

        Retries a transient ENOBUFS a few times (counted in ``stats.send_retries``) before
        raising :class:`SendError`.

        Args:
            data: the payload (bytes-like), at most 65507 B over IPv4.
            address: destination group (or unicast) address of this socket's IP version.
            port: destination UDP port (an integer 0-65535).

        Returns:
            The number of bytes sent (the whole payload).

        Raises:
            DatagramTooLargeError: EMSGSIZE (over 65507 B, or over the MTU with DF;
                ``DATAGRAM_TOO_LARGE``).
            SendError: ENETUNREACH (the message says to set the interface) and others
                (``SEND_FAILED``).
            WouldBlockError: non-blocking socket with a full buffer (a BlockingIOError;
                ``SEND_TRANSIENT``).
            McastValueError: a bad address or port, or the other IP version.
            ClosedError: the socket is closed (``CLOSED``).
        """
        a, p, dest, sa = self._dc
        if address is not a or port != p:  # not the same target as last time
            a, p, dest, sa = self._dc2
            if address is a and port == p:  # the one before (alternating): swap
                self._dc, self._dc2 = self._dc2, self._dc
            else:
                dest, sa = self._target(address, port)
        try:
            if sa:  # the accelerator: no address parsing per datagram
                return _csendto(self._sock.fileno(), data, sa,  # type: ignore[misc]
                                self._h.send_flags)
            return self._sock.sendto(data, self._h.send_flags, dest)
        except OSError as exc:
            return self._failed(exc, data, dest)

    def _target(self, address: str | IPAddress, port: int) -> tuple[Dest, bytes]:
        """The socket address of (address, port) and its packed bytes (b"": send with
        socket.sendto): the last target, the one before (alternating targets swap the
        two; sendto checks both inline first, the same way), a recent one, or built and
        kept (except IPv6 zone names, which may re-resolve). It becomes the last target."""
        a, p, dest, sa = self._dc
        if address is a and port == p:
            return dest, sa
        a, p, dest, sa = self._dc2
        if address is a and port == p:
            self._dc, self._dc2 = self._dc2, self._dc
            return dest, sa
        key = (address, port)
        hit = self._dests.get(key)
        if hit is None:
            dest = self.dest(address, port)
            fast = _csendto is not None and _io.current_impl() == "c"
            hit = (dest, pack_dest(dest) if fast else b"")
            if len(dest) == 2 or "%" not in str(address):
                if len(self._dests) >= _DESTS_MAX:
                    self._dests.clear()
                self._dests[key] = hit
            else:
                return hit
        self._dc2, self._dc = self._dc, (address, port, *hit)
        return hit

    def send(self, data: Payload, endpoint: str | Endpoint | None = None) -> int:
        """Send one datagram to ``endpoint``, or to the connected peer.

        Args:
            data: the payload (bytes-like), at most 65507 B over IPv4.
            endpoint: ``"GROUP:PORT"`` or an :class:`~mcastkit.Endpoint`; None: the peer
                of :meth:`~mcastkit.MulticastSocket.connect` (as :func:`~mcastkit.open_sender`
                sets it).

        Returns:
            The number of bytes sent.

        Raises:
            McastValueError: ``endpoint`` does not parse (``BAD_ADDRESS``).
            SendError: as :meth:`sendto`; not connected and no ``endpoint`` gives one too.
            DatagramTooLargeError: as :meth:`sendto`.
            WouldBlockError: as :meth:`sendto`.
            ClosedError: the socket is closed (``CLOSED``).
        """
        if endpoint is None:
            try:
                return self._sock.send(data, self._h.send_flags)
            except OSError as exc:
                return self._failed(exc, data, None)
        if isinstance(endpoint, Endpoint):
            return self.sendto(data, endpoint.group.address, endpoint.port)
        try:
            ep = parse_endpoint(endpoint)
        except McastValueError as exc:  # a broadcast or unicast HOST:PORT
            if exc.code is not ErrorCode.NOT_MULTICAST:
                raise
            host, port = parse_destination(endpoint)
            return self.sendto(data, host, port)
        return self.sendto(data, ep.group.address, ep.port)

    def sendto_from(self, data: Payload, address: str | IPAddress, port: int,
                    source: str | IPAddress) -> int:
        """Send one datagram to (address, port) with ``source`` as its source address
        (``sendmsg`` with an IP_PKTINFO ``ipi_spec_dst`` / IPV6_PKTINFO control message).

        ``source`` must be an address of this host: that needs no privileges. The kernel
        refuses a foreign one (EINVAL); sending with someone else's address would need
        IP_TRANSPARENT and CAP_NET_ADMIN, which this method does not attempt. Errors go
        through the same path as :meth:`sendto` (a queued ICMP error of an earlier
        datagram drained, ENOBUFS retried, then a typed error).

        Args:
            data: the payload (bytes-like), at most 65507 B over IPv4.
            address: destination group (or unicast) address of this socket's IP version.
            port: destination UDP port (an integer 0-65535).
            source: a local address of this host, of the socket's IP version.

        Returns:
            The number of bytes sent.

        Raises:
            McastValueError: ``source`` is not an address, or is of the other IP version.
            SendError: the kernel refused (a foreign source gives errno EINVAL).
            WouldBlockError: non-blocking socket with a full buffer.
            ClosedError: the socket is closed (``CLOSED``).
        """
        h = self._h
        h.check_open()
        ip = parse_ip(str(source), what="source address")
        h.check_family(ip, "source address")
        if isinstance(ip, ipaddress.IPv4Address):
            level, ctype = plat.cmsg_type(CmsgKind.PKTINFO4)
            info = pack_in_pktinfo(0, ip)
        else:
            level, ctype = plat.cmsg_type(CmsgKind.PKTINFO6)
            info = pack_in6_pktinfo(0, ip)
        dest = self.dest(address, port)
        sock = self._sock
        cmsg = [(level, ctype, info)]

        def send() -> int:
            return sock.sendmsg([data], cmsg, h.send_flags, dest)

        try:
            return send()
        except OSError as exc:
            return self._failed(exc, data, dest, send, f"{dest[0]}:{dest[1]} from {ip}")

    def _raise(self, exc: OSError, what: str) -> NoReturn:
        """Raise the typed error of a failed send to ``what``."""
        with translate(ErrOp.SEND, group=what, interface=self._opts.iface_name,
                       family=self._h.family):
            raise exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _icmp_drained(self, exc: OSError) -> bool:
        """True when ``exc`` is an ICMP error (port / host / net unreachable, IP_RECVERR)
        that an earlier unicast datagram left on the socket, not a failure of this send:
        the error queue is then drained and counted (``stats.icmp_errors``) here, the one
        place every send path (sendto, send, sendto_from, send_batch by GSO, sendmmsg or
        loop) hands such an error to."""
        if exc.errno not in ICMP_ERRNOS:
            return False
        self.stats.icmp_errors += self._h.drain_errors()
        return True

    def _failed(self, exc: OSError, data: Payload, dest: Dest | None,
                resend: Callable[[], int] | None = None, what: str = "") -> int:
        """The one error path of every send: a queued ICMP error of an earlier datagram
        is drained and the datagram sent again (unconnected), a transient ENOBUFS retried
        (never sleeping on a non-blocking socket), else count and raise the typed error.
        ``resend`` sends ``data`` again (default: sendto ``dest``, or send when None);
        ``what`` names the target in the message (default: ``dest``)."""
        h = self._h
        if h.closed:
            raise h.closed_error() from exc
        if resend is None:
            sock = self._sock
            if dest is None:
                def resend() -> int:
                    return sock.send(data, h.send_flags)
            else:
                def resend() -> int:
                    return sock.sendto(data, h.send_flags, dest)
        if self._icmp_drained(exc) and dest is not None:
            # not this datagram's error: a connected socket reports it (its peer
            # refused), an unconnected one sends again
            try:
                return resend()
            except OSError as again:
                exc = again
        if exc.errno == errno.ENOBUFS and h.timeout != 0.0:
            for attempt in range(_SEND_RETRIES):
                time.sleep(0.001 * (2**attempt))
                self.stats.send_retries += 1
                try:
                    return resend()
                except OSError as again:
                    if again.errno != errno.ENOBUFS:
                        exc = again
                        break
        if not isinstance(exc, BlockingIOError) and exc.errno != errno.EACCES:
            # would-block is flow control; EACCES (broadcast without SO_BROADCAST) is
            # refused bad input: neither is a failed send
            self.stats.send_errors += 1
            if exc.errno == errno.ENOBUFS:
                self.stats.send_drops += 1  # the egress queue dropped it (14.5)
        self._raise(exc, what or (f"{dest[0]}:{dest[1]}" if dest else "connected peer"))

    def send_batch(self, payloads: Sequence[Payload], address: str | IPAddress, port: int,
                   *, method: str = "auto") -> int:
        """Send every payload, in order, to (address, port) with as few syscalls as possible.

        ``method``: ``"auto"`` (UDP GSO when all payloads but the last have one size and
        the kernel takes it, else ``sendmmsg(2)``), ``"gso"`` (GSO or raise
        UnsupportedError), ``"mmsg"`` (sendmmsg only) or ``"loop"`` (one sendto each).
        Errors go through the same path as :meth:`sendto` (ENOBUFS retried, then a typed
        error); an error raised mid-batch carries ``datagrams_sent`` (how many went out
        before it). Safe to call from several threads on one socket.

        Args:
            payloads: the datagrams' payloads, sent in order.
            address: destination group (or unicast) address of this socket's IP version.
            port: destination UDP port (an integer 0-65535).
            method: ``"auto"``, ``"gso"``, ``"mmsg"`` or ``"loop"`` (above).

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
        a, p, dest, sa = self._dc
        if (address is a and port == p and method in _METHODS and type(payloads) in _SEQS
                and not self._h.closed):
            items = payloads  # the last target again: snapshot below only where needed
        else:
            items, dest, sa = self._checked(payloads, address, port, method)
        n = len(items)
        if n < 2:
            if n == 0:
                return 0
            if method != "gso":  # one datagram: one sendto, whatever the method
                try:
                    if sa:
                        _csendto(self._sock.fileno(), items[0], sa,  # type: ignore[misc]
                                 self._h.send_flags)
                    else:
                        self._sock.sendto(items[0], self._h.send_flags, dest)
                    return 1
                except OSError as exc:
                    return self._one_failed(exc, items, 0, dest)
        tx = self._batch
        if tx is None:
            tx = self._batch = _io.BatchSender(self._h.family)
        if (method == "mmsg" and sa and tx.cmmsg is not None and n <= tx.slots
                and tx.gen == _io.generation()):
            # the accelerator on the caller's list or tuple as it is: it holds every
            # payload for the call and refuses what is not bytes-like (as a snapshot would)
            try:
                sent = tx.cmmsg(self._sock.fileno(), items, sa, self._h.send_flags)
            except OSError as exc:
                return self._mmsg(tx, tuple(items), dest, 0, exc)
            return sent if sent >= n else self._mmsg(tx, tuple(items), dest, sent, None)
        if type(items) is not tuple:
            items = tuple(items)  # the Python loops below index it between calls
        if method == "loop" or (tx.python and method != "gso"):
            return self._loop(items, dest, 0)
        sent = 0
        if method != "mmsg":  # "auto" or "gso"
            sent = self._gso(tx, items, dest, method)
            if sent < 0:  # the buffer filled up part-way (non-blocking)
                return -sent
            if sent == n:
                return sent
        if tx.python:
            return self._loop(items, dest, sent)
        return self._mmsg(tx, items, dest, sent, None)

    def _checked(self, payloads: Sequence[Payload], address: str | IPAddress, port: int,
                 method: str) -> tuple[Sequence[Payload], Dest, bytes]:
        """The first send_batch to a target (or of an unusual sequence): refuse a closed
        socket and an unknown method, snapshot the payloads (another thread changing the
        caller's list cannot shorten the batch) and find the target (nothing to send:
        not even that). Returns (payloads, socket address, its packed bytes or b"")."""
        h = self._h
        if h.closed:
            raise h.closed_error()
        if method not in _METHODS:
            raise McastValueError(f"method {method!r}: use 'auto', 'gso', 'mmsg' or 'loop'")
        items = payloads if type(payloads) is tuple else tuple(payloads)
        if not items:
            return items, ("", 0), b""
        dest, sa = self._target(address, port)
        return items, dest, sa

    def _mmsg(self, tx: _io.BatchSender, items: tuple[Payload, ...], dest: Dest, sent: int,
              exc: OSError | None) -> int:
        """sendmmsg the payloads from ``sent`` on, handing each failure (``exc``: the one
        the call before raised) to the one error path. Returns how many were sent."""
        n = len(items)
        flags = self._h.send_flags
        while True:
            if exc is not None:
                if isinstance(exc, BlockingIOError) and sent:
                    return sent
                sent = self._one_failed(exc, items, sent, dest)
                exc = None
            if sent >= n:
                return sent
            try:
                sent += tx.sendmmsg(self._sock.fileno(), items[sent: sent + tx.slots], dest,
                                    flags)
            except OSError as err:
                exc = err

    def _gso(self, tx: _io.BatchSender, items: tuple[Payload, ...], dest: Dest,
             method: str) -> int:
        """Send by UDP GSO where it fits. Returns how many went out, negated when the
        buffer filled up (the batch stops there, as a non-blocking send does)."""
        n = len(items)
        # sizes in bytes, as the kernel cuts the joined payloads (len() of a memoryview
        # or array of a wider format counts items)
        sizes = (list(map(len, items)) if set(map(type, items)) <= _PLAIN
                 else [nbytes(p) for p in items])
        seg = sizes[0]
        same = sizes.count(seg)
        equal = same == n or (same == n - 1 and sizes[-1] < seg)
        if method == "gso" and not equal:
            raise McastValueError("method='gso' needs payloads of one size (the last may "
                                  "be shorter); use method='auto'")
        if not (equal and (n > 1 or method == "gso") and tx.gso_size_ok(seg)
                and plat.supports(self._h.family, Op.UDP_SEGMENT)):
            if method == "gso":
                raise UnsupportedError("UDP GSO is not available on this socket; use "
                                       "method='auto' or 'mmsg'")
            return 0
        flags = self._h.send_flags
        sent, err = tx.gso_send(self._sock, items, dest, flags)
        if err is not None and self._icmp_drained(err):  # not this batch's error
            more, err = tx.gso_send(self._sock, items[sent:], dest, flags)
            sent += more
        if err is not None and isinstance(err, BlockingIOError) and sent:
            return -sent
        if method == "gso" and tx.gso_ok is False:
            raise UnsupportedError(
                f"the kernel refused UDP GSO ({err}); use method='auto' or 'mmsg'")
        return sent

    def _loop(self, items: Sequence[Payload], dest: Dest, sent: int) -> int:
        sendto = self._sock.sendto
        flags = self._h.send_flags
        n = len(items)
        while sent < n:
            try:
                sendto(items[sent], flags, dest)
                sent += 1
            except OSError as exc:
                if isinstance(exc, BlockingIOError) and sent:
                    return sent
                sent = self._one_failed(exc, items, sent, dest)
        return sent

    def _one_failed(self, exc: OSError, items: Sequence[Payload], sent: int, dest: Dest
                    ) -> int:
        """Hand the failing datagram to :meth:`_failed` (retry or typed error)."""
        try:
            self._failed(exc, items[sent], dest)
        except McastError as err:
            err.datagrams_sent = sent
            raise
        return sent + 1
