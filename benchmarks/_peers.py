"""Drain rows for the Python libraries people pick instead of mcastkit: multicast_expert
(sync ``McastRxSocket.recvfrom`` and ``AsyncMcastRxSocket.recvfrom``) and asyncio-dgram
(``from_socket`` on a socket joined by hand, since it has no multicast call). Each is pinned
to ``lo`` and drains a queue filled first, like every other drain row. A missing package
makes its row n/a (``pip install -e '.[bench]'`` brings them)."""

from __future__ import annotations

import asyncio
import socket

from ._util import GROUP, big_rcvbuf, fill, now, plain_receiver, port, timed


def multicast_expert_sync(count: int, size: int) -> float:
    """``McastRxSocket.recvfrom()`` in a loop (it selects, then reads, per datagram)."""
    import multicast_expert as me

    p = port()
    with me.McastRxSocket(socket.AF_INET, mcast_ips=[GROUP], port=p, iface="lo",
                          timeout=None) as rx:
        for s in rx.sockets:
            big_rcvbuf(s)
        fill(p, count, size)

        def go() -> int:
            rf = rx.recvfrom
            for _ in range(count):
                rf()
            return count

        return timed(go)


def multicast_expert_async(count: int, size: int) -> float:
    """``await AsyncMcastRxSocket.recvfrom()`` in a loop on the stock asyncio loop."""
    import multicast_expert as me

    p = port()

    async def main() -> float:
        with me.AsyncMcastRxSocket(socket.AF_INET, mcast_ips=[GROUP], port=p,
                                   iface="lo") as rx:
            for s in rx.sockets:
                big_rcvbuf(s)
            fill(p, count, size)
            t = now()
            rf = rx.recvfrom
            for _ in range(count):
                await rf()
            return count / (now() - t)

    return asyncio.run(main())


def asyncio_dgram(count: int, size: int) -> float:
    """``await stream.recv()`` of asyncio-dgram over a socket joined on lo by hand."""
    import asyncio_dgram as ad

    p = port()

    async def main() -> float:
        s = plain_receiver(p)
        s.setblocking(False)
        stream = await ad.from_socket(s)
        try:
            fill(p, count, size)
            t = now()
            r = stream.recv
            for _ in range(count):
                await r()
            return count / (now() - t)
        finally:
            stream.close()

    return asyncio.run(main())
