"""``recv()`` checks ``timeout_s`` once per distinct value, not once per datagram: a value
it found good before is not checked again, and nothing else slips through that shortcut
(a bad value after a good one, ``True`` after ``1``, NaN after a float) - each is still
refused before anything is taken from the queue."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import ErrorCode, McastValueError, MulticastSocket
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import Netns

G = asm4(46, 2)


async def _fill(ep: aio.AsyncMulticastSocket, n: int) -> None:
    port = ep.local_address[1]
    with MulticastSocket(4, interface="lo") as tx:
        for i in range(n):
            tx.sendto(b"%d" % i, G, port)
    for _ in range(500):  # let the reader queue them
        if ep.stats.queued >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {ep.stats.queued} of {n} queued")


def test_aio_remembered_timeout_lets_no_bad_value_through(netns: Netns,
                                                          run: Runner[Any]) -> None:
    one = 1
    half = 0.5
    pairs: list[tuple[object, object]] = [  # (good value recv() remembers, bad value next)
        (one, True), (one, -one), (half, -half), (half, math.nan), (math.inf, -math.inf),
        (one, "1"), (0, False),
    ]

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            await _fill(ep, len(pairs) + 1)
            for k, (good, bad) in enumerate(pairs):
                assert (await ep.recv(timeout_s=good)).data == b"%d" % k  # type: ignore[arg-type]
                for _ in range(2):  # refused each time, not only the first
                    with pytest.raises(McastValueError) as info:
                        await ep.recv(timeout_s=bad)  # type: ignore[arg-type]
                    assert info.value.code is ErrorCode.BAD_VALUE
                    assert "timeout_s" in str(info.value) and repr(bad) in str(info.value)
                st = ep.stats
                assert st.delivered == k + 1 and st.queued == len(pairs) - k  # nothing taken
            assert (await ep.recv(timeout_s=one)).data == b"%d" % len(pairs)

    run(main())


def test_aio_remembered_timeout_still_times_out(netns: Netns, run: Runner[Any]) -> None:
    """The same good value, remembered, still bounds the wait on an empty queue (the
    shortcut skips only the check, not the timeout), and inf still means no limit."""
    short = 0.02

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            await _fill(ep, 1)
            assert (await ep.recv(timeout_s=short)).data == b"0"  # remembered now
            with pytest.raises(TimeoutError):
                await ep.recv(timeout_s=short)
            await _fill(ep, 1)
            assert (await ep.recv(timeout_s=math.inf)).data == b"0"
            waiter = asyncio.ensure_future(ep.recv(timeout_s=math.inf))  # remembered inf
            await asyncio.sleep(0.05)
            assert not waiter.done()  # inf: waits, no timer fired
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert ep.stats.queued == 0

    run(main())
