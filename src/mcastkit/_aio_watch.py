"""Interface watching for :mod:`mcastkit.aio`: one rtnetlink watcher per event loop, and
what its events mean for each socket.

Owns: :class:`SharedWatcher`, the one :class:`~mcastkit._netlink.NetlinkWatcher` that
every endpoint of one event loop in one network namespace shares (reference counted:
opened by the first endpoint, closed with the last; it keeps the latest state of every
link so a late subscriber starts from what is known), the per-socket
:class:`EndpointEvents` (its bounded event queue, the ``on_event`` callback, plain or
``async``, and the decisions: re-join on a re-created interface, up/down/removed,
address changes, a resync after lost notifications), and the values
:class:`InterfaceEvent` and :class:`EventStream` (re-exported by :mod:`mcastkit.aio`).
Must not: read or write datagrams, make membership calls other than the core's
``refresh_interfaces()``, block the loop, or let a callback's exception escape into the
loop. Not thread-safe apart from the registry of shared watchers: everything else runs
on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ipaddress
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._aio_queue import BoundedQueue
from ._errors import ClosedError, McastError
from ._membership import Membership
from ._netlink import AddrEvent, LinkEvent, NetlinkEvent, NetlinkWatcher, Overrun
from ._socket import MulticastSocket

__all__ = [
    "EndpointEvents",
    "EventStream",
    "InterfaceEvent",
    "SharedWatcher",
    "chosen_addresses",
    "link_action",
    "rejoin",
    "resync",
    "watched",
]

_log = logging.getLogger("mcastkit.aio")
EventKind = Literal["up", "down", "removed", "rejoined", "rejoin_failed",
                    "address_added", "address_removed", "stalled"]
LinkAction = Literal["removed", "rejoin", "up", "down"]
_EVENT_QUEUE: Final = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceEvent:
    """Something happened to an interface this socket uses (or to its reader).

    Attributes:
        kind: ``"down"`` / ``"up"`` (lost or regained carrier or admin state; memberships
            stay, field notes B1/B2), ``"removed"`` (deleted), ``"rejoined"`` (re-created
            with a new index; memberships chosen by name were joined again, B3),
            ``"rejoin_failed"`` (the new interface refused; ``error`` says why),
            ``"address_added"`` / ``"address_removed"`` (a local address a membership
            was chosen by, ``interface="198.18.0.1"``, came or went; ``index`` is where), or
            ``"stalled"`` (the socket kept reporting readable while reads returned
            nothing; the reader backs off; ``error`` says what the reads returned).
        name: the interface name ("" for a stall of a socket with no interface).
        index: its interface index as of this event (0 when unknown).
        memberships: for ``"rejoined"``, the memberships joined again.
        error: for ``"rejoin_failed"`` and ``"stalled"``, the message.
        address: for ``"address_added"`` / ``"address_removed"``, the address.
    """

    kind: EventKind
    name: str
    index: int
    memberships: tuple[Membership, ...] = ()
    error: str | None = None
    address: str | None = None


class EventStream:
    """The interface events of one socket: ``async for ev in ep.events`` or
    ``await ep.events.get()``. Bounded (oldest events are dropped, counted); the
    iteration ends when the socket is closed.

    Made by :class:`~mcastkit.aio.AsyncMulticastSocket` (its :attr:`events`), not by
    users.

    Args:
        q: the socket's bounded event queue.
    """

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

        Args:
            timeout_s: seconds to wait; None: wait forever.

        Returns:
            The event.

        Raises:
            ReceiveTimeoutError: none within ``timeout_s``.
            ClosedError: the socket was closed.
            McastValueError: ``timeout_s`` is negative, NaN or not a number.
        """
        return await self._q.get(timeout_s)

    def get_nowait(self) -> InterfaceEvent | None:
        """The next queued event, without waiting.

        Returns:
            The event, or None when none is queued.

        Raises:
            ClosedError: the socket was closed (``CLOSED``).
        """
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


def chosen_addresses(core: MulticastSocket) -> dict[str, int]:
    """The local addresses ``core``'s memberships were chosen by (``interface="ADDR"``),
    each with the interface index it was joined on."""
    out: dict[str, int] = {}
    for m in core.memberships:
        spec = m.interface_spec
        if isinstance(spec, str) and any(c in spec for c in ".:"):
            with contextlib.suppress(ValueError):
                out[str(ipaddress.ip_address(spec))] = m.ifindex
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


