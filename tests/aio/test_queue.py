"""BoundedQueue (drop policies, cancellation, close, timeout) and link_action, no sockets."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit import ClosedError, McastValueError, ReceiveTimeoutError
from mcastkit._aio_queue import BoundedQueue
from mcastkit._aio_watch import link_action
from mcastkit._netlink import IFF_RUNNING, IFF_UP, LinkEvent

UP = IFF_UP | IFF_RUNNING


def test_queue_drop_newest_keeps_first_items_and_counts() -> None:
    q: BoundedQueue[int] = BoundedQueue(3, "drop-newest")
    assert [q.put(i) for i in range(5)] == [True, True, True, False, False]
    assert q.drops == 2 and q.take(10) == [0, 1, 2]


def test_queue_drop_oldest_keeps_last_items_and_counts() -> None:
    q: BoundedQueue[int] = BoundedQueue(3, "drop-oldest")
    assert [q.put(i) for i in range(5)] == [True, True, True, False, False]
    assert q.drops == 2 and q.take(10) == [2, 3, 4]


@pytest.mark.parametrize(("policy", "kept"), [("drop-newest", [0, 1, 2, 3]),
                                              ("drop-oldest", [6, 7, 8, 9])])
def test_queue_put_many_applies_policy(policy: str, kept: list[int]) -> None:
    q: BoundedQueue[int] = BoundedQueue(4, policy)  # type: ignore[arg-type]
    assert q.put_many(range(10)) == 6
    assert q.drops == 6 and q.take(100) == kept


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
def test_queue_bad_size_is_refused(bad: object) -> None:
    with pytest.raises(McastValueError, match="queue_size"):
        BoundedQueue(bad, "drop-newest")  # type: ignore[arg-type]


def test_queue_bad_policy_is_refused() -> None:
    with pytest.raises(McastValueError, match="drop-newest"):
        BoundedQueue(4, "drop-random")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.sampled_from(["drop-newest", "drop-oldest"]),
       st.lists(st.one_of(st.integers(0, 30), st.just(-1)), max_size=60))
def test_queue_accounts_every_item(size: int, policy: str, ops: list[int]) -> None:
    """Put bursts (n >= 0) and takes (-1) in any order: nothing is lost uncounted and the
    queue never exceeds its size; FIFO order holds."""
    q: BoundedQueue[int] = BoundedQueue(size, policy)  # type: ignore[arg-type]
    put = 0
    out: list[int] = []
    for n in ops:
        if n < 0:
            out.extend(q.take(2))
        else:
            q.put_many(range(put, put + n))
            put += n
        assert len(q) <= size
    out.extend(q.take(size))
    assert len(out) + q.drops == put
    assert out == sorted(out)


def test_queue_cancelled_get_loses_nothing() -> None:
    async def main() -> None:
        q: BoundedQueue[str] = BoundedQueue(4)
        t = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.put("a")  # wakes t, but t is cancelled before it runs
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert len(q) == 1 and await q.get() == "a"

    asyncio.run(main())


def test_queue_wake_passes_to_next_waiter_on_cancel() -> None:
    async def main() -> None:
        q: BoundedQueue[str] = BoundedQueue(4)
        t1 = asyncio.create_task(q.get())
        t2 = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.put("x")
        t1.cancel()
        assert await asyncio.wait_for(t2, 5) == "x"
        assert t1.cancelled()

    asyncio.run(main())


def test_queue_close_fails_waiters_and_discards() -> None:
    async def main() -> None:
        q: BoundedQueue[int] = BoundedQueue(4)
        t = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        assert q.waiting == 1
        assert q.close() == 0
        with pytest.raises(ClosedError):
            await t
        q2: BoundedQueue[int] = BoundedQueue(4)
        q2.put_many([1, 2])
        assert q2.close() == 2 and q2.close() == 0
        assert not q2.put(3) and q2.put_many([4]) == 0
        with pytest.raises(ClosedError):
            await q2.get()
        with pytest.raises(ClosedError):
            q2.get_nowait()

    asyncio.run(main())


def test_queue_get_timeout_raises_timeout_error() -> None:
    async def main() -> None:
        q: BoundedQueue[int] = BoundedQueue(4)
        with pytest.raises(ReceiveTimeoutError) as ei:
            await q.get(timeout_s=0.01)
        assert isinstance(ei.value, TimeoutError) and q.waiting == 0
        q.put(5)
        assert await q.get(timeout_s=0) == 5

    asyncio.run(main())


# --- link_action ----------------------------------------------------------------------


def ev(kind: str, index: int, name: str | None, flags: int = UP) -> LinkEvent:
    return LinkEvent(kind=kind, index=index, name=name, flags=flags)  # type: ignore[arg-type]


def test_link_action_first_state_is_recorded_silently() -> None:
    usable: dict[str, bool] = {}
    assert link_action(ev("new", 3, "eth0"), {"eth0": 3}, usable) is None
    assert usable == {"eth0": True}


def test_link_action_down_then_up() -> None:
    usable = {"eth0": True}
    assert link_action(ev("new", 3, "eth0", IFF_UP), {"eth0": 3}, usable) == ("down", "eth0")
    assert link_action(ev("new", 3, "eth0", IFF_UP), {"eth0": 3}, usable) is None
    assert link_action(ev("new", 3, "eth0"), {"eth0": 3}, usable) == ("up", "eth0")


def test_link_action_removed_and_recreated() -> None:
    usable = {"eth0": True}
    assert link_action(ev("del", 3, "eth0"), {"eth0": 3}, usable) == ("removed", "eth0")
    assert link_action(ev("new", 9, "eth0", 0), {"eth0": 3}, usable) == ("rejoin", "eth0")
    assert usable["eth0"] is False


def test_link_action_ignores_other_interfaces_and_stale_deletes() -> None:
    usable: dict[str, bool] = {}
    assert link_action(ev("new", 5, "wlan0"), {"eth0": 3}, usable) is None
    assert link_action(ev("del", 4, "eth0"), {"eth0": 3}, usable) is None
    assert link_action(ev("new", 77, None), {"eth0": 3}, usable) is None
    assert usable == {}


def test_link_action_nameless_event_matches_by_index() -> None:
    assert link_action(ev("del", 3, None), {"eth0": 3}, {}) == ("removed", "eth0")
