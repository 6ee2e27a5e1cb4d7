"""The paced replay's timer slack (issue 11, "at the recorded timing"): 1 µs on the
replaying thread while it paces, read back with the getter from inside the replay (its
``sleep`` and ``progress`` callbacks), and the thread's own value back afterwards, also
when the replay ends by an exception or Ctrl-C; ``as_fast`` and a thread whose slack is
already finer are left alone. Plus the platform calls themselves.

Owns: that evidence. Must not: assert timing (benchmarks and docs/record-replay.md do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcastkit import Datagram, McastValueError
from mcastkit._platform._thread import (
    FINE_SLACK_NS,
    set_timer_slack_ns,
    timer_slack,
    timer_slack_ns,
)
from mcastkit.capture import Recorder, replay
from mcastkit.capture._replay import ReplayReport
from tests.support.addrs import asm4, lab_host
from tests.support.netns import Netns

G = asm4(75, 2)
OWN = 77_000  # a slack no default has: seeing it again proves it was restored


@pytest.fixture
def own_slack() -> Iterator[int]:
    """The test thread's slack set to OWN for the test, its real value put back after."""
    before = timer_slack_ns()
    assert before is not None, "Linux has a per-thread timer slack (prctl)"
    set_timer_slack_ns(OWN)
    try:
        yield OWN
    finally:
        set_timer_slack_ns(before)


def _capture(path: Path, n: int, port: int) -> str:
    t0 = 1_700_000_000 * 10**9
    with Recorder(str(path)) as rec:
        for i in range(n):
            rec.add(Datagram(bytes(8), lab_host(0, 9), 4000, G, None, 1,
                             timestamp_ns=t0 + i * 1_000_000), port)
    return str(path)


def test_paced_replay_waits_with_fine_slack_and_restores_it(
        netns: Netns, tmp_path: Path, mcast_port: int, own_slack: int) -> None:
    path = _capture(tmp_path / "s.pcapng", 300, mcast_port)  # progress: every 256
    seen: list[int | None] = []
    reported: list[int | None] = []

    def sleep(delay: float) -> None:
        seen.append(timer_slack_ns())

    def progress(rep: ReplayReport) -> None:
        reported.append(timer_slack_ns())

    rep = replay(path, interface="lo", sleep=sleep, progress=progress, progress_every_s=0.0)
    assert rep.sent == 300
    assert seen and set(seen) == {FINE_SLACK_NS}
    assert reported and set(reported) == {FINE_SLACK_NS}
    assert timer_slack_ns() == own_slack


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_slack_is_restored_when_the_replay_is_interrupted(
        netns: Netns, tmp_path: Path, mcast_port: int, own_slack: int,
        exc: type[BaseException]) -> None:
    path = _capture(tmp_path / "i.pcapng", 5, mcast_port)

    def sleep(delay: float) -> None:
        assert timer_slack_ns() == FINE_SLACK_NS
        raise exc("stop here")

    with pytest.raises(exc, match="stop here"):
        replay(path, interface="lo", rate=10.0, sleep=sleep)
    assert timer_slack_ns() == own_slack


def test_as_fast_leaves_the_slack_alone(netns: Netns, tmp_path: Path, mcast_port: int,
                                        own_slack: int) -> None:
    path = _capture(tmp_path / "f.pcapng", 600, mcast_port)  # > one batch: progress runs
    reported: list[int | None] = []
    rep = replay(path, interface="lo", as_fast=True, progress_every_s=0.0,
                 progress=lambda r: reported.append(timer_slack_ns()))
    assert rep.sent == 600
    assert reported and set(reported) == {own_slack}
    assert timer_slack_ns() == own_slack


def test_a_finer_slack_is_kept(own_slack: int) -> None:
    set_timer_slack_ns(500)
    with timer_slack(FINE_SLACK_NS) as old:
        assert old == 500 and timer_slack_ns() == 500
    assert timer_slack_ns() == 500


def test_set_and_get_round_trip_on_this_thread_only(own_slack: int) -> None:
    other: list[int | None] = []

    def elsewhere() -> None:
        set_timer_slack_ns(3_000)
        other.append(timer_slack_ns())

    set_timer_slack_ns(12_345)
    assert timer_slack_ns() == 12_345
    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert other == [3_000] and timer_slack_ns() == 12_345  # per thread
    with timer_slack(2_000) as old:
        assert (old, timer_slack_ns()) == (12_345, 2_000)
    assert timer_slack_ns() == 12_345


@pytest.mark.parametrize("bad", [0, -1])
def test_a_slack_below_one_ns_is_refused_and_changes_nothing(own_slack: int, bad: int) -> None:
    with pytest.raises(McastValueError, match="1 ns or more"):
        set_timer_slack_ns(bad)
    with pytest.raises(McastValueError, match="1 ns or more"), timer_slack(bad):
        pass
    assert timer_slack_ns() == own_slack
