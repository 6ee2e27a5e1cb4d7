"""asyncio face of mcastkit: multicast sockets for an event loop (stock asyncio or uvloop).

Owns: :func:`open_multicast` / :func:`open_sender` and :class:`AsyncMulticastSocket`
(``await recv()``, ``async for``, a ``send()`` that waits for writability instead of
dropping): the reader registration and its wake-up (drained by
:mod:`~mcastkit._aio_reader` into the bounded queue of :mod:`~mcastkit._aio_queue`),
the send retry loop (parking on :mod:`~mcastkit._aio_writer`), and the lifecycle
(close fails waiters, discards and counts).
Interface watching (one shared rtnetlink watcher per loop, re-joins, events) lives in
:mod:`~mcastkit._aio_watch` (field notes B1-B3, D6-D8).
Must not: make socket calls of its own (everything goes through
:class:`~mcastkit.MulticastSocket`), block the loop, create a task or future per
datagram, or let an exception escape into the loop. Not thread-safe: use one socket
from its loop's thread (``loop.call_soon_threadsafe(ep.close)`` from elsewhere).

Example::

    import asyncio, mcastkit.aio

    async def main() -> None:
        async with mcastkit.aio.open_multicast("239.255.0.1:5000", interface="lo") as ep:
            async for d in ep:
                print(d.source, d.data)

    asyncio.run(main())
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, ParamSpec

from ._addr import Endpoint, Group, IPAddress
from ._aio_queue import BoundedQueue, check_int, check_policy, check_timeout, running_loop
from ._aio_queue import DropPolicy as DropPolicy
from ._aio_reader import AsyncStats as AsyncStats
from ._aio_reader import StallGuard, drain, open_core
from ._aio_watch import EndpointEvents
from ._aio_watch import EventStream as EventStream
from ._aio_watch import InterfaceEvent as InterfaceEvent
from ._aio_writer import Writability
from ._errors import ClosedError, ErrorCode, McastStateError
from ._interfaces import Interface
from ._membership import Membership
from ._netlink import NetlinkEvent
from ._packet import Datagram
from ._socket import MulticastSocket
from ._socket import open_receiver as _open_receiver
from ._socket import open_sender as _open_sender

__all__ = [
    "AsyncMulticastSocket",
    "AsyncStats",
    "DropPolicy",
    "EventStream",
    "InterfaceEvent",
    "open_multicast",
    "open_sender",
]

_log = logging.getLogger("mcastkit.aio")
InterfaceArg = str | int | IPAddress | Interface
_P = ParamSpec("_P")


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
        self._max_per_wakeup = check_int("max_per_wakeup", max_per_wakeup, 1)
        self._queue: BoundedQueue[Datagram] = BoundedQueue(queue_size, drop_policy,
                                                           what="datagram")
        self._items = self._queue.buffer  # recv()'s fast path pops from it directly
        self._loop = loop
        self._core = core
        self._closed = False
        self._fd = core.fileno()
        self._recv_batch: Callable[[int], list[Datagram]] | None = getattr(
            core, "recv_batch", None)
        self._delivered = self._discarded = self._wakeups = self._max_batch = 0
        self._recv_errors = 0
        self._final_kernel_drops = -1
        self._writer = Writability(loop, self._fd)
        core.setblocking(False)
        self._receiving = receive
        self._events = EndpointEvents(loop, core, on_event, watch_interfaces)
        self._stall = StallGuard(loop, self._fd, self._on_readable, self._stalled)
        if receive:
            try:
                loop.add_reader(self._fd, self._on_readable)
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
        return AsyncStats(
            received=st.datagrams, bytes=st.bytes, delivered=self._delivered,
            queued=len(self._queue), queue_drops=self._queue.drops,
            discarded=self._discarded, kernel_drops=max(kd, st.kernel_drops),
            truncated=st.truncated, filtered=st.filtered, ttl_filtered=st.ttl_filtered,
            wakeups=self._wakeups,
            max_batch=self._max_batch, recv_errors=self._recv_errors,
            send_waits=self._writer.waits, send_errors=max(0, send_errors),
            send_retries=st.send_retries, events=self._events.count,
            event_drops=self._events.queue.drops, callback_errors=self._events.callback_errors,
            stalls=self._stall.stalls)

    # ------------------------------------------------------------------ receive

    def _on_readable(self) -> None:
        """Readiness callback: drain up to ``max_per_wakeup`` datagrams into the queue."""
        if self._closed:
            return
        self._wakeups += 1
        got, gone, err = drain(self._core, self._recv_batch, self._max_per_wakeup)
        if err is not None:
            self._recv_errors += 1
            _log.debug("receive error survived: %s", err)
        if got:
            self._max_batch = max(self._max_batch, len(got))
            self._queue.put_many(got)
        if gone or self._core.closed:
            self.close()
        elif got:
            self._stall.fruitful()
        else:  # readable, yet nothing read: unless the core consumed (filtered) some, back off
            st = self._core.stats
            self._stall.nothing_read(st.datagrams + st.filtered + st.ttl_filtered, err)

    def _stalled(self, why: str) -> None:
        iface = self._core.interface
        self._events.emit(InterfaceEvent(kind="stalled", name=iface.name if iface else "",
                                         index=iface.index if iface else 0, error=why))

    async def recv(self, timeout_s: float | None = None) -> Datagram:
        """The next datagram, waiting up to ``timeout_s`` (None: forever).

        Cancellation-safe: cancelling a pending ``recv()`` loses no datagram.

        Raises:
            ClosedError: the socket is (or was, while waiting) closed.
            ReceiveTimeoutError: nothing within ``timeout_s`` (a TimeoutError).
            McastStateError: a send-only endpoint.
            McastValueError: ``timeout_s`` is negative, NaN or not a number (checked
                first: nothing is taken from the queue).
        """
        if timeout_s is not None:
            timeout_s = check_timeout("timeout_s", timeout_s)
        items = self._items
        if items and not self._closed:  # fast path: no future, no suspension
            self._delivered += 1
            return items.popleft()
        q = self._queue
        if self._closed:
            raise ClosedError("the socket is closed; open a new one")
        if not self._receiving:
            raise McastStateError("this endpoint is send-only (open_sender); use "
                                  "open_multicast() to receive", code=ErrorCode.BAD_STATE)
        d = await q.get(timeout_s)
        self._delivered += 1
        return d

    async def recv_many(self, max_count: int = 64, timeout_s: float | None = None
                        ) -> list[Datagram]:
        """Wait for one datagram like :meth:`recv`, then take up to ``max_count`` - 1 more
        that are already queued (same errors as :meth:`recv`)."""
        check_int("max_count", max_count, 1)
        timeout_s = check_timeout("timeout_s", timeout_s)
        if not self._items or self._closed:  # wait (or raise) exactly like recv()
            first = await self.recv(timeout_s)
            more = self._queue.take(max_count - 1)
            self._delivered += len(more)
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
        """Send one datagram to ``endpoint`` (or the connected group). When the socket
        buffer is full, waits until it is writable (flow control) instead of dropping.

        Raises:
            ClosedError: the socket is closed (also while waiting).
            DatagramTooLargeError / SendError: as :meth:`MulticastSocket.send`.
        """
        return await self._flow(self._core.send, data, endpoint)

    async def sendto(self, data: bytes | bytearray | memoryview, address: str | IPAddress,
                     port: int) -> int:
        """Like :meth:`send`, to (address, port)."""
        return await self._flow(self._core.sendto, data, address, port)

    async def send_many(self, payloads: Sequence[bytes | bytearray | memoryview],
                        address: str | IPAddress, port: int) -> int:
        """Send every payload, in order, with as few syscalls as the core manages
        (:meth:`MulticastSocket.send_batch`: UDP GSO / sendmmsg), waiting for writability
        whenever the buffer fills. Returns the number sent (all of them).

        Raises:
            ClosedError / DatagramTooLargeError / SendError: as :meth:`send`; an error
                raised mid-way leaves the earlier datagrams sent.
        """
        items = list(payloads)
        batch = getattr(self._core, "send_batch", None)
        done = 0
        while done < len(items):
            if batch is not None:
                done += await self._flow(batch, items[done:], address, port)
            else:
                await self._flow(self._core.sendto, items[done], address, port)
                done += 1
        return done

    async def _flow(self, fn: Callable[_P, int], *args: _P.args, **kw: _P.kwargs) -> int:
        """Call a non-blocking send; on would-block wait for writability and retry."""
        while True:
            if self._closed:
                raise ClosedError("the socket is closed; open a new one")
            try:
                return fn(*args, **kw)
            except BlockingIOError:
                await self._writer.wait()

    async def _writable(self) -> None:  # kept for tests: park like a send on a full buffer
        await self._writer.wait()

    def _on_writable(self) -> None:
        self._writer.on_writable()

    # ------------------------------------------------------------------ memberships

    def join(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
             ) -> Membership:
        """Join at runtime (see :meth:`MulticastSocket.join`; same errors)."""
        return self._core.join(group, interface)

    def leave(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
              ) -> None:
        """See :meth:`MulticastSocket.leave`."""
        self._core.leave(group, interface)

    def join_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                    interface: InterfaceArg | None = None) -> Membership:
        """See :meth:`MulticastSocket.join_source`."""
        return self._core.join_source(source, group, interface)

    def leave_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                     interface: InterfaceArg | None = None) -> None:
        """See :meth:`MulticastSocket.leave_source`."""
        self._core.leave_source(source, group, interface)

    def block_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                     interface: InterfaceArg | None = None) -> None:
        """See :meth:`MulticastSocket.block_source`."""
        self._core.block_source(source, group, interface)

    def unblock_source(self, source: str | IPAddress, group: str | IPAddress | Group,
                       interface: InterfaceArg | None = None) -> None:
        """See :meth:`MulticastSocket.unblock_source`."""
        self._core.unblock_source(source, group, interface)

    def refresh_interfaces(self) -> list[Membership]:
        """Re-join name-chosen memberships now (the watcher does this by itself)."""
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
        loop = self._loop
        with contextlib.suppress(Exception):
            self._final_kernel_drops = self._core.kernel_drops()
        live = not loop.is_closed()
        if live and self._receiving:
            with contextlib.suppress(Exception):
                loop.remove_reader(self._fd)
        self._writer.close()
        self._stall.close()
        self._events.close()
        self._discarded += self._queue.close()
        self._core.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaitable."""
        self.close()


