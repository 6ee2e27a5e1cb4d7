"""asyncio face of mcastkit: multicast sockets for an event loop (stock asyncio or uvloop).

Owns: the public face: :func:`open_multicast` / :func:`open_sender` (argument checks
before anything opens, the core opened non-blocking, closed again if wrapping it fails)
and the public names (``__all__``). :class:`AsyncMulticastSocket` (``await recv()``,
``async for``, a ``send()`` that waits for writability instead of dropping, the
lifecycle) lives in :mod:`~mcastkit._aio_socket`; its reading side (reader registration,
one drain per wake-up into the bounded queue of :mod:`~mcastkit._aio_queue`) in
:mod:`~mcastkit._aio_reader`; the send retry loop in :mod:`~mcastkit._aio_writer`;
interface watching (one shared rtnetlink watcher per loop, re-joins, events) in
:mod:`~mcastkit._aio_watch` (field notes B1-B3, D6-D8).
Must not: make socket calls of its own (everything goes through
:class:`~mcastkit.MulticastSocket`), block the loop, or hold endpoint state. Not
thread-safe: use one socket from its loop's thread (``loop.call_soon_threadsafe(ep.close)``
from elsewhere).

Example:
    ```python
    import asyncio, mcastkit.aio

    async def main() -> None:
        async with mcastkit.aio.open_multicast("239.255.0.1:5000", interface="lo") as ep:
            async for d in ep:
                print(d.source, d.data)

    asyncio.run(main())
    ```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._addr import Endpoint
from ._aio_queue import DropPolicy as DropPolicy
from ._aio_queue import check_int, check_policy, running_loop
from ._aio_reader import AsyncStats as AsyncStats
from ._aio_reader import open_core
from ._aio_socket import AsyncMulticastSocket as AsyncMulticastSocket
from ._aio_watch import EventStream as EventStream
from ._aio_watch import InterfaceEvent as InterfaceEvent
from ._open import open_receiver as _open_receiver
from ._open import open_sender as _open_sender
from ._sockbase import InterfaceArg
from ._socket import MulticastSocket

__all__ = [
    "AsyncMulticastSocket",
    "AsyncStats",
    "DropPolicy",
    "EventStream",
    "InterfaceEvent",
    "open_multicast",
    "open_sender",
]


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

    Endpoints are ``[SOURCE,]GROUP:PORT`` (one port and IP version per socket), or with
    ``broadcast=True`` a broadcast ``255.255.255.255:PORT``. Call it from a coroutine.
    Other keyword options go to :class:`~mcastkit.MulticastSocket` (``broadcast=True``
    among them).
    The socket can also send (``await ep.send(data, "239.255.0.1:5000")``).

    Args:
        *endpoints: ``"[SOURCE,]GROUP:PORT"`` strings or :class:`~mcastkit.Endpoint`
            values; at least one.
        interface: the interface to join on (name, index, local address).
        ttl: multicast TTL / hop limit of sends, 0-255.
        loopback: deliver our own sends to local listeners.
        reuse_port: SO_REUSEPORT (share the port with other sockets of this user).
        metadata: receive group, interface, TTL and drop count with every datagram.
        queue_size: most datagrams held between the socket and the consumer.
        drop_policy: which datagram a full queue drops (:data:`DropPolicy`).
        max_per_wakeup: most datagrams read per readiness callback.
        watch_interfaces: watch rtnetlink and re-join when an interface comes back.
        on_event: called with each :class:`InterfaceEvent`.
        **options: other keyword arguments of :class:`~mcastkit.MulticastSocket`.

    Returns:
        The endpoint, bound and joined (use it with ``async with``).

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
    """A send-only endpoint connected to ``GROUP:PORT``: ``await ep.send(data)``. With
    ``broadcast=True`` the endpoint may be a broadcast address (the limited broadcast
    255.255.255.255 needs ``interface``).

    Args:
        endpoint: ``"GROUP:PORT"`` or an :class:`~mcastkit.Endpoint`.
        interface: the outgoing interface (recommended).
        ttl: multicast TTL / hop limit, 0-255.
        loopback: deliver our own sends to local listeners.
        watch_interfaces: watch rtnetlink for interface changes.
        on_event: called with each :class:`InterfaceEvent`.
        **options: other keyword arguments of :class:`~mcastkit.MulticastSocket`.

    Returns:
        The endpoint, connected to the group (it does not receive).

    Raises:
        McastValueError / McastStateError / McastOSError: as :func:`open_multicast`.
    """
    running_loop("open_sender")
    core = open_core(_open_sender, endpoint, interface=interface, ttl=ttl,
                     loopback=loopback, blocking=False, **options)
    return _make(core, queue_size=1, max_per_wakeup=1, watch_interfaces=watch_interfaces,
                 on_event=on_event, receive=False)
