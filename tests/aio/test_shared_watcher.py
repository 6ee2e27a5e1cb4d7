"""One rtnetlink watcher per loop (issue 13 item 7): every endpoint of a loop shares it,
the last one out closes it, each loop (and thread) has its own, and every endpoint still
gets its own events, starting from the state the watcher already knows."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcastkit.aio as aio
from mcastkit._aio_watch import SharedWatcher
from tests.support.addrs import asm4
from tests.support.loops import Runner, run_on
from tests.support.netns import Netns
from tests.support.topology import VethPair

G = asm4(45, 1)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _noop() -> None:
    pass


def test_aio_endpoints_of_one_loop_share_one_watcher(netns: Netns, run: Runner[Any]) -> None:
    run(_noop())  # uvloop keeps a process-wide pipe from its first loop on
    before = open_fds()

    async def main() -> None:
        in_loop = open_fds()  # the loop's own descriptors (epoll, wake-up pipes) counted
        eps = [aio.open_multicast(f"{G}:0", interface="lo") for _ in range(8)]
        try:
            assert all(ep.watching_interfaces for ep in eps), eps[0].watch_error
            hubs = {id(ep._events.hub) for ep in eps}
            assert len(hubs) == 1
            hub = eps[0]._events.hub
            assert hub is not None and hub.subscribers == 8
            assert open_fds() - in_loop == 8 + 1  # a socket each, one netlink socket
            for ep in eps[:-1]:
                ep.close()
            assert not hub.closed and hub.subscribers == 1
            eps[-1].close()
            assert hub.closed
            assert open_fds() == in_loop
            async with aio.open_multicast(f"{G}:0", interface="lo") as again:
                assert again.watching_interfaces and again._events.hub is not hub
        finally:
            for ep in eps:
                ep.close()

    run(main())
    gc.collect()
    assert open_fds() == before


def test_aio_each_loop_and_thread_has_its_own_watcher(netns: Netns) -> None:
    """Two loops in two threads (threads inherit the namespace): two watchers, each
    closed by its own last endpoint; nothing is shared across loops."""
    hubs: list[SharedWatcher | None] = [None, None]
    ready = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        async def main() -> None:
            async with aio.open_multicast(f"{G}:0", interface="lo") as a, \
                    aio.open_multicast(f"{G}:0", interface="lo") as b:
                assert a._events.hub is b._events.hub is not None
                hubs[i] = a._events.hub
                await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        try:
            run_on("asyncio" if i == 0 else "uvloop", main())
        except BaseException as exc:  # reported below (pytest.skip included)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for exc in errors:
        if isinstance(exc, pytest.skip.Exception):
            raise exc
        raise exc
    assert hubs[0] is not None and hubs[1] is not None and hubs[0] is not hubs[1]
    assert hubs[0].closed and hubs[1].closed


def test_aio_late_endpoint_starts_from_the_known_link_state(veth_pair: VethPair,
                                                            run: Runner[Any]) -> None:
    """The second endpoint asks for no link dump of its own; it must still report the
    first change ("down") instead of taking it for the initial state."""
    async def main() -> None:
        with veth_pair.b.enter():
            first = aio.open_multicast(f"{G}:0", interface="eth0")
            try:
                hub = first._events.hub
                assert hub is not None
                for _ in range(500):  # the watcher's own dump answers
                    if any(ev.name == "eth0" for ev in hub.links.values()):
                        break
                    await asyncio.sleep(0.01)
                late = aio.open_multicast(f"{G}:0", interface="eth0")
                async with late:
                    assert late._events.hub is hub
                    veth_pair.b.ip("link", "set", "eth0", "down")
                    ev = await late.events.get(timeout_s=5)
                    assert (ev.kind, ev.name) == ("down", "eth0")
                    ev = await first.events.get(timeout_s=5)
                    assert (ev.kind, ev.name) == ("down", "eth0")
            finally:
                first.close()

    run(main())


def test_aio_one_faulty_endpoint_does_not_starve_the_others(netns: Netns,
                                                            run: Runner[Any]) -> None:
    """A subscriber that raises is logged; the others still get the batch."""
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as a, \
                aio.open_multicast(f"{G}:0", interface="lo") as b:
            hub = a._events.hub
            assert hub is not None
            got: list[int] = []

            def boom(events: list[Any]) -> None:
                raise RuntimeError("subscriber fault")

            bad, token = SharedWatcher.subscribe(asyncio.get_running_loop(), boom)
            assert bad is hub
            _, token2 = SharedWatcher.subscribe(asyncio.get_running_loop(),
                                                   lambda evs: got.append(len(evs)))
            netns.ip("link", "add", "t0", "type", "bridge")
            for _ in range(500):
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got
            hub.unsubscribe(token)
            hub.unsubscribe(token2)
            assert not hub.closed and hub.subscribers == 2
            assert b._events.hub is hub

    run(main())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7)), min_size=1, max_size=30))
def test_aio_watcher_lives_exactly_as_long_as_its_endpoints(netns: Netns,
                                                            steps: list[tuple[bool, int]]
                                                            ) -> None:
    """Any order of opens and closes: the watcher is open iff an endpoint is, and the
    loop holds one socket per endpoint plus one netlink socket."""
    async def main() -> None:
        base = open_fds()
        eps: list[aio.AsyncMulticastSocket] = []
        for opening, pick in steps:
            if opening or not eps:
                eps.append(aio.open_multicast(f"{G}:0", interface="lo"))
            else:
                eps.pop(pick % len(eps)).close()
            assert len({id(ep._events.hub) for ep in eps}) <= 1
            assert open_fds() - base == len(eps) + (1 if eps else 0)
        for ep in eps:
            ep.close()
        assert open_fds() == base

    asyncio.run(main())
