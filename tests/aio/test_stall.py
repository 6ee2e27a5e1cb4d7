"""The reader never spins (issue 14 item 2): a socket that keeps reporting readable while
reads take nothing off it (shut down behind our back, as a forked child's close did, or
failing every read) pauses the reader, backing off, and reports one "stalled" event.

CPU is measured with ``time.process_time()`` deltas against a generous bound, and the
wake-up counter bounds the work; no wall-clock speed is asserted."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import MulticastSocket
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import Netns

G = asm4(44, 1)
IDLE_S = 1.0


def shut_down(core: MulticastSocket) -> None:
    """What another process's ``shutdown()`` of the shared socket does to ours."""
    try:
        core.sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # an unconnected UDP socket says ENOTCONN but is shut down
        assert exc.errno == errno.ENOTCONN


async def idle_cost(ep: aio.AsyncMulticastSocket) -> tuple[float, int]:
    """(CPU seconds, reader wake-ups) spent by the process over IDLE_S of idling."""
    w0, c0 = ep.stats.wakeups, time.process_time()
    await asyncio.sleep(IDLE_S)
    return time.process_time() - c0, ep.stats.wakeups - w0


def test_aio_reader_backs_off_when_the_socket_is_shut_down(netns: Netns,
                                                           run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            shut_down(ep.socket)
            cpu, wakeups = await idle_cost(ep)
            # spinning: ~100k wake-ups and a whole CPU second; backing off: a few dozen
            assert wakeups < 200, wakeups
            assert cpu < 0.5 * IDLE_S, cpu
            ev = await ep.events.get(timeout_s=1)
            assert ev.kind == "stalled" and ev.name == "lo" and "readable" in (ev.error or "")
            assert ep.events.get_nowait() is None  # reported once, not per pause
            assert ep.stats.stalls >= 1 and not ep.closed

    run(main())


class FailingReads(MulticastSocket):
    """A real socket whose reads fail while ``failing`` is set (the datagram stays
    queued in the kernel, so the descriptor stays readable)."""

    failing = True

    def recv_batch(self, max_count: int = 64, timeout_s: float | None = None
                   ) -> list[Any]:
        if self.failing:
            raise OSError(errno.EIO, "injected read failure")
        return super().recv_batch(max_count, timeout_s)


def test_aio_reader_backs_off_on_failing_reads_and_recovers(netns: Netns,
                                                            run: Runner[Any]) -> None:
    async def main() -> None:
        core = FailingReads(4, interface="lo")
        port = core.bind(0)[1]
        core.join(G, "lo")
        ep = aio.AsyncMulticastSocket(core)
        async with ep:
            with MulticastSocket(4, interface="lo") as tx:
                tx.sendto(b"stuck", G, port)
            cpu, wakeups = await idle_cost(ep)
            assert wakeups < 200, wakeups
            assert cpu < 0.5 * IDLE_S, cpu
            assert ep.stats.recv_errors == wakeups or ep.stats.recv_errors >= 16
            ev = await ep.events.get(timeout_s=1)
            assert ev.kind == "stalled" and "injected read failure" in (ev.error or "")
            core.failing = False  # the reader comes back by itself, within a pause
            d = await ep.recv(timeout_s=5)
            assert d.data == b"stuck"
            assert ep.stats.received == 1

    run(main())


@pytest.mark.parametrize("kind", ["filtered"])
def test_aio_filtered_floods_do_not_count_as_stalls(netns: Netns, run: Runner[Any],
                                                    kind: str) -> None:
    """Wake-ups whose datagrams the core filtered (min_ttl) consumed something: the reader
    must not pause for them, and a wanted datagram after them is delivered."""
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", min_ttl=2) as ep:
            port = ep.local_address[1]
            with MulticastSocket(4, interface="lo", ttl=1) as low, \
                    MulticastSocket(4, interface="lo", ttl=5) as ok:
                for _ in range(64):
                    low.sendto(b"x", G, port)
                    await asyncio.sleep(0)  # one wake-up each
                ok.sendto(b"wanted", G, port)
            d = await ep.recv(timeout_s=5)
            assert d.data == b"wanted"
            st = ep.stats
            assert st.ttl_filtered == 64 and st.stalls == 0, st

    run(main())


def test_aio_parent_never_spins_after_a_forked_child_closes(netns: Netns,
                                                            run: Runner[Any]) -> None:
    """Issue 14 item 2 as users meet it: a forked child closes its inherited copy of
    the socket. Whatever that does to the shared socket (today: shut down), the
    parent's reader must stay cheap while idle and the parent must not crash."""
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            pid = os.fork()
            if pid == 0:  # the child: close the inherited socket, nothing else
                try:
                    ep.socket.close()
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)  # whatever close() does in a child, the parent is the point
            cpu, wakeups = await idle_cost(ep)
            assert wakeups < 200, wakeups
            assert cpu < 0.5 * IDLE_S, cpu
            assert not ep.closed

    run(main())
