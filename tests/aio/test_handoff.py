"""The reader hands a burst to the consumer waiting for it (issue 13 item 7): a consumer
waiting on an empty queue reads the socket itself in its own step, so a burst that wakes
many endpoints is not all read into memory before the first consumer runs; a hand-off
that is not taken (the consumer was cancelled) loses nothing; timed-out waits leave no
waiter behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import MulticastSocket
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel
G = asm4(57, 1)


def burst(ports: list[int], each: int) -> None:
    """Queue ``each`` numbered datagrams for every port (the loop is not running)."""
    with MulticastSocket(4, interface="lo") as tx:
        for p in ports:
            for i in range(each):
                tx.sendto(b"%d" % i, G, p)


def test_aio_burst_over_many_endpoints_is_read_by_each_consumer(netns: Netns,
                                                                  run: Runner[Any]) -> None:
    """While one consumer takes its datagrams, no other endpoint holds any in its queue:
    each endpoint's share is read when its own consumer runs, in order, all of it."""
    n, each = 24, 40

    async def main() -> None:
        eps = [aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=1 << 20)
               for _ in range(n)]
        try:
            ports = [ep.local_address[1] for ep in eps]
            held_elsewhere: list[int] = []

            async def consume(ep: aio.AsyncMulticastSocket) -> list[int]:
                got = await ep.recv_many(500, timeout_s=5)
                held_elsewhere.append(sum(len(o._queue) for o in eps if o is not ep))
                while len(got) < each:
                    got += await ep.recv_many(500, timeout_s=5)
                return [int(d.data) for d in got]

            tasks = [asyncio.create_task(consume(ep)) for ep in eps]
            await asyncio.sleep(0)  # every consumer waits on its empty queue
            burst(ports, each)
            results = await asyncio.gather(*tasks)
            assert results == [list(range(each))] * n
            assert held_elsewhere == [0] * n, held_elsewhere
            for ep in eps:
                st = ep.stats
                assert st.received == st.delivered == each and st.queued == 0
                assert st.wakeups == 1 and st.max_batch == each and st.stalls == 0
        finally:
            for ep in eps:
                ep.close()

    run(main())


def test_aio_handoff_to_a_cancelled_consumer_loses_nothing(netns: Netns,
                                                          run: Runner[Any]) -> None:
    """The reader woke a waiting consumer to read, and the consumer was cancelled before
    it ran: the datagrams stay in the socket and the next consumer gets them."""

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            port = ep.local_address[1]
            first = asyncio.create_task(ep.recv())
            await asyncio.sleep(0)  # parked on the empty queue
            burst([port], 3)
            ep._intake.on_readable()  # what the loop does when the socket turns readable
            assert ep.stats.queued == 0  # handed off: nothing read yet
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            got = [await ep.recv(timeout_s=5) for _ in range(3)]
            assert [d.data for d in got] == [b"0", b"1", b"2"]
            st = ep.stats
            assert st.received == st.delivered == 3 and st.queued == 0

    run(main())


def test_aio_timeouts_leave_no_waiters_behind(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            for _ in range(50):
                with pytest.raises(TimeoutError):
                    await ep.recv(timeout_s=0)
            assert ep._queue.waiting == 0 and len(ep._queue._waiters) == 0

    run(main())
