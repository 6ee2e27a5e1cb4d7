"""The receive path of :class:`~mcastkit.MulticastSocket`.

Owns: metadata and timeout settings, recv / recv_many / recv_batch (recvmmsg through
``_batch``), decoding ancillary data into a Datagram, counting every datagram and drop in
``stats``, filtering datagrams of groups this socket never joined (G1), and the live
kernel drop counter (D1).
Must not: send, join, or change memberships.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from typing import Final, NoReturn

from . import _batch
from . import _platform as plat
from ._errors import (
    ClosedError,
    McastValueError,
    ReceiveTimeoutError,
    from_oserror,
    translate,
)
from ._packet import Datagram, decode_ancillary
from ._platform import Op
from ._sockbase import _check_range, _is_multicast_text, _SocketBase

_ANC_SIZE: Final = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) * 3 + socket.CMSG_SPACE(16)


class _ReceiverMixin(_SocketBase):
    """Receiving (part of MulticastSocket)."""

    def set_metadata(self, on: bool, *, timestamps: bool | None = None) -> None:
        """Turn per-datagram metadata on or off (may be toggled mid-stream)."""
        self._check_open()
        v = 1 if on else 0
        with translate("set_metadata", family=self._family):
            for op in (Op.RECV_PKTINFO, Op.RECV_TTL, Op.RXQ_OVFL):
                plat.setopt(self._sock, op, v)
            if timestamps is not None:
                plat.setopt(self._sock, Op.TIMESTAMPNS, 1 if timestamps else 0)
        self._metadata = on

    def set_min_ttl(self, min_ttl: int | None) -> None:
        """Drop datagrams whose arrival TTL / hop limit is below ``min_ttl`` (1-255; None
        turns the check off). 255 accepts only senders on this link, since every router
        decrements it (GTSM, RFC 5082; security goal G4). Turns metadata on, because the
        check needs the received TTL. Dropped datagrams are counted in
        ``stats.ttl_filtered``. Linux's IP_MINTTL does not apply to UDP, so the check is
        done here, after the kernel delivered the datagram.
        """
        self._check_open()
        if min_ttl is not None:
            _check_range("min_ttl", min_ttl, 1, 255)
            if not self._metadata:
                self.set_metadata(True)
        self._min_ttl = min_ttl or 0

    @property
    def min_ttl(self) -> int | None:
        """The arrival TTL / hop limit below which datagrams are dropped, or None."""
        return self._min_ttl or None

    @property
    def metadata(self) -> bool:
        """Whether per-datagram metadata is on (see :meth:`set_metadata`)."""
        return self._metadata

    def setblocking(self, flag: bool) -> None:
        """Like :meth:`socket.socket.setblocking`; the default for :meth:`recv`."""
        self.settimeout(None if flag else 0.0)

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
        self._set_call_timeout(timeout_s)
        while True:
            try:
                if self._metadata or self._recv_size < 65535:
                    d = self._recv_msg()
                else:
                    data, addr = self._sock.recvfrom(self._recv_size)
                    if addr is None and self._closed:  # woken by close() (D8)
                        raise ClosedError("the socket was closed while receiving")
                    d = Datagram(data, self._fmt_source(addr), addr[1])
            except OSError as exc:
                self._recv_failed(exc)
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
        if g is not None and not self._wanted(g, d.interface):
            st.filtered += 1
            return False
        if self._min_ttl and (d.ttl is None or d.ttl < self._min_ttl):
            st.ttl_filtered += 1
            return False
        st.datagrams += 1
        st.bytes += len(d.data)
        if d.truncated:
            st.truncated += 1
        return True

    def _set_call_timeout(self, timeout_s: float | None) -> None:
        """Apply one receive call's timeout (None: the socket's own; it does not stick)."""
        if timeout_s is not None and timeout_s < 0:
            raise McastValueError(f"timeout_s must be >= 0 or None, got {timeout_s}")
        try:
            self._apply_timeout(self._default_timeout if timeout_s is None else timeout_s)
        except OSError as exc:  # closed by another thread after the open check (D8)
            if self._closed:
                raise ClosedError("the socket was closed while receiving") from exc
            raise

    def _recv_failed(self, exc: OSError) -> NoReturn:
        """Raise the typed error for a failed receive (timeouts, closed, kernel errors)."""
        if isinstance(exc, TimeoutError):
            raise ReceiveTimeoutError(
                errno.ETIMEDOUT,
                f"no datagram within {self._timeout} s on {self._local_or_none()}",
                op="recv",
            ) from None
        if isinstance(exc, BlockingIOError):
            raise exc
        if self._closed:
            raise ClosedError("the socket was closed while receiving") from exc
        raise from_oserror(exc, "recv", family=self._family) from exc

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

    # recv_batch()'s receiver and buffers (mcastkit._batch), made on first use
    _batch_rx: _batch.BatchReceiver | None = None

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
        self._set_call_timeout(timeout_s)
        rx = self._batch_rx
        if rx is None or rx.impl != _batch.current_impl():
            rx = self._batch_rx = _batch.new_receiver(self._family, self._recv_size,
                                                      min(max_count, 1024))
        wait = self._timeout  # as applied above (another thread's drain may flip the socket's)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                got = rx.receive(self._sock, max_count, wait)
            except OSError as exc:
                self._recv_failed(exc)
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
        floor = self._min_ttl  # G4: a TTL check needs the per-datagram pass
        if summary is not None and got and not floor:
            g, ifx, dr, nbytes, ntrunc = summary
            if dr is not None and dr != last:
                if dr > last:
                    st.kernel_drops += dr - last
                self._last_drops = dr
            if g is not None and not self._wanted(g, ifx):
                st.filtered += len(got)
                return []
            st.datagrams += len(got)
            st.bytes += nbytes
            st.truncated += ntrunc
            return got
        verdict: dict[tuple[str, int | None], bool] = {}
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
                    ok = verdict[key] = self._wanted(g, d.interface)
                if not ok:
                    st.filtered += 1
                    continue
            if floor and (d.ttl is None or d.ttl < floor):
                st.ttl_filtered += 1
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

    def _wanted(self, g: str, ifindex: int | None) -> bool:
        """The group rule of :meth:`_accept` and :meth:`_accept_batch`: False for a
        multicast group this socket did not join, or did not join on the arrival interface.
        IPv6 sockets get a joined group from *any* interface some other socket joined it
        on (the kernel's per-socket check ignores the ifindex): security goal G1."""
        if not _is_multicast_text(g):
            return True
        if ifindex is None:
            return g in self._book.groups
        return self._book.get(ifindex, g) is not None
