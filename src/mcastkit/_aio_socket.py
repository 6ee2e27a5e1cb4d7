"""The asyncio endpoint class behind :mod:`mcastkit.aio`: :class:`AsyncMulticastSocket`.

Owns: the consumer side of an endpoint (``await recv()``, ``recv_many``, ``async for``
from the bounded queue of :mod:`~mcastkit._aio_queue`, the delivered and discarded
counts), ``send`` / ``sendto`` / ``send_many`` (flow control through
:mod:`~mcastkit._aio_writer`), runtime membership calls (passed to the core), the
:class:`~mcastkit.aio.AsyncStats` snapshot, and the lifecycle (close fails waiters,
discards and counts). Its parts: the reading side (:class:`~._aio_reader.Intake`: reader
registration, one drain per wake-up, the stall guard), the parked sends
(:class:`~._aio_writer.Writability`) and the interface events
(:class:`~._aio_watch.EndpointEvents`).
Must not: make socket calls of its own (everything goes through
:class:`~mcastkit.MulticastSocket`), block the loop, create a task or future per
datagram, or let an exception escape into the loop. Not thread-safe: use one socket
from its loop's thread (``loop.call_soon_threadsafe(ep.close)`` from elsewhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from ._addr import Endpoint, Group, IPAddress
from ._aio_queue import BoundedQueue, DropPolicy, check_int, check_timeout, running_loop
from ._aio_reader import AsyncStats, Intake
from ._aio_watch import EndpointEvents, EventStream, InterfaceEvent
from ._aio_writer import Writability
from ._errors import ClosedError, ErrorCode, McastStateError
from ._membership import Membership
from ._netlink import NetlinkEvent
from ._packet import Datagram
from ._sockbase import InterfaceArg
from ._socket import MulticastSocket

__all__ = ["AsyncMulticastSocket"]


class AsyncMulticastSocket:
    """A :class:`~mcastkit.MulticastSocket` driven by an asyncio event loop.

    Usually made by :func:`open_multicast` or :func:`open_sender`; the constructor wraps a
    core socket you opened yourself (it is made non-blocking and owned from then on).

    Args:
        core: the socket to drive.
        queue_size: most datagrams held between the socket and the consumer.
        drop_policy: when the queue is full, ``"drop-newest"`` drops the arriving
            datagram, ``"drop-oldest"`` the oldest queued one. Both are counted.
        max_per_wakeup: most datagrams read per readiness callback, so a flooded socket
            cannot starve the loop.
        watch_interfaces: watch rtnetlink for interface changes (best effort: where it is
            unavailable, :attr:`watch_error` says why and nothing else changes). Every
            endpoint of a loop shares one watcher.
        on_event: called on the loop with each :class:`InterfaceEvent` (an ``async def``
            callback runs as a task); its exceptions are logged and counted, never
            raised into the loop.
        receive: False for a send-only endpoint (no reader is registered).

    Raises:
        McastStateError: no running event loop.
        McastValueError: a bad queue size, policy or batch size (the core stays open).
    """

    def __init__(
        self,
        core: MulticastSocket,
        *,
        queue_size: int = 1024,
        drop_policy: DropPolicy = "drop-newest",
        max_per_wakeup: int = 256,
        watch_interfaces: bool = True,
        on_event: Callable[[InterfaceEvent], Any] | None = None,
        receive: bool = True,
    ) -> None:
        loop = running_loop("AsyncMulticastSocket")
        check_int("max_per_wakeup", max_per_wakeup, 1)
        self._queue: BoundedQueue[Datagram] = BoundedQueue(queue_size, drop_policy,
                                                           what="datagram")
        self._items = self._queue.buffer  # recv()'s fast path pops from it directly
        self._core = core
        self._closed = False
        self._delivered = self._discarded = 0
        # The last timeout_s that recv() checked and found good: a loop calling recv(10)
        # passes the same (immutable) object every time, so the check runs once, not once
        # per datagram (it was a third of the per-datagram cost of recv() on a full queue).
        self._timeout_ok: object = None
        self._final_kernel_drops = -1
        self._writer = Writability(loop, core.fileno())
        core.setblocking(False)
        self._receiving = receive
        self._events = EndpointEvents(loop, core, on_event, watch_interfaces)
        try:  # the reading side registers the reader (a send-only endpoint has none)
            self._intake = Intake(loop, core, self._queue, max_per_wakeup, receive,
                                  on_gone=self.close, on_stall=self._stalled)
        except BaseException:
            self._events.close()
            raise

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"queued={len(self._queue)}"
        return f"<AsyncMulticastSocket {state} core={self._core!r}>"

    async def __aenter__(self) -> AsyncMulticastSocket:
        return self

    async def __aexit__(self, t: type[BaseException] | None, v: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    @property
    def socket(self) -> MulticastSocket:
        """The core socket (for options this class does not wrap)."""
        return self._core

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def events(self) -> EventStream:
        """Interface events (see :class:`InterfaceEvent`)."""
        return EventStream(self._events.queue)

    @property
    def on_event(self) -> Callable[[InterfaceEvent], Any] | None:
        """The interface-event callback (settable; ``async def`` callbacks run as tasks)."""
        return self._events.on_event

    @on_event.setter
    def on_event(self, fn: Callable[[InterfaceEvent], Any] | None) -> None:
        self._events.on_event = fn

    @property
    def watching_interfaces(self) -> bool:
        return self._events.hub is not None

    @property
    def watch_error(self) -> str | None:
        """Why interfaces are not watched (None when they are, or were not asked for)."""
        return self._events.error

    @property
    def memberships(self) -> tuple[Membership, ...]:
        return self._core.memberships

    @property
    def local_address(self) -> tuple[str, int]:
        return self._core.local_address

    @property
    def stats(self) -> AsyncStats:
        """A snapshot of the counters (reads the kernel's live drop counter while open)."""
        st = self._core.stats
        kd = self._final_kernel_drops if self._closed else self._core.kernel_drops()
        send_errors = st.send_errors  # the core does not count would-blocks
        rx = self._intake
        return AsyncStats(
            received=st.datagrams, bytes=st.bytes, delivered=self._delivered,
            queued=len(self._queue), queue_drops=self._queue.drops,
            discarded=self._discarded, kernel_drops=max(kd, st.kernel_drops),
            truncated=st.truncated, filtered=st.filtered, ttl_filtered=st.ttl_filtered,
            wakeups=rx.wakeups,
            max_batch=rx.max_batch, recv_errors=rx.recv_errors,
            send_waits=self._writer.waits, send_errors=max(0, send_errors),
            send_retries=st.send_retries, events=self._events.count,
            event_drops=self._events.drops, callback_errors=self._events.callback_errors,
            stalls=rx.stalls)

    # ------------------------------------------------------------------ receive

    def _stalled(self, why: str) -> None:
        """The reading side paused after wake-ups that read nothing: report it once."""
        iface = self._core.interface
        self._events.emit(InterfaceEvent(kind="stalled", name=iface.name if iface else "",
                                         index=iface.index if iface else 0, error=why))

    async def recv(self, timeout_s: float | None = None) -> Datagram:
        """The next datagram, waiting up to ``timeout_s`` (None: forever).

        Cancellation-safe: cancelling a pending ``recv()`` loses no datagram.

        Args:
            timeout_s: seconds to wait (0: only what is queued); None: wait forever.

        Returns:
            The datagram (as :meth:`MulticastSocket.recv` gives it).

        Raises:
            ClosedError: the socket is (or was, while waiting) closed.
            ReceiveTimeoutError: nothing within ``timeout_s`` (a TimeoutError).
            McastStateError: a send-only endpoint.
            McastValueError: ``timeout_s`` is negative, NaN or not a number (checked
                first: nothing is taken from the queue).
        """
        if timeout_s is not self._timeout_ok:  # None starts out as the remembered value
            check_timeout("timeout_s", timeout_s)  # raises before anything is taken
            self._timeout_ok = timeout_s
        items = self._items
        if items and not self._closed:  # fast path: no future, no suspension, no calls
            self._delivered += 1
            return items.popleft()
        d = await self._wait_one(check_timeout("timeout_s", timeout_s))
        self._delivered += 1
        return d

    def _wait_one(self, timeout_s: float | None) -> Awaitable[Datagram]:
        """The queue's wait for the next datagram (``timeout_s`` checked by the caller),
        after the state checks a wait needs."""
        if self._closed:
            raise ClosedError("the socket is closed; open a new one")
        if not self._receiving:
            raise McastStateError("this endpoint is send-only (open_sender); use "
                                  "open_multicast() to receive", code=ErrorCode.BAD_STATE)
        return self._queue.wait_get(timeout_s)

    async def recv_many(self, max_count: int = 64, timeout_s: float | None = None
                        ) -> list[Datagram]:
        """Wait for one datagram like :meth:`recv`, then take up to ``max_count`` - 1 more
        that are already queued.

        Args:
            max_count: the most datagrams to return (>= 1).
            timeout_s: seconds to wait for the first; None: wait forever.

        Returns:
            1 to ``max_count`` datagrams, in arrival order.

        Raises:
            ClosedError: the socket is (or was, while waiting) closed (``CLOSED``).
            ReceiveTimeoutError: nothing within ``timeout_s`` (``TIMEOUT``).
            McastStateError: a send-only endpoint (``BAD_STATE``).
            McastValueError: a bad ``max_count`` or ``timeout_s`` (``BAD_VALUE``).
        """
        check_int("max_count", max_count, 1)
        timeout_s = check_timeout("timeout_s", timeout_s)
        if not self._items or self._closed:  # wait (or raise) exactly like recv()
            first = await self._wait_one(timeout_s)
            more = self._queue.take(max_count - 1)
            self._delivered += len(more) + 1
            return [first, *more]
        out = self._queue.take(max_count)  # already queued: no await, one bulk copy
        self._delivered += len(out)
        return out

    def __aiter__(self) -> AsyncMulticastSocket:
        return self

    async def __anext__(self) -> Datagram:
        items = self._items
        if items and not self._closed:  # recv()'s fast path, without the extra coroutine
            self._delivered += 1
            return items.popleft()
        try:
            return await self.recv()
        except ClosedError:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------ send

    async def send(self, data: bytes | bytearray | memoryview,
                   endpoint: str | Endpoint | None = None) -> int:
        """Send one datagram to ``endpoint`` (or the connected group).

        When the socket buffer is full, waits until it is writable (flow control) instead
        of dropping.

        Args:
            data: the payload.
            endpoint: ``"GROUP:PORT"`` or an :class:`~mcastkit.Endpoint`; None: the
                connected group (:func:`open_sender`).

        Returns:
            The number of bytes sent.

        Raises:
            ClosedError: the socket is closed (also while waiting; ``CLOSED``).
            DatagramTooLargeError: as :meth:`MulticastSocket.send`
                (``DATAGRAM_TOO_LARGE``).
            SendError: as :meth:`MulticastSocket.send` (``SEND_FAILED``).
            McastValueError: a bad endpoint.
        """
        return await self._writer.flow(self._core.send, data, endpoint)

    async def sendto(self, data: bytes | bytearray | memoryview, address: str | IPAddress,
                     port: int) -> int:
        """Like :meth:`send`, to (address, port).

        Args:
            data: the payload.
            address: the destination group (or unicast) address.
            port: the destination UDP port.

        Returns:
            The number of bytes sent.

        Raises:
            ClosedError: the socket is closed (``CLOSED``).
            DatagramTooLargeError: as :meth:`MulticastSocket.sendto`.
            SendError: as :meth:`MulticastSocket.sendto`.
            McastValueError: a bad address or port.
        """
        return await self._writer.flow(self._core.sendto, data, address, port)

    async def send_many(self, payloads: Sequence[bytes | bytearray | memoryview],
                        address: str | IPAddress, port: int) -> int:
        """Send every payload, in order, with as few syscalls as the core manages
        (:meth:`MulticastSocket.send_batch`: UDP GSO / sendmmsg), waiting for writability
        whenever the buffer fills.

        Args:
            payloads: the datagrams' payloads, sent in order.
            address: the destination group (or unicast) address.
            port: the destination UDP port.

        Returns:
            The number of datagrams sent (all of them).

        Raises:
            ClosedError / DatagramTooLargeError / SendError: as :meth:`send`; an error
                raised mid-way leaves the earlier datagrams sent.
        """
        items = list(payloads)
        batch = getattr(self._core, "send_batch", None)
        flow = self._writer.flow
        done = 0
        while done < len(items):
            if batch is not None:
                done += await flow(batch, items[done:], address, port)
            else:
                await flow(self._core.sendto, items[done], address, port)
                done += 1
        return done

    # ------------------------------------------------------------------ memberships

    def join(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
             ) -> Membership:
        """Join ``group`` at runtime (see :meth:`MulticastSocket.join`).

        Args:
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface (name, index, local address); None: as
                :meth:`MulticastSocket.join` chooses.

        Returns:
            The membership as the kernel accepted it.

        Raises:
            McastError: as :meth:`MulticastSocket.join` (``MEMBERSHIP_LIMIT``,
                ``MODE_CONFLICT``, ``INTERFACE_NOT_FOUND``, ``CLOSED``...).
        """
        return self._core.join(group, interface)

    def leave(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
              ) -> None:
        """Leave ``group`` (see :meth:`MulticastSocket.leave`).

        Args:
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only one it is on.

        Raises:
            NotJoinedError: no such membership (``NOT_JOINED``).
            McastError: otherwise as :meth:`MulticastSocket.leave`.
        """
        self._core.leave(group, interface)

    def join_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                    interface: InterfaceArg | None = None) -> Membership:
        """Receive ``group`` only from ``source`` (see :meth:`MulticastSocket.join_source`).

        Args:
            source: the unicast address of the sender.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface (name, index, local address); None: as
                :meth:`MulticastSocket.join` chooses.

        Returns:
            The membership with its sources.

        Raises:
            McastError: as :meth:`MulticastSocket.join_source` (``MODE_CONFLICT``,
                ``SOURCE_FILTER``, ``BAD_ADDRESS``...).
        """
        return self._core.join_source(source, group, interface)

    def leave_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                     interface: InterfaceArg | None = None) -> None:
        """Drop one source (see :meth:`MulticastSocket.leave_source`).

        Args:
            source: the unicast address of the sender.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only one it is on.

        Raises:
            NotJoinedError: no such source-specific membership (``NOT_JOINED``).
            McastError: otherwise as :meth:`MulticastSocket.leave_source`.
        """
        self._core.leave_source(source, group, interface)

    def block_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                     interface: InterfaceArg | None = None) -> None:
        """Stop receiving ``source`` (see :meth:`MulticastSocket.block_source`).

        Args:
            source: the unicast address of the sender.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only one it is on.

        Raises:
            McastError: as :meth:`MulticastSocket.block_source` (``NOT_JOINED``,
                ``MODE_CONFLICT``, ``SOURCE_FILTER``...).
        """
        self._core.block_source(source, group, interface)

    def unblock_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                       interface: InterfaceArg | None = None) -> None:
        """Receive ``source`` again (see :meth:`MulticastSocket.unblock_source`).

        Args:
            source: the unicast address of the sender.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only one it is on.

        Raises:
            McastError: as :meth:`MulticastSocket.unblock_source` (``NOT_JOINED``,
                ``MODE_CONFLICT``...).
        """
        self._core.unblock_source(source, group, interface)

    def refresh_interfaces(self) -> list[Membership]:
        """Re-join name-chosen memberships now (the watcher does this by itself).

        Returns:
            The memberships re-joined.

        Raises:
            McastError: as :meth:`MulticastSocket.refresh_interfaces`.
        """
        return self._core.refresh_interfaces()

    # ------------------------------------------------------------------ interface events

    def _handle_netlink(self, events: Iterable[NetlinkEvent]) -> None:
        """Apply decoded rtnetlink events (the shared watcher calls the same; for tests)."""
        self._events.handle(events)

    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Stop reading, fail pending ``recv()`` / ``send()`` with ClosedError, discard
        what is queued (counted), leave every group and close. Idempotent; safe from
        inside ``async for``, ``on_event`` or any callback. Nothing runs after it."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._final_kernel_drops = self._core.kernel_drops()
        self._intake.close()
        self._writer.close()
        self._events.close()
        self._discarded += self._queue.close()
        self._core.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaitable."""
        self.close()

