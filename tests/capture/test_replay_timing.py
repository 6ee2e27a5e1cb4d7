"""Replay pacing: recorded timing, --speed, --rate and --max; the report's timing error.
Only lower bounds on durations are asserted (a replay must never run ahead of its
schedule); the error numbers are printed for the record (``-s``) and measured properly by
benchmarks/record.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcastkit import Datagram, MulticastSocket
from mcastkit.capture import Recorder, replay
from tests.support.addrs import asm4, lab_host
from tests.support.netns import Netns

pytestmark = [pytest.mark.kernel]

G = asm4(75, 1)


def _capture(path: str, n: int, gap_ns: int, port: int) -> None:
    t0 = 1_700_000_000 * 10**9
    with Recorder(path) as rec:
        for i in range(n):
            rec.add(Datagram(i.to_bytes(4, "big") + bytes(60), lab_host(0, 9), 4000, G, None, 1,
                             timestamp_ns=t0 + i * gap_ns), port)


@pytest.mark.parametrize(("kw", "at_least_s"), [
    ({}, 0.2), ({"speed": 2.0}, 0.1), ({"rate": 4000.0}, 0.5), ({"as_fast": True}, 0.0)])
def test_pacing_never_runs_ahead(netns: Netns, tmp_path: Path, mcast_port: int,
                                 kw: dict[str, object], at_least_s: float) -> None:
    path = str(tmp_path / "paced.pcapng")
    n = 2001
    _capture(path, n, 100_000, mcast_port)  # 10k/s for 0.2 s
    with MulticastSocket(4, interface="lo", rcvbuf_bytes=4 << 20) as rx:
        rx.bind(mcast_port)
        rx.join(G)
        rep = replay(path, interface="lo", **kw)  # type: ignore[arg-type]
        got = rx.recv_many(n + 10, timeout_s=5)
        while len(got) < n:
            got += rx.recv_many(n, timeout_s=5)
    assert rep.sent == n and [int.from_bytes(d.data[:4], "big") for d in got] == list(range(n))
    assert rep.elapsed_s >= at_least_s * 0.999
    if kw.get("as_fast"):
        assert rep.timing_us == {}
    else:
        t = rep.timing_us
        assert t["samples"] == n and 0 <= t["p50"] <= t["p99"] <= t["max"]
        print(f"\nreplay {kw or 'recorded'}: {rep.as_dict()['timing_us']}")


def test_loop_repeats_with_the_recorded_spacing(netns: Netns, tmp_path: Path,
                                                mcast_port: int) -> None:
    path = str(tmp_path / "loop.pcapng")
    _capture(path, 50, 2_000_000, mcast_port)  # 50 over 98 ms
    rep = replay(path, interface="lo", loops=3)
    assert rep.sent == 150 and rep.loops == 3
    assert rep.elapsed_s >= 3 * 0.098 + 2 * 0.002 - 0.001  # each loop, one gap between
