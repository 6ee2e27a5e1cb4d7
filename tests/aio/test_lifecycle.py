"""Overflow accounting, cancellation, close from anywhere, and the reader / event methods
called directly with hostile inputs (field notes D6-D8, technique #19)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcastkit.aio as aio
from mcastkit import ClosedError, MulticastSocket
from mcastkit._netlink import IFF_RUNNING, IFF_UP, LinkEvent, Overrun, parse_messages
from tests.support import kernelstate
from tests.support.addrs import asm4
from tests.support.loops import Runner, run_on
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel
G = asm4(42, 1)


def sender() -> MulticastSocket:
    return MulticastSocket(4, interface="lo")


def flood(port: int, n: int, start: int = 0) -> None:
    with sender() as tx:
        for i in range(start, start + n):
            tx.sendto(b"%06d" % i, G, port)


@pytest.mark.parametrize("policy", ["drop-newest", "drop-oldest"])
def test_aio_overflow_every_datagram_accounted(netns: Netns, run: Runner[Any],
                                               policy: str) -> None:
    """Flood while the consumer cannot run: delivered + queue_drops + kernel_drops == sent,
    and the policy decides which datagrams survive."""
    sent, qsize = 600, 8

    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=32768, metadata=True,
                                queue_size=qsize, drop_policy=policy, max_per_wakeup=10**6)
        async with ep:
            flood(ep.local_address[1], sent)  # the loop is blocked here: consumer paused
            got = [await ep.recv(timeout_s=5)]
            while ep.stats.queued:
                got.append(await ep.recv())
            st = ep.stats
            seqs = [int(d.data) for d in got]
            assert st.delivered + st.queue_drops + st.kernel_drops == sent, st
            assert st.received == st.delivered + st.queue_drops
            assert st.kernel_drops > 0 and st.queue_drops > 0 and len(got) == qsize
            if policy == "drop-newest":
                assert seqs == list(range(qsize))
            else:
                assert seqs == list(range(st.received - qsize, st.received))
            flood(ep.local_address[1], 1, start=sent)  # the socket still works afterwards
            assert int((await ep.recv(timeout_s=5)).data) == sent

    run(main())


def test_aio_cancelled_recv_loses_no_datagram(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            port = ep.local_address[1]
            t = asyncio.create_task(ep.recv())
            await asyncio.sleep(0)
            flood(port, 1)
            ep._intake.on_readable()  # the datagram wakes t ...
            t.cancel()  # ... which is cancelled before it runs
            with pytest.raises(asyncio.CancelledError):
                await t
            assert ep.stats.queued == 1
            assert int((await ep.recv(timeout_s=5)).data) == 0

    run(main())


def test_aio_recv_under_repeated_timeouts_loses_nothing(netns: Netns, run: Runner[Any]
                                                        ) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=1 << 20) as ep:
            port = ep.local_address[1]
            got: list[int] = []
            for burst in range(20):
                flood(port, 10, start=burst * 10)
                for _ in range(15):  # more tries than datagrams: some time out
                    with contextlib.suppress(TimeoutError):
                        got.append(int((await asyncio.wait_for(ep.recv(), 0.0005)).data))
            while len(got) < 200:
                got.append(int((await ep.recv(timeout_s=5)).data))
            assert got == list(range(200))

    run(main())


def test_aio_close_fails_pending_recv_with_closed_error(netns: Netns, run: Runner[Any]
                                                       ) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        t1 = asyncio.create_task(ep.recv())
        t2 = asyncio.create_task(ep.recv(timeout_s=30))
        await asyncio.sleep(0)
        ep.close()
        for t in (t1, t2):
            with pytest.raises(ClosedError):
                await t
        with pytest.raises(ClosedError):
            await ep.recv()
        with pytest.raises(ClosedError):
            await ep.send(b"x", f"{G}:5000")

    run(main())


def test_aio_close_inside_async_for_is_idempotent(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        async with ep:
            flood(ep.local_address[1], 5)
            seen = []
            async for d in ep:
                seen.append(d)
                ep.close()
                ep.close()
            assert len(seen) == 1 and ep.closed
            await ep.aclose()
        st = ep.stats  # readable after close
        assert st.delivered == 1 and st.received == 1 + st.discarded + st.queued
        assert st.queued == 0

    run(main())


def test_aio_close_releases_memberships_and_fds(netns: Netns, run: Runner[Any]) -> None:
    import os

    before = len(os.listdir("/proc/self/fd"))

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            assert ("lo", G) in kernelstate.memberships()
            assert ep.watching_interfaces

    run(main())
    assert ("lo", G) not in kernelstate.memberships()
    assert len(os.listdir("/proc/self/fd")) == before


def test_aio_pending_send_fails_on_close(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        tx = aio.open_sender(f"{G}:5000", interface="lo")
        t = asyncio.create_task(tx._writer.wait())  # a send parked on a full buffer
        await asyncio.sleep(0)
        tx.close()
        with pytest.raises(ClosedError):
            await t

    run(main())


def test_aio_core_closed_underneath_closes_endpoint(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        t = asyncio.create_task(ep.recv())
        await asyncio.sleep(0)
        ep.socket.close()
        ep._intake.on_readable()
        assert ep.closed
        with pytest.raises(ClosedError):
            await t

    run(main())


# --- hostile inputs, called directly (#19) -------------------------------------------------


def test_aio_spurious_wakeup_and_calls_after_close_are_harmless(netns: Netns,
                                                               run: Runner[Any]) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo")
        ep._intake.on_readable()  # nothing queued in the kernel
        st = ep.stats
        assert st.wakeups == 1 and st.received == 0 and st.recv_errors == 0
        ep.close()
        ep._intake.on_readable()
        ep._events.handle([Overrun()])  # the shared watcher's delivery, after close
        ep._writer.on_writable()
        ep._handle_netlink([LinkEvent(kind="del", index=1, name="lo", flags=0)])
        assert ep.stats.wakeups == 1 and ep.stats.events == 0

    run(main())


def test_aio_hostile_link_events_are_ignored(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            ep._handle_netlink([
                LinkEvent(kind="new", index=99, name="nosuch", flags=0),
                LinkEvent(kind="new", index=2**31 - 1, name=None, flags=0),
                LinkEvent(kind="del", index=42, name="lo", flags=0),  # not lo's index
                Overrun(), Overrun(),
            ])
            assert ep.stats.events == 0 and ep.events.get_nowait() is None
            assert len(ep.memberships) == 1 and ep.memberships[0].ifindex == 1

    run(main())


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=512), max_size=6))
def test_aio_random_netlink_bytes_never_escape(netns: Netns, loop_kind: str,
                                               bufs: list[bytes]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", watch_interfaces=False) as ep:
            for b in bufs:
                ep._handle_netlink(parse_messages(b))
            assert len(ep.memberships) == 1

    run_on(loop_kind, main())


def test_aio_on_event_exceptions_are_counted_not_raised(netns: Netns, run: Runner[Any],
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    calls: list[str] = []

    def bad(ev: aio.InterfaceEvent) -> None:
        calls.append(ev.kind)
        raise RuntimeError("user bug")

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", on_event=bad) as ep:
            lo = ep.memberships[0].ifindex
            up = LinkEvent(kind="new", index=lo, name="lo", flags=IFF_UP | IFF_RUNNING)
            down = LinkEvent(kind="new", index=lo, name="lo", flags=IFF_UP)
            ep._handle_netlink([up, down, up])  # first seen, then two changes
            assert calls == ["down", "up"] and ep.stats.callback_errors == 2
            assert [(await ep.events.get(timeout_s=5)).kind for _ in range(2)] == ["down", "up"]

    with caplog.at_level(logging.ERROR, logger="mcastkit.aio"):
        run(main())
    assert "user bug" in caplog.text


def test_aio_close_from_on_event_stops_further_callbacks(netns: Netns, run: Runner[Any]
                                                         ) -> None:
    calls: list[str] = []

    async def main() -> None:
        holder: list[aio.AsyncMulticastSocket] = []

        def cb(ev: aio.InterfaceEvent) -> None:
            calls.append(ev.kind)
            holder[0].close()

        ep = aio.open_multicast(f"{G}:0", interface="lo", on_event=cb)
        holder.append(ep)
        lo = ep.memberships[0].ifindex
        up = LinkEvent(kind="new", index=lo, name="lo", flags=IFF_UP | IFF_RUNNING)
        down = LinkEvent(kind="new", index=lo, name="lo", flags=IFF_UP)
        ep._handle_netlink([up, down, up, down])
        assert ep.closed and calls == ["down"]
        assert [ev async for ev in ep.events] == []  # iteration ends on close

    run(main())
