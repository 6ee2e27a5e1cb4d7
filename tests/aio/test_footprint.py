"""What an endpoint costs beyond its socket (issue 13 item 7): a closed endpoint is freed by
reference counting, without leaving cycles for the garbage collector (hundreds of them
made one full collection take tens of ms in the middle of other work), and the events
queue is made only when an event comes or someone asks for the stream, with the same
behaviour as before."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import MulticastSocket
from mcastkit._netlink import IFF_RUNNING, IFF_UP, LinkEvent
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel
G = asm4(57, 2)


def burst(port: int, n: int) -> None:
    with MulticastSocket(4, interface="lo") as tx:
        for i in range(n):
            tx.sendto(b"%d" % i, G, port)


def test_aio_closed_endpoint_is_freed_without_the_garbage_collector(netns: Netns,
                                                                     run: Runner[Any]) -> None:
    """No reference cycle survives close(): the endpoint, its reader and its queue go
    away by reference counting as soon as the last reference is dropped."""

    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        port = ep.local_address[1]
        burst(port, 2)
        assert len(await ep.recv_many(10, timeout_s=5)) >= 1
        refs = [weakref.ref(o) for o in (ep, ep._intake, ep._intake._stall, ep._queue.buffer,
                                         ep._events, ep._writer)]
        ep.close()
        await asyncio.sleep(0)  # the loop drops the cancelled reader handle
        await asyncio.sleep(0)
        del ep
        alive = [r() for r in refs if r() is not None]
        assert alive == [], alive

    was = gc.isenabled()
    gc.disable()
    try:
        run(main())
    finally:
        if was:
            gc.enable()


def test_aio_events_queue_made_on_demand_behaves_as_before(netns: Netns,
                                                          run: Runner[Any]) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        assert ep.stats.event_drops == 0 and ep.events.get_nowait() is None
        up = LinkEvent(kind="new", index=1, name="lo", flags=IFF_UP | IFF_RUNNING)
        down = LinkEvent(kind="new", index=1, name="lo", flags=IFF_UP)
        ep._handle_netlink([up] + [down, up] * 150)  # 300 events into a queue of 256
        assert ep.stats.events == 300 and ep.stats.event_drops == 44 and len(ep.events) == 256
        first = await ep.events.get(timeout_s=1)
        assert first.kind == "down"  # drop-oldest kept the latest 256
        ep.close()
        assert [ev async for ev in ep.events] == []  # the stream ends once closed

        quiet = aio.open_multicast(f"{G}:0", interface="lo")
        quiet.close()  # closed before anyone asked for its events
        assert [ev async for ev in quiet.events] == [] and quiet.stats.event_drops == 0

    run(main())