def _make(core: MulticastSocket, **kw: Any) -> AsyncMulticastSocket:
    try:
        return AsyncMulticastSocket(core, **kw)
    except BaseException:
        core.close()
        raise


def open_multicast(
    *endpoints: str | Endpoint,
    interface: InterfaceArg | None = None,
    ttl: int = 1,
    loopback: bool = True,
    reuse_port: bool = False,
    metadata: bool = False,
    queue_size: int = 1024,
    drop_policy: DropPolicy = "drop-newest",
    max_per_wakeup: int = 256,
    watch_interfaces: bool = True,
    on_event: Callable[[InterfaceEvent], Any] | None = None,
    **options: object,
) -> AsyncMulticastSocket:
    """Open, bind and join for asyncio: ``async with open_multicast("239.255.0.1:5000",
    "198.18.1.10,232.1.1.1:5000", interface="lo") as ep: ...``.

    Endpoints are ``[SOURCE,]GROUP:PORT`` (one port and IP version per socket). Call it
    from a coroutine. Other keyword options go to :class:`~mcastkit.MulticastSocket`.
    The socket can also send (``await ep.send(data, "239.255.0.1:5000")``).

    Raises:
        McastValueError: a bad endpoint, option, queue size or policy (nothing is opened).
        McastStateError: no running event loop.
        McastOSError and subclasses: as :func:`mcastkit.open_receiver`; too many open
            files (EMFILE/ENFILE) names the limit (``ulimit -n``).
    """
    running_loop("open_multicast")
    check_policy(drop_policy)
    check_int("queue_size", queue_size, 1)
    check_int("max_per_wakeup", max_per_wakeup, 1)
    core = open_core(_open_receiver, *endpoints, interface=interface, ttl=ttl,
                     loopback=loopback, reuse_port=reuse_port, metadata=metadata,
                     blocking=False, **options)
    return _make(core, queue_size=queue_size, drop_policy=drop_policy,
                 max_per_wakeup=max_per_wakeup, watch_interfaces=watch_interfaces,
                 on_event=on_event)


def open_sender(
    endpoint: str | Endpoint,
    *,
    interface: InterfaceArg | None = None,
    ttl: int = 1,
    loopback: bool = True,
    watch_interfaces: bool = True,
    on_event: Callable[[InterfaceEvent], Any] | None = None,
    **options: object,
) -> AsyncMulticastSocket:
    """A send-only endpoint connected to ``GROUP:PORT``: ``await ep.send(data)``.

    Raises:
        McastValueError / McastStateError / McastOSError: as :func:`open_multicast`.
    """
    running_loop("open_sender")
    core = open_core(_open_sender, endpoint, interface=interface, ttl=ttl,
                     loopback=loopback, blocking=False, **options)
    return _make(core, queue_size=1, max_per_wakeup=1, watch_interfaces=watch_interfaces,
                 on_event=on_event, receive=False)
