"""The reading side of :mod:`mcastkit.aio`: one drain per wake-up, a guard against a
socket that reports readable but yields nothing, the counters, and opening the core.

Owns: :class:`Intake` (an endpoint's reader registration and readiness callback, which
drains into the owner's bounded queue or hands the drain to the consumer waiting on it,
and the wake-up, batch and error counters),
:func:`drain` (up to a budget of datagrams from a non-blocking core, without
waiting), :class:`StallGuard` (after repeated wake-ups that take nothing off the socket,
it takes the reader off the loop and puts it back later, doubling the pause up to one
second, so a socket shut down behind our back or failing every read cannot make the
loop spin; it reports each stall once), :class:`AsyncStats` (re-exported by
:mod:`mcastkit.aio`), and :func:`open_core` (the core's open call, with a raw
descriptor-limit ``OSError`` turned into a typed error naming ``ulimit -n``).
Must not: take datagrams off the queue or count deliveries (the consumer side does), run
user callbacks (it hands a stall and a closed core to the owner's callbacks), or sleep
on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from asyncio import selector_events
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, ParamSpec, TypeVar

from ._aio_queue import BoundedQueue
from ._errors import ClosedError, McastError
from ._packet import Datagram
from ._socket import MulticastSocket
from ._translate import descriptor_limit_error

__all__ = ["AsyncStats", "Intake", "StallGuard", "drain", "open_core"]

_log = logging.getLogger("mcastkit.aio")

_P = ParamSpec("_P")
_T = TypeVar("_T")
STALL_AFTER: Final = 16  # fruitless wake-ups in a row before the reader pauses
PAUSE_MIN_S: Final = 0.01
PAUSE_MAX_S: Final = 1.0
_EMPTIED_BELOW: Final = 32 << 10  # payload bytes: a short read this small emptied the socket


def _ignore(*_: object) -> None:
    """A callback that does nothing (what a closed part's callbacks become)."""


def drain(core: MulticastSocket, batch: Callable[[int], list[Datagram]] | None, budget: int,
          chunk: int = 256) -> tuple[list[Datagram], bool, Exception | None]:
    """Read up to ``budget`` datagrams from a non-blocking ``core`` without waiting (with
    ``batch``, i.e. ``core.recv_batch``, ``chunk`` at a time; else one ``recv`` each).

    Returns (datagrams, the core is closed, the receive error survived or None)."""
    got: list[Datagram] = []
    try:
        if batch is not None:
            if budget <= chunk:  # the common case: one recvmmsg, its list used as is
                return batch(budget), False, None
            while budget > 0:
                want = min(budget, chunk)
                part = batch(want)
                got.extend(part)
                budget -= len(part)
                if len(part) < want:
                    break
        else:
            recv = core.recv
            while budget > 0:
                got.append(recv())
                budget -= 1
    except BlockingIOError:
        pass
    except ClosedError:
        return got, True, None
    except (OSError, McastError) as exc:
        return got, False, exc
    return got, False, None


class StallGuard:
    """Keeps a reader that wakes for nothing from spinning the loop.

    Args:
        loop: the loop the reader is registered with.
        fd: the descriptor it watches.
        reader: the readiness callback (put back with ``add_reader`` after a pause).
        report: called once per stall with a message saying what the reads returned.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, reader: Callable[[], None],
                 report: Callable[[str], None]) -> None:
        self._loop = loop
        self._fd = fd
        self._reader = reader
        self._report = report
        self._fruitless = 0
        self._consumed = -1
        self._pause_s = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.stalls = 0  # pauses taken (each is one wake-up at most per pause)

    def fruitful(self) -> None:
        """A wake-up read datagrams: the socket is healthy."""
        self._fruitless = 0
        self._pause_s = 0.0

    def nothing_read(self, consumed: int, err: Exception | None) -> None:
        """A wake-up read nothing. ``consumed`` is the core's running count of datagrams
        it took off the socket (delivered or filtered): if it moved, the wake-up was not
        in vain. Otherwise count it and pause the reader when they pile up."""
        if consumed != self._consumed:
            self._consumed = consumed
            self.fruitful()
            return
        self._fruitless += 1
        if self._fruitless < STALL_AFTER:
            return
        first = self._pause_s == 0.0
        self._pause_s = min(PAUSE_MAX_S, max(PAUSE_MIN_S, self._pause_s * 2))
        self.stalls += 1
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        self._timer = self._loop.call_later(self._pause_s, self._resume)
        if first:
            what = f"every read failed ({err})" if err is not None else \
                "reads found nothing (was it shut down, e.g. by another process?)"
            self._report(f"the socket kept reporting readable but {what}; reading pauses "
                         f"for up to {PAUSE_MAX_S:g} s at a time until a read succeeds")

    def _resume(self) -> None:
        self._timer = None
        self._fruitless = STALL_AFTER - 1  # one more fruitless wake-up pauses again, longer
        self._loop.add_reader(self._fd, self._reader)

    def close(self) -> None:
        """Cancel a pending resume (the owner removes the reader) and drop the callbacks
        (they lead back to the owner: a cycle the garbage collector would have to find).
        Idempotent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._reader = self._report = _ignore


class Intake:
    """The reading side of one endpoint: the reader registration, a drain of up to
    ``max_per_wakeup`` datagrams into the queue per readiness, and the stall guard.

    When the socket turns readable while a consumer waits on an empty queue, the
    callback does not read: it wakes that consumer, which reads (:meth:`pull`) in its own
    step, just before it takes the datagrams. So a burst that wakes many endpoints at
    once is read and used endpoint by endpoint while it is in the CPU cache, instead of
    every endpoint's datagrams being read before the first consumer runs. When no
    consumer waits (or the woken one was cancelled), the callback reads into the queue.

    Args:
        loop: the running loop.
        core: the non-blocking socket to read.
        queue: the owner's bounded queue (this side only puts into it).
        max_per_wakeup: most datagrams read per callback, so a flooded socket cannot
            starve the loop.
        receive: False for a send-only endpoint (no reader is registered).
        on_gone: called when the core turns out closed (the owner closes itself).
        on_stall: called with a message when the reader pauses (see :class:`StallGuard`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, core: MulticastSocket,
                 queue: BoundedQueue[Datagram], max_per_wakeup: int, receive: bool, *,
                 on_gone: Callable[[], None], on_stall: Callable[[str], None]) -> None:
        self._loop = loop
        self._core = core
        self._queue = queue
        self._budget = max_per_wakeup
        self._fd = core.fileno()
        self._batch: Callable[[int], list[Datagram]] | None = getattr(core, "recv_batch",
                                                                      None)
        self._on_gone = on_gone
        self._closed = False
        self.wakeups = self.max_batch = self.recv_errors = 0
        self._stall = StallGuard(loop, self._fd, self.on_readable, on_stall)
        self._handoff = False  # a consumer was woken to read and has not read yet
        # On the selector loop a step runs after the poll that queued this iteration's
        # callbacks: a readiness polled before a pull emptied the socket is stale.
        self._stale_after_pull = isinstance(loop, selector_events.BaseSelectorEventLoop)
        self._pulled = False  # a pull emptied the socket after this iteration's poll
        self._registered = receive
        if receive:
            queue.refill = self.pull
            loop.add_reader(self._fd, self.on_readable)

    @property
    def stalls(self) -> int:
        """Pauses taken by the stall guard."""
        return self._stall.stalls

    def on_readable(self) -> None:
        """Readiness callback: hand the read to a consumer waiting on an empty queue, or
        drain up to ``max_per_wakeup`` datagrams into the queue."""
        if self._closed:
            return
        if self._pulled:  # polled before a consumer's read emptied the socket: stale
            self._pulled = False
            return
        if (not self._handoff and not self._queue and not self._core.closed
                and self._queue.wake_one()):
            self._handoff = True
            return
        self._read()

    def pull(self) -> None:
        """The queue's ``refill``: a consumer woken by :meth:`on_readable` reads now."""
        if self._handoff and not self._closed:
            st = self._core.stats
            before = st.bytes
            n = self._read()
            # Fewer than asked, and a small batch: the read ended on an empty socket (the
            # core also ends a batch of large datagrams early, near 128 KiB of payload:
            # then more is queued and this iteration's readiness is genuine). A wrong
            # guess costs one loop iteration, never a datagram.
            self._pulled = (self._stale_after_pull and n < self._budget
                            and st.bytes - before < _EMPTIED_BELOW)

    def _read(self) -> int:
        """Drain up to ``max_per_wakeup`` datagrams into the queue; how many were read."""
        self._handoff = False
        self.wakeups += 1
        got, gone, err = drain(self._core, self._batch, self._budget)
        if err is not None:
            self.recv_errors += 1
            _log.debug("receive error survived: %s", err)
        if got:
            self.max_batch = max(self.max_batch, len(got))
            self._queue.put_many(got)
        if gone or self._core.closed:
            self._on_gone()
        elif got:
            self._stall.fruitful()
        else:  # readable, yet nothing read: unless the core consumed (filtered) some, back off
            st = self._core.stats
            self._stall.nothing_read(st.datagrams + st.filtered + st.ttl_filtered, err)
        return len(got)

    def close(self) -> None:
        """Take the reader off the loop and cancel a pending resume. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._registered and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self._stall.close()
        # no cycles left through the owner's callbacks: a closed endpoint is freed by
        # reference counting at once, not by a full collection later (hundreds of
        # endpoints made one take tens of ms in the middle of other work)
        self._on_gone = _ignore
        if self._queue.refill == self.pull:
            self._queue.refill = None


def open_core(fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> _T:
    """Call the core's open function; a raw EMFILE/ENFILE becomes a typed
    :class:`~mcastkit.McastOSError` naming the descriptor limit (typed errors pass)."""
    try:
        return fn(*args, **kw)
    except McastError:
        raise
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise descriptor_limit_error(exc, "open a multicast socket") from exc
        raise


@dataclass(frozen=True, slots=True, kw_only=True)
class AsyncStats:
    """A snapshot of an :class:`~mcastkit.aio.AsyncMulticastSocket`'s counters.

    Every datagram the kernel accepted for the socket ends up in exactly one place:
    ``received == delivered + queued + queue_drops + discarded``, and datagrams the kernel
    itself dropped (socket buffer full) are ``kernel_drops``.

    Attributes:
        received: datagrams read from the socket (after the core's group filter).
        bytes: payload bytes read.
        delivered: datagrams handed to the consumer.
        queued: datagrams waiting in the queue now.
        queue_drops: datagrams dropped because the queue was full (the drop policy).
        discarded: datagrams still queued when the socket was closed.
        kernel_drops: datagrams the kernel dropped (receive buffer full), live.
        truncated: datagrams cut to ``recv_size`` (as in :class:`~mcastkit.RecvStats`).
        filtered: datagrams for a group never joined, dropped (as in RecvStats).
        ttl_filtered: datagrams below ``min_ttl``, dropped (as in RecvStats).
        wakeups: reads of the socket (by the reader, or by the consumer it woke).
        max_batch: most datagrams read in one of them.
        recv_errors: receive errors counted and survived.
        send_waits: sends that found the buffer full and waited for writability.
        send_errors: failed sends (core counter).
        send_retries: sends retried after a transient ENOBUFS (core counter).
        events: interface events emitted.
        event_drops: interface events dropped from a full events queue.
        callback_errors: exceptions raised by ``on_event`` (logged, isolated).
        stalls: pauses of the reader after wake-ups that read nothing (see the
            ``"stalled"`` event).
    """

    received: int
    bytes: int
    delivered: int
    queued: int
    queue_drops: int
    discarded: int
    kernel_drops: int
    truncated: int
    filtered: int
    ttl_filtered: int
    wakeups: int
    max_batch: int
    recv_errors: int
    send_waits: int
    send_errors: int
    send_retries: int
    events: int
    event_drops: int
    callback_errors: int
    stalls: int = 0
