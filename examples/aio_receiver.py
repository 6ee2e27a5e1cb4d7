"""Receive multicast with asyncio: a receiver, a sender and interface events in one loop.

Run it inside a throwaway namespace so nothing leaves the machine:

    scripts/in-netns python examples/aio_receiver.py

It joins 239.255.0.1 on ``lo``, sends itself five datagrams, prints them with their
metadata, and prints the counters. Pass ``--uvloop`` to run on uvloop.
"""

from __future__ import annotations

import asyncio
import sys

import mcastkit.aio as aio

GROUP = "239.255.0.1"


async def on_event(ev: aio.InterfaceEvent) -> None:
    """Interface events (an ``async def`` callback runs as a task; a plain one works too)."""
    print(f"interface {ev.name} (#{ev.index}): {ev.kind}")


async def main() -> None:
    async with aio.open_multicast(f"{GROUP}:0", interface="lo", metadata=True,
                                  queue_size=256, drop_policy="drop-oldest",
                                  on_event=on_event) as rx:
        port = rx.local_address[1]
        async with aio.open_sender(f"{GROUP}:{port}", interface="lo") as tx:
            for i in range(5):
                await tx.send(f"hello {i}".encode())
        async for d in rx:
            print(f"{d.data!r} from {d.source}:{d.port} to {d.group} ttl={d.ttl}")
            if d.data.endswith(b"4"):
                break
        print(rx.stats)


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
