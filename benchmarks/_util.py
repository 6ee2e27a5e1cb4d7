"""Shared helpers: ports, queue filling, the C baselines (built with gcc at run time)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mcastkit

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
OUT = HERE / "out"
GROUP = "239.255.77.1"
SO_RCVBUFFORCE = 33
BIG_RCVBUF = 1 << 28
_ports = itertools.count(31000)


def port() -> int:
    return next(_ports)


@dataclass
class Result:
    scenario: str
    name: str
    size: int
    runs: list[float] = field(default_factory=list)  # datagrams per second
    note: str = ""
    baseline: str | None = None  # name of the row this one is compared with
    baseline2: str | None = None  # an optional second comparison row

    @property
    def pps(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


def big_rcvbuf(sock: socket.socket) -> None:
    """Force a large receive queue (root in the namespace); fall back to SO_RCVBUF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BIG_RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BIG_RCVBUF)


def fill(p: int, count: int, size: int) -> None:
    """Queue ``count`` datagrams of ``size`` bytes for GROUP:p (send_batch, GSO when it can)."""
    payload = [b"b" * size] * 64
    with mcastkit.MulticastSocket(4, interface="lo") as tx:
        left = count
        while left > 0:
            k = min(64, left)
            tx.send_batch(payload[:k], GROUP, p)
            left -= k


def receiver(p: int, **opts: object) -> mcastkit.MulticastSocket:
    rx = mcastkit.open_receiver(f"{GROUP}:{p}", interface="lo", reuse_port=True, **opts)  # type: ignore[arg-type]
    big_rcvbuf(rx.sock)
    return rx


def build_c(name: str) -> Path | None:
    """Compile benchmarks/c/NAME.c into benchmarks/build/ with gcc; None if impossible."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    src = HERE / "c" / f"{name}.c"
    exe = BUILD / name
    BUILD.mkdir(exist_ok=True)
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        r = subprocess.run([gcc, "-O2", "-o", str(exe), str(src)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return None
    return exe


def timed(fn: Callable[[], int]) -> float:
    """Run fn (returns datagrams handled) and return datagrams per second."""
    t = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t)


def rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1
