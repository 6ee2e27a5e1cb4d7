"""The receive path of :class:`~mcastkit.MulticastSocket`: one path for every receive call.

Owns: the receive settings (metadata, timestamps, ``min_ttl``, ``recv_size``), the
readers (a single-datagram :class:`~mcastkit._io.PyReader` for ``recv`` / ``recv_many``
and a batch reader of the selected backend for ``recv_batch``), the drop watermark, and
:meth:`ReceivePath.take`, the one loop every receive call runs: read without waiting,
wait on one deadline per call (filtered datagrams never restart it: issue 14.3), admit
(count, G1 group filter, G4 TTL floor, truncation, kernel drops: written once here), and
translate failures into typed errors.
Must not: send, join, or change memberships (it reads the book's G1 rule); decode
datagrams or control messages (the backends and ``_packet`` do).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Final

from . import _io
from ._errors import ErrOp, NothingQueuedError, ReceiveTimeoutError, from_oserror
from ._handle import Handle
from ._membership import MembershipBook
from ._packet import Datagram
from ._platform import Op
from ._sockbase import RecvStats, _check_range, _check_timeout

__all__ = ["ReceivePath"]

_RING_SLOTS_MAX: Final = 1024
# errors an ICMP message for an earlier unicast datagram leaves on the socket (IP_RECVERR)
_ICMP_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})


class ReceivePath:
    """Receiving (a part of MulticastSocket).

    Args:
        h: the socket's handle.
        book: the memberships, read for the G1 group rule.
        stats: the socket's counters (this part writes the receive fields).
        recv_size: bytes kept per datagram (longer ones are cut and flagged).
    """

    def __init__(self, h: Handle, book: MembershipBook, stats: RecvStats,
                 recv_size: int) -> None:
        self._h = h
        self._book = book
        self.stats = stats
        self.recv_size = recv_size
        self._metadata = False
        self._timestamps = False
        self._min_ttl = 0  # 0: no check
        self._last_drops = 0  # the highest SO_RXQ_OVFL total seen
        self._drops_lock = threading.Lock()
        self._one = _io.PyReader(recv_size, ancillary=False)
        self._batch: _io.Reader | None = None  # made on the first recv_batch

    # ------------------------------------------------------------------ settings

    def set_metadata(self, on: bool, *, timestamps: bool | None = None) -> None:
        """Turn per-datagram metadata on or off (may be toggled mid-stream)."""
        h = self._h
        h.check_open()
        v = 1 if on else 0
        for op in (Op.RECV_PKTINFO, Op.RECV_TTL, Op.RXQ_OVFL):
            h.setopt(op, v, ErrOp.SET_METADATA)
        if timestamps is not None:
            h.setopt(Op.TIMESTAMPNS, 1 if timestamps else 0, ErrOp.SET_METADATA)
            self._timestamps = timestamps
        self._metadata = on
        self._one = _io.PyReader(self.recv_size, ancillary=on or self._timestamps)

    @property
    def metadata(self) -> bool:
        """Whether per-datagram metadata is on (see :meth:`set_metadata`)."""
        return self._metadata

    def set_min_ttl(self, min_ttl: int | None) -> None:
        """Drop datagrams whose arrival TTL / hop limit is below ``min_ttl`` (1-255; None
        turns the check off). 255 accepts only senders on this link, since every router
        decrements it (GTSM, RFC 5082; security goal G4). Turns metadata on, because the
        check needs the received TTL. Dropped datagrams are counted in
        ``stats.ttl_filtered``. Linux's IP_MINTTL does not apply to UDP, so the check is
        done here, after the kernel delivered the datagram.
        """
        self._h.check_open()
        if min_ttl is not None:
            _check_range("min_ttl", min_ttl, 1, 255)
            if not self._metadata:
                self.set_metadata(True)
        self._min_ttl = min_ttl or 0

    @property
    def min_ttl(self) -> int | None:
        """The arrival TTL / hop limit below which datagrams are dropped, or None."""
        return self._min_ttl or None

    # ------------------------------------------------------------------ receiving

    def recv(self, timeout_s: float | None = None) -> Datagram:
        """Receive one datagram, waiting up to ``timeout_s`` (None: the socket's own
        timeout from :meth:`settimeout` / ``blocking``; a per-call value does not stick).

        Raises:
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError); with
                ``timeout_s=0`` or on a non-blocking socket a :class:`NothingQueuedError`,
                which is also a BlockingIOError.
            ClosedError: the socket was closed.
            McastValueError: ``timeout_s`` is not a number >= 0 or None.
        """
        return self.take(1, timeout_s, self._one)[0]

    def recv_many(self, max_count: int = 64, timeout_s: float | None = None
                  ) -> list[Datagram]:
        """Receive up to ``max_count`` datagrams: waits for the first (like :meth:`recv`),
        then takes whatever else is already queued without waiting (one recvmsg each)."""
        _check_range("max_count", max_count, 1, 1 << 20)
        return self.take(max_count, timeout_s, self._one)

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
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError); with
                ``timeout_s=0`` or on a non-blocking socket a :class:`NothingQueuedError`,
                which is also a BlockingIOError.
            ClosedError: the socket was closed.
            McastValueError: ``max_count`` is not 1-1048576, or a bad ``timeout_s``.
        """
        _check_range("max_count", max_count, 1, 1 << 20)
        reader = self._batch
        if reader is None or reader.impl != _io.current_impl():
            reader = self._batch = _io.new_reader(self._h.family, self.recv_size,
                                                  min(max_count, _RING_SLOTS_MAX))
        return self.take(max_count, timeout_s, reader)

    def take(self, max_count: int, timeout_s: float | None, reader: _io.Reader
             ) -> list[Datagram]:
        """The one receive loop: read without waiting; when nothing is there, wait on the
        call's one deadline; admit what was read; repeat until something is admitted.

        The deadline is fixed the first time the loop would go round again, so datagrams
        that are read and filtered never extend the wait (issue 14.3).
        """
        if timeout_s is not None:
            _check_timeout(timeout_s)  # before any read: bad input loses nothing
        h = self._h
        if h.closed:
            raise h.closed_error()
        sock = h.sock
        read = reader.read
        started = woke = False
        deadline: float | None = None
        while True:
            try:
                got, summary = read(sock, max_count)
            except BlockingIOError:
                if woke:  # "readable" with nothing to read: ICMP errors queued? (14.5)
                    self.stats.icmp_errors += h.drain_errors()
                if not started:
                    started, deadline = True, self._deadline(timeout_s)
                self._wait(deadline, timeout_s)
                woke = True
                continue
            except OSError as exc:
                if exc.errno in _ICMP_ERRNOS and not h.closed:  # an earlier send's ICMP
                    self.stats.icmp_errors += h.drain_errors()
                    if not h.connected():  # a connected socket reports it (C7)
                        continue
                raise self._failed(exc) from None
            if not got:  # woken by shutdown(): closing, or closed elsewhere
                if h.closed:
                    raise h.closed_error(" while receiving")
                got, summary = [], None
            kept = self._admit(got, summary)
            if kept:
                return kept
            if not started:
                started, deadline = True, self._deadline(timeout_s)
            elif _io.remaining(deadline) == 0:
                raise self._timed_out(timeout_s)

    def _deadline(self, timeout_s: float | None) -> float | None:
        return _io.deadline_after(self._h.timeout if timeout_s is None else timeout_s)

    def _wait(self, deadline: float | None, timeout_s: float | None) -> None:
        try:
            _io.wait_ready(self._h.sock, deadline)
        except TimeoutError:
            raise self._timed_out(timeout_s) from None
        except OSError as exc:
            raise self._failed(exc) from None

    def _timed_out(self, timeout_s: float | None) -> ReceiveTimeoutError:
        h = self._h
        t = h.timeout if timeout_s is None else timeout_s
        where = h.local_or_none()
        if t == 0:
            return NothingQueuedError(errno.EAGAIN, f"recv: no datagram queued on {where}",
                                      op=ErrOp.RECV.value)
        return ReceiveTimeoutError(errno.ETIMEDOUT, f"recv: no datagram within {t} s on "
                                   f"{where}", op=ErrOp.RECV.value)

    def _failed(self, exc: OSError) -> Exception:
        """The typed error of a failed read (closed by another thread, kernel errors)."""
        if self._h.closed:
            return self._h.closed_error(" while receiving")
        return from_oserror(exc, ErrOp.RECV, family=self._h.family)

    def _admit(self, got: list[Datagram], summary: _io.Summary | None) -> list[Datagram]:
        """Count what was read and drop (and count) what this socket must not deliver:
        datagrams of groups it never joined here (G1) and below the TTL floor (G4). With
        a ``summary`` (one group, interface and drop count for the batch) it decides once
        for the batch; otherwise one pass, one decision per (group, interface)."""
        st = self.stats
        floor = self._min_ttl
        book = self._book
        if summary is not None and not floor:
            g, ifx, dr, nbytes, ntrunc = summary
            if dr is not None and dr > self._last_drops:
                self._note_drops(dr)
            if g is not None and not book.admits(g, ifx):
                st.filtered += len(got)
                return []
            st.datagrams += len(got)
            st.bytes += nbytes
            st.truncated += ntrunc
            return got
        kept: list[Datagram] = []
        verdict: dict[tuple[str, int | None], bool] = {}
        nbytes = ntrunc = 0
        for d in got:
            dr = d.drops
            if dr is not None and dr > self._last_drops:
                self._note_drops(dr)
            g = d.group
            if g is not None:
                key = (g, d.interface)
                ok = verdict.get(key)
                if ok is None:
                    ok = verdict[key] = book.admits(g, d.interface)
                if not ok:
                    st.filtered += 1
                    continue
            if floor and (d.ttl is None or d.ttl < floor):
                st.ttl_filtered += 1
                continue
            kept.append(d)
            nbytes += len(d.data)
            ntrunc += d.truncated
        st.datagrams += len(kept)
        st.bytes += nbytes
        st.truncated += ntrunc
        return kept

    def _note_drops(self, drops: int) -> None:
        """Advance the kernel-drop count to the total ``drops`` (SO_RXQ_OVFL). Only ever
        forward: a thread that finishes after another with an older total must not move
        it back and count the difference twice (issue 14.6)."""
        with self._drops_lock:
            last = self._last_drops
            if drops > last:
                self.stats.kernel_drops += drops - last
                self._last_drops = drops

    def kernel_drops(self) -> int:
        """The socket's live drop counter from ``/proc/net/udp(6)`` (includes drops after
        the last queued datagram, which SO_RXQ_OVFL cannot show yet). -1 if unreadable."""
        h = self._h
        h.check_open()
        inode = os.fstat(h.sock.fileno()).st_ino
        path = "/proc/thread-self/net/udp" + ("6" if h.family == socket.AF_INET6 else "")
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

