"""Private helpers of :mod:`mcastkit.aio`: the bounded queue, event and stats values, and
the pure decision of what a link change means for a socket.

Owns: :class:`BoundedQueue`, a FIFO with a hard size limit and an explicit overflow
policy (``"drop-newest"`` refuses the arriving item, ``"drop-oldest"`` evicts the head),
counting every drop; waiting consumers are woken, never handed an item, so a cancelled
``get()`` loses nothing (the item stays queued for the next consumer). Closing fails
every waiter with :class:`~mcastkit.ClosedError`. Also :class:`InterfaceEvent`,
:class:`AsyncStats`, :class:`EventStream` (re-exported by :mod:`mcastkit.aio`) and
:func:`link_action`.
Must not: touch sockets, run user callbacks, or grow without limit. Not thread-safe:
every method runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

from ._errors import (
    ClosedError,
    ErrorCode,
    McastError,
    McastStateError,
    McastValueError,
    ReceiveTimeoutError,
)
from ._membership import Membership
from ._netlink import LinkEvent, NetlinkWatcher
from ._packet import Datagram
from ._socket import MulticastSocket

__all__ = [
    "AsyncStats",
    "BoundedQueue",
    "DropPolicy",
    "EventStream",
    "InterfaceEvent",
    "LinkAction",
    "check_int",
    "check_policy",
    "drain",
    "link_action",
    "open_watcher",
    "rejoin",
    "resync",
    "running_loop",
    "watched",
]

T = TypeVar("T")
DropPolicy = Literal["drop-newest", "drop-oldest"]
EventKind = Literal["up", "down", "removed", "rejoined", "rejoin_failed"]
LinkAction = Literal["removed", "rejoin", "up", "down"]
_POLICIES: Final = ("drop-newest", "drop-oldest")
_TIMED_OUT: Final = object()


def check_policy(policy: object) -> DropPolicy:
    """Validate a drop policy name (raises :class:`McastValueError` naming the choices)."""
    if policy == "drop-newest":
        return "drop-newest"
    if policy == "drop-oldest":
        return "drop-oldest"
    raise McastValueError(f"drop_policy {policy!r}: use 'drop-newest' or 'drop-oldest'",
                          code=ErrorCode.BAD_VALUE)


class BoundedQueue(Generic[T]):
    """A FIFO of at most ``maxsize`` items for one event loop.

    Args:
        maxsize: the limit, >= 1.
        policy: what happens to an item that arrives when the queue is full.
        what: a noun for error messages ("datagram", "event").

    Raises:
        McastValueError: ``maxsize`` < 1 or an unknown policy.
    """

    __slots__ = ("_closed", "_items", "_maxsize", "_oldest", "_waiters", "_what", "drops")

    @property
    def buffer(self) -> deque[T]:
        """The underlying deque, for the owner's no-wait fast path: it may ``popleft()``
        when the queue is open and non-empty; everything else goes through the methods."""
        return self._items

    def __init__(self, maxsize: int, policy: DropPolicy = "drop-newest", *,
                 what: str = "item") -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise McastValueError(f"queue_size must be an integer >= 1, got {maxsize!r}",
                                  code=ErrorCode.BAD_VALUE)
        self._maxsize = maxsize
        self._oldest = check_policy(policy) == "drop-oldest"
        self._items: deque[T] = deque()
        self._waiters: deque[asyncio.Future[object]] = deque()
        self._closed = False
        self._what = what
        self.drops = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def policy(self) -> DropPolicy:
        return "drop-oldest" if self._oldest else "drop-newest"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def waiting(self) -> int:
        """How many consumers are parked in :meth:`get`."""
        return sum(1 for w in self._waiters if not w.done())

    def put(self, item: T) -> bool:
        """Queue one item without waiting. Returns False if an item was dropped (this one
        under drop-newest, the oldest under drop-oldest) or the queue is closed."""
        if self._closed:
            return False
        items = self._items
        ok = True
        if len(items) >= self._maxsize:
            self.drops += 1
            if not self._oldest:
                return False
            items.popleft()
            ok = False
        items.append(item)
        if self._waiters:
            self._wake(1)
        return ok

    def put_many(self, batch: Iterable[T]) -> int:
        """Queue a batch in order without waiting; returns how many items were dropped."""
        if self._closed:
            return 0
        items = self._items
        if not isinstance(batch, list | tuple):
            batch = list(batch)
        if len(batch) <= self._maxsize - len(items):  # fits: one C-level extend
            items.extend(batch)
            if batch and self._waiters:
                self._wake(len(batch))
            return 0
        before = self.drops
        room = self._maxsize - len(items)
        added = 0
        for item in batch:
            if room > 0:
                items.append(item)
                room -= 1
                added += 1
            elif self._oldest:
                items.popleft()
                items.append(item)
                self.drops += 1
                added += 1
            else:
                self.drops += 1
        if added and self._waiters:
            self._wake(added)
        return self.drops - before

    def get_nowait(self) -> T:
        """The head item. Raises IndexError when empty, ClosedError when closed."""
        if self._closed:
            raise ClosedError(f"closed: no more {self._what}s")
        return self._items.popleft()

    def take(self, max_count: int) -> list[T]:
        """Up to ``max_count`` queued items, without waiting (maybe none)."""
        items = self._items
        if max_count >= len(items):  # everything: copy once, clear once
            out = list(items)
            items.clear()
            return out
        pop = items.popleft
        return [pop() for _ in range(max_count)]

    async def get(self, timeout_s: float | None = None) -> T:
        """The head item, waiting for one if the queue is empty.

        Cancellation-safe: a cancelled ``get`` removes nothing from the queue.

        Raises:
            ClosedError: the queue was closed (before or while waiting).
            ReceiveTimeoutError: nothing arrived within ``timeout_s`` (a TimeoutError).
            asyncio.CancelledError: the waiting task was cancelled.
        """
        items = self._items
        if items and not self._closed:
            return items.popleft()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + max(0.0, timeout_s)
        while not items:
            if self._closed:
                raise ClosedError(f"closed while waiting for a {self._what}")
            fut: asyncio.Future[object] = loop.create_future()
            self._waiters.append(fut)
            timer = (None if deadline is None else
                     loop.call_at(deadline, _expire, fut))
            try:
                res = await fut
            except BaseException:
                fut.cancel()
                self._discard(fut)
                if items and not self._closed:
                    self._wake(1)  # we were woken for an item we will not take: pass it on
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            self._discard(fut)
            if res is _TIMED_OUT and not items:
                raise ReceiveTimeoutError(errno.ETIMEDOUT,
                                          f"no {self._what} within {timeout_s} s", op="recv")
        if self._closed:
            raise ClosedError(f"closed: no more {self._what}s")
        return items.popleft()

    def close(self) -> int:
        """Close: fail every waiter with ClosedError and discard what is queued.
        Returns how many items were discarded. Idempotent."""
        if self._closed:
            return 0
        self._closed = True
        n = len(self._items)
        self._items.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(ClosedError(f"closed while waiting for a {self._what}"))
        return n

    def _discard(self, fut: asyncio.Future[object]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)

    def _wake(self, n: int) -> None:
        waiters = self._waiters
        while n > 0 and waiters:
            w = waiters.popleft()
            if not w.done():
                w.set_result(None)
                n -= 1


def _expire(fut: asyncio.Future[object]) -> None:
    if not fut.done():
        fut.set_result(_TIMED_OUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceEvent:
    """Something happened to an interface this socket uses.

    Attributes:
        kind: ``"down"`` / ``"up"`` (lost or regained carrier or admin state; memberships
            stay, field notes B1/B2), ``"removed"`` (deleted), ``"rejoined"`` (re-created
            with a new index; memberships chosen by name were joined again, B3), or
            ``"rejoin_failed"`` (the new interface refused; ``error`` says why).
        name: the interface name.
        index: its interface index as of this event.
        memberships: for ``"rejoined"``, the memberships joined again.
        error: for ``"rejoin_failed"``, the error message.
    """

    kind: EventKind
    name: str
    index: int
    memberships: tuple[Membership, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AsyncStats:
    """A snapshot of an :class:`AsyncMulticastSocket`'s counters.

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
        truncated / filtered / ttl_filtered: as in :class:`~mcastkit.RecvStats`.
        wakeups: reader wake-ups; ``max_batch``: most datagrams read in one wake-up.
        recv_errors: receive errors counted and survived.
        send_waits: sends that found the buffer full and waited for writability.
        send_errors / send_retries: failed sends, transient retries (core counters).
        events / event_drops: interface events emitted / dropped from a full events queue.
        callback_errors: exceptions raised by ``on_event`` (logged, isolated).
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


