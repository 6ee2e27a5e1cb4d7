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
from collections import deque
from typing import Final

from . import _io
from ._errors import ErrOp, NothingQueuedError, ReceiveTimeoutError
from ._handle import ICMP_ERRNOS, Handle
from ._membership import MembershipBook
from ._packet import Datagram
from ._platform import Op
from ._sockbase import RecvStats, _check_range, _check_timeout
from ._translate import from_oserror

__all__ = ["ReceivePath"]

_RING_SLOTS_MAX: Final = 1024
#: datagrams one recv() may take from the kernel at once; the next calls are served from
#: them (the accelerator also stops at ~128 KiB of small and 512 KiB of large datagrams)
_READ_AHEAD: Final = 64
_INF: Final = float("inf")
_MAX_COUNT: Final = 1 << 20  # the most datagrams one recv_many / recv_batch may return


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
        self._batch: _io.Reader | None = None  # made on the first recv / recv_batch
        # the backend choice as of _io.generation() == self._gen (re-read when it moves)
        self._gen = -1
        self._impl = ""
        # read by recv() in its batch, admitted, not yet returned (counted when returned)
        self._ahead: deque[Datagram] = deque()

    # ------------------------------------------------------------------ settings

    def set_metadata(self, on: bool, *, timestamps: bool | None = None) -> None:
        """Turn per-datagram metadata on or off (may be toggled mid-stream).

        With metadata on, every :class:`~mcastkit.Datagram` carries its destination
        group, arrival interface, TTL / hop limit and the kernel drop count (IP_PKTINFO,
        IP_RECVTTL, SO_RXQ_OVFL).

        Args:
            on: True to receive the metadata.
            timestamps: also receive the kernel arrival time (SO_TIMESTAMPNS); None
                leaves that setting as it is.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
            McastOSError: the kernel refused an option.
        """
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
        """Drop datagrams whose arrival TTL / hop limit is below ``min_ttl``.

        255 accepts only senders on this link, since every router decrements it (GTSM,
        RFC 5082; security goal G4). Turns metadata on, because the check needs the
        received TTL. Dropped datagrams are counted in ``stats.ttl_filtered``. Linux's
        IP_MINTTL does not apply to UDP, so the check is done here, after the kernel
        delivered the datagram.

        Args:
            min_ttl: 1-255; None turns the check off.

        Raises:
            McastValueError: ``min_ttl`` outside 1-255 (``BAD_VALUE``); nothing changes.
            ClosedError: the socket is closed (``CLOSED``).
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
        """Receive one datagram, waiting up to ``timeout_s``.

        Args:
            timeout_s: seconds to wait for the first datagram (0: do not wait); None: the
                socket's own timeout from :meth:`settimeout` / ``blocking`` (a per-call
                value does not stick).

        Returns:
            The datagram: payload, sender, and (metadata on) group, interface, TTL.

        Reads ahead (with the compiled accelerator): one call takes what is already
        queued (up to 64 datagrams, fewer when they are large) in one batch and the next
        calls return them without a system call. They are no longer in the kernel's
        queue, so ``fileno()`` need not be readable while :meth:`pending` is not 0: check
        it before waiting on the descriptor yourself (as with
        :meth:`ssl.SSLSocket.pending`). ``stats`` count a datagram when it is returned.

        Raises:
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError); with
                ``timeout_s=0`` or on a non-blocking socket a :class:`NothingQueuedError`,
                which is also a BlockingIOError.
            ClosedError: the socket was closed.
            McastValueError: ``timeout_s`` is not a number >= 0 or None.
        """
        ahead = self._ahead
        if not ahead:
            reader = self._batch
            if reader is None or self._gen != _io.generation():  # first call, or switched
                reader = self._reader(_READ_AHEAD) if self._backend() == "c" else None
            if reader is None or reader.impl != "c":  # the fallbacks read one at a time
                return self.take(1, timeout_s, self._one)[0]
            got = self.take(_READ_AHEAD, timeout_s, reader, count=False)
            d = got[0]
            if len(got) > 1:
                ahead.extend(got[1:])
        else:
            if timeout_s is not None and (type(timeout_s) is not float
                                          or not 0.0 <= timeout_s < _INF):
                _check_timeout(timeout_s)  # bad input is refused on every path
            if self._h.closed:
                raise self._h.closed_error()
            try:
                d = ahead.popleft()
            except IndexError:  # another thread took the last one: read like above
                return self.recv(timeout_s)
        st = self.stats
        st.datagrams += 1
        st.bytes += len(d.data)
        if d.truncated:
            st.truncated += 1
        return d

    def pending(self) -> int:
        """How many datagrams :meth:`recv` already read from the kernel.

        They are returned next, without waiting; the descriptor is not readable for them,
        so check this before waiting on ``fileno()`` yourself.

        Returns:
            The number of read-ahead datagrams (0 once closed).
        """
        return 0 if self._h.closed else len(self._ahead)

    def _from_ahead(self, max_count: int, timeout_s: float | None) -> list[Datagram]:
        """Up to ``max_count`` read-ahead datagrams, counted as returned ([] if none)."""
        ahead = self._ahead
        if not ahead:
            return []
        if timeout_s is not None:
            _check_timeout(timeout_s)
        h = self._h
        if h.closed:
            raise h.closed_error()
        out: list[Datagram] = []
        take = ahead.popleft
        try:
            while len(out) < max_count:
                out.append(take())
        except IndexError:  # emptied (possibly by another thread)
            pass
        st = self.stats
        st.datagrams += len(out)
        st.bytes += sum(len(d.data) for d in out)
        st.truncated += sum(d.truncated for d in out)
        return out

    def recv_many(self, max_count: int = 64, timeout_s: float | None = None
                  ) -> list[Datagram]:
        """Receive up to ``max_count`` datagrams, one ``recvmsg`` each.

        Waits for the first (like :meth:`recv`), then takes whatever else is already
        queued without waiting. Datagrams :meth:`recv` read ahead come first.

        Args:
            max_count: the most datagrams to return, 1-1048576.
            timeout_s: seconds to wait for the first datagram (0: do not wait); None: the
                socket's own timeout from :meth:`settimeout` / ``blocking`` (a per-call
                value does not stick).

        Returns:
            1 to ``max_count`` datagrams, in arrival order.

        Raises:
            ReceiveTimeoutError: nothing arrived in time (``TIMEOUT``); with
                ``timeout_s=0`` or on a non-blocking socket a :class:`NothingQueuedError`.
            ClosedError: the socket was closed (``CLOSED``).
            McastValueError: ``max_count`` is not 1-1048576, or a bad ``timeout_s``.
        """
        _check_range("max_count", max_count, 1, _MAX_COUNT)
        return (self._from_ahead(max_count, timeout_s)
                or self.take(max_count, timeout_s, self._one))

    def recv_batch(self, max_count: int = 64, timeout_s: float | None = None
                   ) -> list[Datagram]:
        """Receive up to ``max_count`` datagrams with one ``recvmmsg(2)`` call.

        Waits for the first datagram like :meth:`recv` (``timeout_s``; None: the socket's
        timeout), then takes whatever else is already queued without waiting
        (MSG_WAITFORONE semantics). Datagrams :meth:`recv` read ahead come first.
        Datagrams, metadata, truncation flags and the ``stats`` counters are exactly what
        the same number of :meth:`recv` calls would give. Buffers are made on the first
        call and grow with the traffic (``recv_size`` bytes per slot, at most 8 MiB with
        the accelerator, which also returns a batch of small datagrams once it carries
        about 128 KiB of payload, and large ones (4 KiB and more, read straight into their
        bytes) up to 512 KiB at a time). Falls back to a loop of ``recvmsg`` where
        recvmmsg or ctypes is unavailable.

        Args:
            max_count: the most datagrams to return, 1-1048576.
            timeout_s: seconds to wait for the first datagram (0: do not wait); None: the
                socket's own timeout from :meth:`settimeout` / ``blocking`` (a per-call
                value does not stick).

        Returns:
            1 to ``max_count`` datagrams, in arrival order.

        Raises:
            ReceiveTimeoutError: nothing arrived in time (a TimeoutError); with
                ``timeout_s=0`` or on a non-blocking socket a :class:`NothingQueuedError`,
                which is also a BlockingIOError.
            ClosedError: the socket was closed.
            McastValueError: ``max_count`` is not 1-1048576, or a bad ``timeout_s``.
        """
        if type(max_count) is not int or not 0 < max_count <= _MAX_COUNT:
            _check_range("max_count", max_count, 1, _MAX_COUNT)
        if self._ahead:
            got = self._from_ahead(max_count, timeout_s)
            if got:
                return got
        reader = self._batch
        if reader is None or self._gen != _io.generation():  # first call, or switched
            reader = self._reader(max_count)
        return self.take(max_count, timeout_s, reader)

    def _backend(self) -> str:
        """The selected backend (``_io.current_impl``), re-read only when the choice moved
        (``_io.generation``); a batch reader of another backend is dropped then."""
        gen = _io.generation()
        if gen != self._gen:
            self._impl = impl = _io.current_impl()
            self._gen = gen
            if self._batch is not None and self._batch.impl != impl:
                self._batch = None  # made again, for the selected backend, when next needed
        return self._impl

    def _reader(self, max_count: int) -> _io.Reader:
        """The batch reader of the selected backend (made on first use, sized to need)."""
        self._backend()
        reader = self._batch
        if reader is None:
            reader = self._batch = _io.new_reader(self._h.family, self.recv_size,
                                                  min(max_count, _RING_SLOTS_MAX))
        return reader

    def take(self, max_count: int, timeout_s: float | None, reader: _io.Reader,
             count: bool = True) -> list[Datagram]:
        """The one receive loop: read without waiting; when nothing is there, wait on the
        call's one deadline; admit what was read; repeat until something is admitted.
        ``count=False`` leaves counting the admitted datagrams to the caller (recv()
        counts each when it returns it).

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
                if exc.errno in ICMP_ERRNOS and not h.closed:  # an earlier send's ICMP
                    self.stats.icmp_errors += h.drain_errors()
                    if not h.connected():  # a connected socket reports it (C7)
                        continue
                raise self._failed(exc) from None
            if not got:  # woken by shutdown(): closing, or closed elsewhere
                if h.closed:
                    raise h.closed_error(" while receiving")
                got, summary = [], None
            kept = self._admit(got, summary, count)
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
        if t == 0:  # the common end of a non-blocking drain: cheap, no syscall
            return NothingQueuedError(errno.EAGAIN, "recv: no datagram queued (not waiting)",
                                      op=ErrOp.RECV.value)
        return ReceiveTimeoutError(errno.ETIMEDOUT, f"recv: no datagram within {t} s on "
                                   f"{h.local_or_none()}", op=ErrOp.RECV.value)

    def _failed(self, exc: OSError) -> Exception:
        """The typed error of a failed read (closed by another thread, kernel errors)."""
        if self._h.closed:
            return self._h.closed_error(" while receiving")
        return from_oserror(exc, ErrOp.RECV, family=self._h.family)

    def _admit(self, got: list[Datagram], summary: _io.Summary | None, count: bool = True
               ) -> list[Datagram]:
        """Count what was read and drop (and count) what this socket must not deliver:
        datagrams of groups it never joined here (G1) and below the TTL floor (G4). With
        a ``summary`` (one group, interface and drop count for the batch) it decides once
        for the batch; otherwise one pass, one decision per (group, interface)."""
        st = self.stats
        floor = self._min_ttl
        if summary is not None and not floor:
            g, ifx, dr, nbytes, ntrunc = summary
            if dr is not None and dr > self._last_drops:
                self._note_drops(dr)
            if g is not None:
                book = self._book
                ok = book.verdicts.get((g, ifx))  # the book's answers so far
                if not (book.admits(g, ifx) if ok is None else ok):
                    st.filtered += len(got)
                    return []
            if count:
                st.datagrams += len(got)
                st.bytes += nbytes
                st.truncated += ntrunc
            return got
        book = self._book
        kept: list[Datagram] = []
        verdict = book.verdicts  # the book's answers so far (it adds to them)
        nbytes = ntrunc = 0
        for d in got:
            dr = d.drops
            if dr is not None and dr > self._last_drops:
                self._note_drops(dr)
            g = d.group
            if g is not None:
                ok = verdict.get((g, d.interface))
                if ok is None:
                    ok = book.admits(g, d.interface)
                    verdict = book.verdicts
                if not ok:
                    st.filtered += 1
                    continue
            if floor and (d.ttl is None or d.ttl < floor):
                st.ttl_filtered += 1
                continue
            kept.append(d)
            nbytes += len(d.data)
            ntrunc += d.truncated
        if count:
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
        """The socket's live drop counter from ``/proc/net/udp(6)``.

        It includes drops after the last queued datagram, which SO_RXQ_OVFL cannot show
        yet (field notes D1).

        Returns:
            Datagrams the kernel dropped for this socket so far, or -1 if unreadable.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
        """
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

