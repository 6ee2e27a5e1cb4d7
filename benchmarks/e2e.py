"""End-to-end: a paced C sender offers RATE datagrams/s for SECONDS on lo while mcastkit
receives with recv_batch (metadata on). Checks received + counted drops == sent.
Also the memory scenario: RSS before/after receiving many datagrams."""

from __future__ import annotations

import subprocess
import threading
from typing import Any

from ._util import GROUP, build_c, fill, port, receiver, rss_kib


def offered(rate: int, seconds: float, size: int = 64) -> dict[str, Any]:
    exe = build_c("sendmmsg_tx")
    if exe is None:
        return {"note": "n/a: gcc not available"}
    p = port()
    rx = receiver(p, metadata=True)
    rx.sock.setsockopt(1, 8, 1 << 20)  # a normal 2 MiB queue: drops are possible and counted
    count = int(rate * seconds)
    got = 0
    stop = threading.Event()
    result: dict[str, Any] = {}

    def send() -> None:
        out = subprocess.run([str(exe), GROUP, str(p), str(size), str(count), str(rate)],
                             capture_output=True, text=True, timeout=seconds * 4 + 30).stdout
        n, secs = out.split()
        result["sent"] = int(n)
        result["send_seconds"] = float(secs)
        stop.set()

    t = threading.Thread(target=send)
    t.start()
    try:
        while True:
            try:
                got += len(rx.recv_batch(256, timeout_s=0.5))
            except TimeoutError:
                if stop.is_set():
                    break
        t.join()
        drops = rx.kernel_drops()
        result.update(rate=rate, seconds=seconds, size=size, received=got,
                      kernel_drops=drops, queue_drops=0,
                      accounted=got + drops == result.get("sent"),
                      stats_kernel_drops=rx.stats.kernel_drops)
    finally:
        rx.close()
    return result


def memory(count: int, size: int = 64) -> dict[str, Any]:
    p = port()
    rx = receiver(p, metadata=True)
    try:
        rx.setblocking(False)
        fill(p, 20000, size)
        n = 0
        while n < 20000:
            n += len(rx.recv_batch(256, timeout_s=5))
        before = rss_kib()
        n = 0
        while n < count:
            fill(p, min(50000, count - n), size)
            k = 0
            target = min(50000, count - n)
            while k < target:
                try:
                    k += len(rx.recv_batch(256))
                except BlockingIOError:
                    break
            n += target
        after = rss_kib()
        return {"datagrams": count, "rss_before_kib": before, "rss_after_kib": after,
                "growth_kib": after - before, "kernel_drops": rx.kernel_drops()}
    finally:
        rx.close()