class EventStream:
    """The interface events of one socket: ``async for ev in ep.events`` or
    ``await ep.events.get()``. Bounded (oldest events are dropped, counted); the
    iteration ends when the socket is closed."""

    __slots__ = ("_q",)

    def __init__(self, q: BoundedQueue[InterfaceEvent]) -> None:
        self._q = q

    def __len__(self) -> int:
        return len(self._q)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> InterfaceEvent:
        try:
            return await self._q.get()
        except ClosedError:
            raise StopAsyncIteration from None

    async def get(self, timeout_s: float | None = None) -> InterfaceEvent:
        """The next event, waiting up to ``timeout_s``.

        Raises:
            ReceiveTimeoutError: none within ``timeout_s``.
            ClosedError: the socket was closed.
        """
        return await self._q.get(timeout_s)

    def get_nowait(self) -> InterfaceEvent | None:
        """The next queued event, or None."""
        try:
            return self._q.get_nowait()
        except IndexError:
            return None


def link_action(ev: LinkEvent, watched: Mapping[str, int], usable: dict[str, bool]
                ) -> tuple[LinkAction, str] | None:
    """What a link event means for a socket that holds ``watched`` (interface name -> the
    index it uses). ``usable`` is the last known state per name; it is updated.

    Returns ``("removed" | "rejoin" | "up" | "down", name)``, or None when the event is
    about another interface or changes nothing. The first state seen for a name only
    records it (a link dump at start-up must not produce events).
    """
    name = ev.name
    if name is None:
        name = next((n for n, i in watched.items() if i == ev.index), None)
    if name is None or name not in watched:
        return None
    if ev.kind == "del":
        if watched[name] != ev.index:
            return None
        usable[name] = False
        return ("removed", name)
    if watched[name] != ev.index:
        usable[name] = ev.usable
        return ("rejoin", name)
    prev = usable.get(name)
    usable[name] = ev.usable
    if prev is not None and prev != ev.usable:
        return ("up" if ev.usable else "down", name)
    return None


