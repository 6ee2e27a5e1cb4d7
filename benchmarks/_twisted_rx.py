"""Twisted baseline receiver (run as a child process: a Twisted reactor runs only once).

``python -m benchmarks._twisted_rx GROUP PORT COUNT``: joins GROUP on lo with a big
receive queue, prints ``ready``, waits for a line on stdin, then runs the reactor until
COUNT datagrams arrived (or 60 s passed) and prints ``<count> <seconds>``.
"""

from __future__ import annotations

import os
import sys
import time

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from ._util import big_rcvbuf


def now() -> float:
    """The clock the parent times with (MCAST_BENCH_CLOCK: cpu or wall)."""
    if os.environ.get("MCAST_BENCH_CLOCK", "cpu") == "cpu":
        return time.process_time()
    return time.perf_counter()


def main() -> int:
    group, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    state = {"n": 0, "t0": 0.0, "t1": 0.0}

    class Rx(DatagramProtocol):
        def datagramReceived(self, datagram: bytes, addr: object) -> None:
            state["n"] += 1
            if state["n"] >= count:
                state["t1"] = now()
                reactor.stop()  # type: ignore[attr-defined]

    p = reactor.listenMulticast(port, Rx(), listenMultiple=True)  # type: ignore[attr-defined]
    p.joinGroup(group, "127.0.0.1")
    big_rcvbuf(p.socket)
    print("ready", flush=True)
    sys.stdin.readline()
    reactor.callLater(60, reactor.stop)  # type: ignore[attr-defined]
    state["t0"] = now()
    reactor.run()  # type: ignore[attr-defined]
    end = state["t1"] or now()
    print(int(state["n"]), f"{end - state['t0']:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
