"""The bounded queue of :mod:`mcastkit.aio` and the argument checks its calls share.

Owns: :class:`BoundedQueue`, a FIFO with a hard size limit and an explicit overflow
policy (``"drop-newest"`` refuses the arriving item, ``"drop-oldest"`` evicts the head),
counting every drop; waiting consumers are woken, never handed an item, so a cancelled
``get()`` loses nothing (the item stays queued for the next consumer). A consumer may also
be woken with nothing queued (:meth:`~BoundedQueue.wake_one`): it then calls the owner's
``refill`` in its own step, so the items are made right before they are taken. Closing
fails every waiter with :class:`~mcastkit.ClosedError`. Also the checks every asyncio call
makes before it changes anything: sizes, drop policies, timeouts and the running loop
(:func:`check_int`, :func:`check_policy`, :func:`check_timeout`, :func:`running_loop`).
Must not: touch sockets or netlink, run user callbacks, or grow without limit. Not
thread-safe: every method runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import errno
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, Generic, Literal, TypeVar

from ._errors import ClosedError, ErrorCode, McastStateError, McastValueError, ReceiveTimeoutError

__all__ = [
    "BoundedQueue",
    "DropPolicy",
    "check_int",
    "check_policy",
    "check_timeout",
    "running_loop",
]

T = TypeVar("T")
DropPolicy = Literal["drop-newest", "drop-oldest"]
"""What a full receive queue of :mod:`mcastkit.aio` drops: ``"drop-newest"`` (the
datagram arriving) or ``"drop-oldest"`` (the oldest queued one). Both are counted in
:class:`~mcastkit.aio.AsyncStats`."""
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

    __slots__ = ("_closed", "_items", "_maxsize", "_oldest", "_waiters", "_what", "drops",
                 "refill")

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
        # consumers parked in get(), oldest first: a list (56 bytes empty, a deque 760),
        # as there is rarely more than one
        self._waiters: list[asyncio.Future[object]] = []
        self._closed = False
        self._what = what
        self.drops = 0
        #: called by a consumer that was woken with nothing queued (see :meth:`wake_one`)
        self.refill: Callable[[], object] | None = None

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

    def wake_one(self) -> bool:
        """Wake one waiting consumer with nothing queued, so that it calls ``refill``
        in its own step. Returns False when no consumer is waiting (nothing done)."""
        return not self._closed and self._wake(1) == 1

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
            McastValueError: ``timeout_s`` is negative, NaN or not a number.
            asyncio.CancelledError: the waiting task was cancelled.
        """
        return await self.wait_get(check_timeout("timeout_s", timeout_s))

    async def wait_get(self, timeout_s: float | None) -> T:
        """:meth:`get` for a caller that checked ``timeout_s`` already (with
        :func:`check_timeout`: None or a finite number >= 0)."""
        items = self._items
        if items and not self._closed:
            return items.popleft()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
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
            if res is _TIMED_OUT:  # the timer woke us: we are still in the line
                self._discard(fut)
            if not items and self.refill is not None and not self._closed:
                self.refill()  # woken with nothing queued: the owner fills the queue now
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
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(ClosedError(f"closed while waiting for a {self._what}"))
        return n

    def _discard(self, fut: asyncio.Future[object]) -> None:
        """Take ``fut`` out of the line if it is there (by identity: ``list.remove``
        would compare, and format the future into its error when it is absent)."""
        waiters = self._waiters
        for i, w in enumerate(waiters):
            if w is fut:
                del waiters[i]
                return

    def _wake(self, n: int) -> int:
        """Wake up to ``n`` waiting consumers; returns how many were woken."""
        waiters = self._waiters
        woken = 0
        while woken < n and waiters:
            w = waiters.pop(0)
            if not w.done():
                w.set_result(None)
                woken += 1
        return woken


def _expire(fut: asyncio.Future[object]) -> None:
    if not fut.done():
        fut.set_result(_TIMED_OUT)


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


def check_timeout(name: str, value: object) -> float | None:
    """``value`` as a timeout in seconds: None (wait forever) or a finite number >= 0
    (``inf`` also means forever). Anything else (negative, NaN, a bool, a string) raises
    :class:`McastValueError` naming ``name``, before anything waits or changes.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise McastValueError(f"{name} must be a number of seconds >= 0 or None, got "
                              f"{value!r}", code=ErrorCode.BAD_VALUE)
    t = float(value)
    if math.isnan(t) or t < 0:
        raise McastValueError(f"{name} must be a number of seconds >= 0 or None (to wait "
                              f"forever), got {value!r}", code=ErrorCode.BAD_VALUE)
    return None if math.isinf(t) else t