def running_loop(what: str) -> asyncio.AbstractEventLoop:
    """The running loop, or a :class:`McastStateError` saying how to get one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise McastStateError(f"{what} needs a running event loop: call it from a coroutine "
                              "(inside asyncio.run())", code=ErrorCode.BAD_STATE) from None


def check_int(name: str, value: object, lo: int) -> int:
    """``value`` if it is an int >= ``lo`` (not a bool), else :class:`McastValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise McastValueError(f"{name} must be an integer >= {lo}, got {value!r}",
                              code=ErrorCode.BAD_VALUE)
    return value


def watched(core: MulticastSocket) -> dict[str, int]:
    """Interface name -> the index ``core`` currently holds for it (memberships, by the
    name the user gave and the resolved one, and the default interface)."""
    out: dict[str, int] = {}
    for m in core.memberships:
        out[m.ifname] = m.ifindex
        if isinstance(m.interface_spec, str):
            out[m.interface_spec] = m.ifindex
    iface = core.interface
    if iface is not None:
        out.setdefault(iface.name, iface.index)
    return out


def rejoin(core: MulticastSocket, name: str, index: int) -> InterfaceEvent | None:
    """``name`` was re-created as ``index``: re-join what was chosen by name. Returns the
    event to emit ("rejoined" or "rejoin_failed"), or None when nothing changed."""
    before = core.interface.index if core.interface is not None else None
    try:
        done = core.refresh_interfaces()
    except (McastError, OSError) as exc:
        return InterfaceEvent(kind="rejoin_failed", name=name, index=index, error=str(exc))
    mine = tuple(m for m in done if m.ifname == name)
    after = core.interface.index if core.interface is not None else None
    if mine or before != after:
        return InterfaceEvent(kind="rejoined", name=name, index=index, memberships=mine)
    return None


def resync(core: MulticastSocket) -> list[InterfaceEvent]:
    """After lost notifications: re-join whatever is stale; one "rejoined" per membership."""
    try:
        done = core.refresh_interfaces()
    except (McastError, OSError):
        return []
    return [InterfaceEvent(kind="rejoined", name=m.ifname, index=m.ifindex, memberships=(m,))
            for m in done]


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


def open_watcher(loop: asyncio.AbstractEventLoop, on_ready: Callable[[], None]
                 ) -> tuple[NetlinkWatcher | None, str | None]:
    """A netlink watcher registered with ``loop`` (and a link dump requested), or
    (None, why) where netlink is unavailable."""
    watcher: NetlinkWatcher | None = None
    try:
        watcher = NetlinkWatcher()
        loop.add_reader(watcher.fileno(), on_ready)
        watcher.request_links()
    except (McastError, OSError) as exc:
        if watcher is not None:
            watcher.close()
        return None, str(exc)
    return watcher, None
