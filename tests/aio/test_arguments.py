"""Arguments the asyncio face refuses before anything waits or changes (issue 9 item 7),
``async def`` event callbacks, and typed errors at its edge (issue 14 item 7)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import ErrorCode, McastValueError, MulticastSocket
from mcastkit._netlink import IFF_RUNNING, IFF_UP, LinkEvent
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import Netns

G = asm4(46, 1)
BAD_TIMEOUTS = [-1, -0.001, math.nan, -math.inf, True, "1", b"1", [1]]


@pytest.mark.parametrize("bad", BAD_TIMEOUTS, ids=repr)
def test_aio_bad_timeouts_are_refused_and_nothing_is_taken(netns: Netns, run: Runner[Any],
                                                           bad: object) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            port = ep.local_address[1]
            with MulticastSocket(4, interface="lo") as tx:
                tx.sendto(b"kept", G, port)
            for _ in range(500):  # let the reader queue it
                if ep.stats.queued:
                    break
                await asyncio.sleep(0.01)
            assert ep.stats.queued == 1
            calls = [lambda: ep.recv(timeout_s=bad),  # type: ignore[arg-type]
                     lambda: ep.recv_many(4, timeout_s=bad),  # type: ignore[arg-type]
                     lambda: ep.events.get(timeout_s=bad)]  # type: ignore[arg-type]
            for call in calls:
                with pytest.raises(McastValueError) as info:
                    await call()
                assert info.value.code is ErrorCode.BAD_VALUE
                assert "timeout_s" in str(info.value) and repr(bad) in str(info.value)
            st = ep.stats
            assert st.queued == 1 and st.delivered == 0  # state unchanged
            assert (await ep.recv(timeout_s=math.inf)).data == b"kept"  # inf: no limit

    run(main())


@pytest.mark.parametrize("good", [0, 0.0, 0.01])
def test_aio_zero_and_small_timeouts_time_out(netns: Netns, run: Runner[Any],
                                              good: float) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            with pytest.raises(TimeoutError):
                await ep.recv(timeout_s=good)

    run(main())


def test_aio_async_on_event_runs_as_task_and_errors_are_counted(netns: Netns,
                                                                run: Runner[Any]) -> None:
    seen: list[str] = []

    async def on_event(ev: aio.InterfaceEvent) -> None:
        await asyncio.sleep(0)
        seen.append(ev.kind)
        if ev.kind == "down":
            raise RuntimeError("callback fault")

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", watch_interfaces=False,
                                      on_event=on_event) as ep:
            up = LinkEvent(kind="new", index=1, name="lo", flags=IFF_UP | IFF_RUNNING)
            down = LinkEvent(kind="new", index=1, name="lo", flags=0)
            ep._handle_netlink([up, down, up])
            for _ in range(100):
                if len(seen) == 2 and ep.stats.callback_errors:
                    break
                await asyncio.sleep(0.01)
            assert seen == ["down", "up"]
            assert ep.stats.callback_errors == 1 and ep.stats.events == 2

    run(main())


def test_aio_close_cancels_running_async_callbacks(netns: Netns, run: Runner[Any]) -> None:
    """Nothing of a socket runs after its close: a pending async callback is cancelled."""
    finished: list[str] = []
    started = asyncio.Event()

    async def on_event(ev: aio.InterfaceEvent) -> None:
        started.set()
        await asyncio.sleep(30)
        finished.append(ev.kind)

    async def main() -> None:
        started.clear()
        ep = aio.open_multicast(f"{G}:0", interface="lo", watch_interfaces=False,
                                on_event=on_event)
        up = LinkEvent(kind="new", index=1, name="lo", flags=IFF_UP | IFF_RUNNING)
        ep._handle_netlink([up, LinkEvent(kind="new", index=1, name="lo", flags=0)])
        await asyncio.wait_for(started.wait(), 5)
        tasks = set(ep._events._tasks)
        assert len(tasks) == 1
        ep.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert all(t.cancelled() for t in tasks) and ep.stats.callback_errors == 0
        assert finished == []

    run(main())


def test_aio_out_of_descriptors_is_a_typed_error_naming_the_limit(netns: Netns) -> None:
    """EMFILE at open_multicast (and at an interface lookup) names RLIMIT_NOFILE and
    `ulimit -n` instead of a bare OSError. Run in a child: the limit is per process."""
    code = textwrap.dedent(f"""
        import asyncio, errno, os, resource
        import mcastkit, mcastkit.aio as aio
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))
        async def main():
            hold = []
            try:
                while True:
                    hold.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                pass
            for call in (lambda: aio.open_multicast("{G}:0"),
                         lambda: aio.open_multicast("{G}:0", interface="lo"),
                         lambda: mcastkit.resolve_interface("lo")):
                try:
                    call()
                except mcastkit.McastOSError as exc:
                    assert exc.errno == errno.EMFILE, exc
                    assert "RLIMIT_NOFILE" in str(exc) and "ulimit -n" in str(exc), exc
                    assert "64" in str(exc), exc
                else:
                    raise AssertionError("no error")
            print("typed")
        asyncio.run(main())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "typed", r.stderr
