"""The aio receive fast paths: BoundedQueue bulk put/take, recv_many / async for order."""

from __future__ import annotations

import asyncio

import pytest

import mcastkit
import mcastkit.aio as aio
from mcastkit._aio_queue import BoundedQueue
from tests.support.addrs import asm4
from tests.support.netns import Netns

G = asm4(5, 31)


def test_put_many_fits_and_overflows() -> None:
    q: BoundedQueue[int] = BoundedQueue(5, "drop-newest")
    assert q.put_many([1, 2, 3]) == 0  # fits: bulk path
    assert q.put_many(iter([4, 5, 6, 7])) == 2  # overflow: per-item policy
    assert q.take(10) == [1, 2, 3, 4, 5] and len(q) == 0
    old: BoundedQueue[int] = BoundedQueue(3, "drop-oldest")
    assert old.put_many([1, 2]) == 0 and old.put_many([3, 4, 5]) == 2
    assert old.take(2) == [3, 4] and old.take(5) == [5] and old.take(5) == []


@pytest.mark.kernel
def test_recv_many_and_async_for_keep_order(netns: Netns, mcast_port: int) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:{mcast_port}", interface="lo",
                                      watch_interfaces=False) as ep:
            with mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") as tx:
                for i in range(100):  # fits the default queue: no kernel drops
                    tx.send(b"%d" % i)
            got: list[bytes] = []
            while len(got) < 60:
                got += [d.data for d in await ep.recv_many(64, 5)]
            async def rest() -> None:
                async for d in ep:
                    got.append(d.data)
                    if len(got) == 100:
                        break

            await asyncio.wait_for(rest(), 5)
            assert got == [b"%d" % i for i in range(100)]
            st = ep.stats
            assert st.delivered == 100 == st.received and st.queued == 0

    asyncio.run(main())
