"""The send path of :class:`~mcastkit.MulticastSocket`.

Owns: sendto (with its one-entry destination cache), send, sendto_from, the ENOBUFS
retry and typed send errors, and send_batch (sendmmsg / UDP GSO through ``_batch``).
Must not: set socket options (``_options``) or receive.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from typing import Final

from . import _batch
from . import _platform as plat
from ._addr import Endpoint, IPAddress, parse_endpoint, parse_ip
from ._errors import ClosedError, McastError, McastValueError, UnsupportedError, translate
from ._interfaces import resolve_interface
from ._packet import CmsgKind
from ._platform import Op
from ._platform._structs import pack_in6_pktinfo, pack_in_pktinfo
from ._sockbase import _SocketBase

_SEND_RETRIES: Final = 3


class _SenderMixin(_SocketBase):
    """Sending (part of MulticastSocket)."""

    def _dest(
        self, address: str | IPAddress, port: int
    ) -> tuple[str, int] | tuple[str, int, int, int]:
        """Validate (address, port) and build the socket address (the cache-miss path)."""
        host = str(address)
        zone = ""
        if self._family == socket.AF_INET6 and "%" in host:
            host, zone = host.split("%", 1)
        try:  # numeric only: names are never resolved on the send path
            socket.inet_pton(self._family, host)
        except (OSError, ValueError):
            ip = parse_ip(host, what="destination")  # raises McastValueError for non-IPs
            self._check_family(ip, "destination")  # and this for the other IP version
            host = str(ip)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise McastValueError(f"destination port must be an integer 0-65535, got {port!r}")
        if self._family == socket.AF_INET6:
            scope = 0
            if zone:
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
        self._check_open()
        ip = parse_ip(str(source), what="source address")
        self._check_family(ip, "source address")
        if isinstance(ip, ipaddress.IPv4Address):
            level, ctype = plat.cmsg_type(CmsgKind.PKTINFO4)
            info = pack_in_pktinfo(0, ip)
        else:
            level, ctype = plat.cmsg_type(CmsgKind.PKTINFO6)
            info = pack_in6_pktinfo(0, ip)
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

    # send_batch()'s sender (mcastkit._batch), made on first use
    _batch_tx: _batch.BatchSender | None = None

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
        # a snapshot: another thread changing the caller's list cannot shorten the batch
        items = payloads if isinstance(payloads, tuple) else tuple(payloads)
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
            err.datagrams_sent = sent
            raise
        return sent + 1