# ---------------------------------------------------------------- the shared watcher

Subscriber = Callable[[list[NetlinkEvent]], None]
_registry: dict[tuple[int, object], weakref.ref[SharedWatcher]] = {}
_registry_lock = threading.RLock()  # re-entrant: a weakref callback (_forget) may
# run from a garbage collection triggered inside the locked block


def _netns_key() -> object:
    """The calling thread's network namespace (netlink sockets belong to one)."""
    try:
        st = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class SharedWatcher:
    """One rtnetlink watcher for every endpoint of one loop in one network namespace.

    Get it with :meth:`subscribe`; each endpoint holds one subscription and gives it
    back with :meth:`unsubscribe`. The last one out removes the reader and closes the
    socket (one descriptor per loop and namespace, not one per endpoint).

    Raises:
        McastOSError / UnsupportedError: from :class:`NetlinkWatcher` (no netlink here).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watcher = NetlinkWatcher()
        self._subs: dict[int, Subscriber] = {}
        self._next = 0
        #: the latest "new" LinkEvent of every link, by index (from dumps and changes)
        self.links: dict[int, LinkEvent] = {}
        try:
            loop.add_reader(self._watcher.fileno(), self._on_ready)
        except BaseException:
            self._watcher.close()
            raise
        self._watcher.request_links()

    @property
    def closed(self) -> bool:
        return self._watcher.closed

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def fileno(self) -> int:
        return self._watcher.fileno()

    @classmethod
    def subscribe(cls, loop: asyncio.AbstractEventLoop, fn: Subscriber
                  ) -> tuple[SharedWatcher, int]:
        """The loop's shared watcher for the calling thread's namespace (opened if there
        is none) and a token for :meth:`unsubscribe`; ``fn`` gets every batch of events.
        """
        key = (id(loop), _netns_key())
        with _registry_lock:
            ref = _registry.get(key)
            hub = ref() if ref is not None else None
            if hub is None or hub.closed or hub._loop is not loop:
                hub = cls(loop)
                _registry[key] = weakref.ref(hub, functools.partial(_forget, key))
        hub._next += 1
        hub._subs[hub._next] = fn
        return hub, hub._next

    def unsubscribe(self, token: int) -> None:
        """Give a subscription back; the last one closes the watcher. Idempotent."""
        self._subs.pop(token, None)
        if self._subs or self.closed:
            return
        if not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._watcher.fileno())
        self._watcher.close()

    def _on_ready(self) -> None:
        events = self._watcher.read()
        if not events:
            return
        links = self.links
        for ev in events:
            if isinstance(ev, LinkEvent):
                if ev.kind == "new":
                    links[ev.index] = ev
                else:
                    links.pop(ev.index, None)
            elif isinstance(ev, Overrun):
                self._watcher.request_links()  # once for everyone
        for fn in list(self._subs.values()):
            try:
                fn(events)
            except Exception:  # one endpoint's fault must not starve the others
                _log.exception("interface event handler failed; ignored")


def _forget(key: tuple[int, object], ref: weakref.ref[SharedWatcher]) -> None:
    with _registry_lock:
        if _registry.get(key) is ref:
            del _registry[key]


# ---------------------------------------------------------------- per endpoint


class EndpointEvents:
    """The interface events of one socket: what they mean, the queue and the callback.

    Args:
        loop: the socket's loop.
        core: the socket (its memberships and default interface are what is watched).
        on_event: called on the loop with each event; a coroutine function's coroutine
            is run as a task. Exceptions are logged (rate-limited) and counted.
        watch: subscribe to the loop's shared watcher (best effort: :attr:`error` says
            why not).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, core: MulticastSocket,
                 on_event: Callable[[InterfaceEvent], Any] | None, watch: bool) -> None:
        self._loop = loop
        self._core = core
        self.on_event = on_event
        self._queue: BoundedQueue[InterfaceEvent] | None = None  # made when first needed
        self.count = self.callback_errors = 0
        self._usable: dict[str, bool] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False
        self.hub: SharedWatcher | None = None
        self._token = 0
        self.error: str | None = None  # why interfaces are not watched, if so
        if watch:
            try:
                self.hub, self._token = SharedWatcher.subscribe(loop, self.handle)
            except (McastError, OSError) as exc:
                self.error = str(exc)
                return
            for ev in self.hub.links.values():  # start from what the watcher knows
                if ev.name is not None:
                    self._usable[ev.name] = ev.usable

    @property
    def queue(self) -> BoundedQueue[InterfaceEvent]:
        """The bounded event queue (made on first use: most sockets never get an event)."""
        q = self._queue
        if q is None:
            q = self._queue = BoundedQueue(_EVENT_QUEUE, "drop-oldest", what="event")
            if self._closed:
                q.close()
        return q

    @property
    def drops(self) -> int:
        """Events dropped from the full queue."""
        return 0 if self._queue is None else self._queue.drops

    def handle(self, events: Iterable[NetlinkEvent]) -> None:
        """Apply decoded rtnetlink events (also called directly by tests). What the
        socket uses is read once per batch (a link dump is hundreds of events for each
        of hundreds of sockets) and again after anything was done or reported (a re-join
        or an ``on_event`` callback may change the memberships)."""
        using: dict[str, int] | None = None
        for ev in events:
            if self._closed:
                return
            if isinstance(ev, LinkEvent):
                if using is None:
                    using = watched(self._core)
                if self._on_link(ev, using):
                    using = None
            elif isinstance(ev, AddrEvent):
                self._on_addr(ev)
            elif isinstance(ev, Overrun):
                for out in resync(self._core):
                    self.emit(out)
                using = None

    def _on_link(self, ev: LinkEvent, using: Mapping[str, int]) -> bool:
        """Act on one link event; True when it did or reported something (memberships
        may have changed since ``using`` was read)."""
        act = link_action(ev, using, self._usable)
        if act is None:
            return False
        kind, name = act
        if kind != "rejoin":
            self.emit(InterfaceEvent(kind=kind, name=name, index=ev.index))
        elif (out := rejoin(self._core, name, ev.index)) is not None:
            self.emit(out)
        return True

    def _on_addr(self, ev: AddrEvent) -> None:
        """An address this socket's memberships were chosen by came or went (on whichever
        interface): the choice may now mean another interface, or none. When it appears
        on another interface than the one joined, ask the core to re-join (its
        ``refresh_interfaces()`` decides what a re-resolved address means)."""
        chosen = chosen_addresses(self._core)
        if ev.address is None or ev.address not in chosen:
            return
        link = self.hub.links.get(ev.index) if self.hub is not None else None
        name = link.name if link is not None and link.name else ""
        self.emit(InterfaceEvent(kind="address_added" if ev.kind == "new" else
                                 "address_removed", name=name, index=ev.index,
                                 address=ev.address))
        moved = ev.kind == "new" and chosen[ev.address] != ev.index and not self._closed
        if moved and (out := rejoin(self._core, name, ev.index)) is not None:
            self.emit(out)

    def emit(self, ev: InterfaceEvent) -> None:
        """Queue ``ev`` and call ``on_event`` (isolated: nothing escapes)."""
        if self._closed:
            return
        self.count += 1
        self.queue.put(ev)
        cb = self.on_event
        if cb is None:
            return
        try:
            res = cb(ev)
            if inspect.isawaitable(res):
                task = asyncio.ensure_future(res, loop=self._loop)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        except Exception:
            self._callback_failed()

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._callback_failed(task.exception())

    def _callback_failed(self, exc: BaseException | None = None) -> None:
        self.callback_errors += 1
        n = self.callback_errors
        if n <= 10 or n % 1000 == 0:  # rate-limited (field notes D6)
            _log.error("on_event callback raised (%d so far); ignored", n,
                       exc_info=exc if exc is not None else True)

    def close(self) -> None:
        """Unsubscribe, end the event stream and cancel running ``async`` callbacks.
        Idempotent; nothing of this socket's runs after it."""
        if self._closed:
            return
        self._closed = True
        if self.hub is not None:
            self.hub.unsubscribe(self._token)
            self.hub = None
        if self._queue is not None:
            self._queue.close()
        for t in list(self._tasks):
            t.cancel()
