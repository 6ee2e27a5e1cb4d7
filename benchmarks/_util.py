"""Shared helpers: ports, queue filling, the C baselines (built with gcc at run time), the
row type every scenario reports and the one loop that measures a list of rows."""

from __future__ import annotations

import importlib
import itertools
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import mcastkit

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
OUT = HERE / "out"
GROUP = "239.255.77.1"
SO_RCVBUFFORCE = 33
IP_MULTICAST_ALL = 49  # not in the socket module
LO_INDEX = socket.if_nametoindex("lo")
BIG_RCVBUF = 1 << 28
_ports = itertools.count(31000)


def port() -> int:
    return next(_ports)


@dataclass
class Result:
    scenario: str
    name: str
    size: int  # datagram size in bytes, or the scenario's own axis (sockets, groups, ...)
    runs: list[float] = field(default_factory=list)  # one value per run, in ``unit``
    note: str = ""
    baseline: str | None = None  # name of the row this one is compared with
    baseline2: str | None = None  # an optional second comparison row
    unit: str = "pps"  # datagrams/s unless a scenario says otherwise (B/s, opens/s, KiB, ...)
    lower_is_better: bool = False  # costs (KiB, faults): the ratio is baseline / value
    extra: dict[str, float] = field(default_factory=dict)  # side figures (median over runs)

    @property
    def pps(self) -> float:
        """The median of the runs (named for the common case, datagrams per second)."""
        return statistics.median(self.runs) if self.runs else 0.0


@dataclass(frozen=True)
class Options:
    """What one ``python -m benchmarks`` run asked for."""

    quick: bool
    runs: int

    @property
    def count(self) -> int:
        """Datagrams per drain (fewer with --quick)."""
        return 30_000 if self.quick else 150_000

    @property
    def sizes(self) -> list[int]:
        return [64] if self.quick else [64, 1400]


#: one row to measure: (name, baseline name, fn(axis value) -> value or
#: (value, {side figure: value}))
Row = tuple[str, str, Callable[[int], "float | tuple[float, dict[str, float]]"]]


WATCHDOG_S = 180


def _watched(fn: Callable[[int], float | tuple[float, dict[str, float]]], size: int
             ) -> float | tuple[float, dict[str, float]]:
    """Run one measurement under an alarm: a receiver that waits for a datagram that never
    comes (a blocking loop counting to N) ends as an n/a row, not a hung run."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"no result within {WATCHDOG_S} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(WATCHDOG_S)
    try:
        return fn(size)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def measure(scenario: str, axis: Sequence[int], rows: Callable[[int], list[Row]],
            repeats: int, second: dict[str, str] | None = None, unit: str = "pps",
            lower_is_better: bool = False) -> list[Result]:
    """Measure every row at every axis value ``repeats`` times, interleaved (one run of
    each row, then the next run) so slow drift of a shared machine hits every row alike.
    ``second`` names a second baseline per row. A row that raises is reported as n/a with
    the reason, never fatal (a missing optional peer must not stop the run)."""
    out: list[Result] = []
    for size in axis:
        table = rows(size)
        res = [Result(scenario, name, size, baseline=base,
                      baseline2=(second or {}).get(name), unit=unit,
                      lower_is_better=lower_is_better) for name, base, _ in table]
        sides: list[dict[str, list[float]]] = [{} for _ in table]
        for _ in range(repeats):
            for r, side, (_, _, fn) in zip(res, sides, table, strict=True):
                if r.note:
                    continue
                _row_now[0] = r.name
                try:
                    got = _watched(fn, size)
                except Exception as e:  # reported in the table, not fatal
                    r.note = f"n/a: {type(e).__name__}: {e}"[:120]
                    continue
                if isinstance(got, tuple):
                    got, more = got
                    for k, v in more.items():
                        side.setdefault(k, []).append(v)
                r.runs.append(got)
            print(".", end="", file=sys.stderr, flush=True)
        for r, side in zip(res, sides, strict=True):
            r.extra = {k: statistics.median(v) for k, v in side.items()}
        out += res
    print(file=sys.stderr)
    return out


def plain_receiver(p: int, group: str = GROUP, *, join: bool = True, big: bool = True
                   ) -> socket.socket:
    """A plain socket bound to port ``p`` (SO_REUSEPORT, IP_MULTICAST_ALL off, a big queue
    unless ``big`` is False), joined to ``group`` on ``lo``: what a user would build
    without a library."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    if big:
        big_rcvbuf(s)
    s.bind(("", p))
    if join:
        plain_join(s, group)
    return s


def plain_join(s: socket.socket, group: str) -> None:
    """IP_ADD_MEMBERSHIP with an ip_mreqn naming ``lo`` by index (never the default)."""
    mreqn = socket.inet_aton(group) + bytes(4) + LO_INDEX.to_bytes(4, sys.byteorder)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def big_rcvbuf(sock: socket.socket) -> None:
    """Force a large receive queue (root in the namespace); fall back to SO_RCVBUF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BIG_RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BIG_RCVBUF)


def fill(p: int, count: int, size: int, groups: Sequence[str] = (GROUP,), per: int = 64
         ) -> None:
    """Queue ``count`` datagrams of ``size`` bytes for GROUP:p (send_batch, GSO when it can).
    With several ``groups``, batches of ``per`` go to each in turn."""
    payload = [b"b" * size] * per
    with mcastkit.MulticastSocket(4, interface="lo") as tx:
        if per == 1:  # one datagram per destination in turn: plain sendto is quicker
            st = tx.sock.sendto
            for i in range(count):
                st(payload[0], (groups[i % len(groups)], p))
            return
        left = count
        i = 0
        while left > 0:
            k = min(per, left)
            tx.send_batch(payload[:k], groups[i % len(groups)], p)
            left -= k
            i += 1


def fill_each(ports: Sequence[int], each: int, size: int) -> None:
    """Queue exactly ``each`` datagrams of ``size`` bytes for GROUP at every port."""
    payload = [b"b" * size] * min(64, each)
    with mcastkit.MulticastSocket(4, interface="lo") as tx:
        for p in ports:
            left = each
            while left > 0:
                k = min(64, left)
                tx.send_batch(payload[:k], GROUP, p)
                left -= k


def receiver(p: int, group: str = GROUP, **opts: object) -> mcastkit.MulticastSocket:
    """mcastkit's receiver for ``group``:p on lo with a big queue (``opts`` to open_receiver)."""
    rx = mcastkit.open_receiver(f"{group}:{p}", interface="lo", reuse_port=True, **opts)  # type: ignore[arg-type]
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


#: the clock every row is timed with: "cpu" (this process's CPU time, the default: on a
#: shared machine it leaves out the time other jobs had the CPU) or "wall"; child
#: processes (the C baselines, Twisted) read it from MCAST_BENCH_CLOCK
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: list[Callable[[], float]] = [time.process_time]


def set_clock(name: str) -> None:
    """Time every row with clock ``name`` (a key of CLOCKS), here and in child processes."""
    _clock[0] = CLOCKS[name]
    os.environ["MCAST_BENCH_CLOCK"] = name


def now() -> float:
    """The current reading of the selected clock, in seconds."""
    return _clock[0]()


def timed(fn: Callable[[], int]) -> float:
    """Run fn (returns datagrams handled) and return datagrams per second."""
    busy = parse_busy(os.environ.get(BUSY_ENV, "")).get(_row_now[0], 0.0)
    t = now()
    n = fn()
    if busy:  # only where MCAST_BENCH_BUSY names this row (compare mode's self-test)
        end = now() + (now() - t) * busy
        while now() < end:
            pass
    return n / (now() - t)


#: MCAST_BENCH_BUSY="ROW=PCT[;ROW=PCT]": the rows named there busy-wait PCT % of their
#: measured time inside it (rows timed by ``timed()``). Compare mode's self-test sets it on
#: one side's child processes to check that a real slowdown is found.
BUSY_ENV = "MCAST_BENCH_BUSY"
_row_now = [""]  # the row measure() is running, for the hook above


def parse_busy(spec: str) -> dict[str, float]:
    """``"ROW=PCT;ROW=PCT"`` -> {row: fraction}. Raises ValueError naming the bad part."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, pct = part.rpartition("=")
        try:
            frac = float(pct) / 100
        except ValueError:
            frac = -1.0
        if not sep or not name or frac < 0:
            raise ValueError(f"{BUSY_ENV}: {part!r} is not ROW=PERCENT (e.g. 'mcastkit sendto=15')")
        out[name] = frac
    return out


def io_backend() -> ModuleType:
    """The module that owns the receive-backend switch (``force_python``):
    ``mcastkit._io``, or ``mcastkit._batch`` in packages from before the core
    restructure, so compare mode can run these scenarios against such a package."""
    try:
        return importlib.import_module("mcastkit._io")
    except ImportError:
        return importlib.import_module("mcastkit._batch")


def rss_kib(field: str = "VmRSS") -> int:
    """This process's ``field`` of /proc/self/status in KiB (VmRSS, VmSize), -1 if absent."""
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def minflt() -> int:
    """Minor page faults of this process so far (getrusage ru_minflt)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def raise_nofile(need: int) -> None:
    """Raise the soft open-files limit to at least ``need`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def in_private_netns() -> bool:
    """True inside a network namespace of our own (``make bench`` makes one): only then may
    a scenario add links or change per-namespace sysctls. Where init's namespace cannot be
    read (not root), it must be scripts/in-netns's fresh one: MCAST_IN_NETNS=1 and no
    interface but lo and those a scenario added (named mkb*)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino != os.stat("/proc/1/ns/net").st_ino
    except OSError:
        names = {n for _, n in socket.if_nameindex()}
        return os.environ.get("MCAST_IN_NETNS") == "1" and all(
            n == "lo" or n.startswith("mkb") for n in names)


def netns_sysctl(key: str, value: int) -> int:
    """Set a per-namespace sysctl inside the bench namespace and return the old value.

    Raises RuntimeError outside a private namespace, and when the key turns out not to be
    per-namespace on this kernel (a fresh namespace sees the new value): the old value is
    written back at once, so the host is left as it was."""
    if not in_private_netns():
        raise RuntimeError(f"{key}: not inside a private network namespace (use make bench)")
    path = Path("/proc/sys") / key.replace(".", "/")

    def in_fresh_netns() -> str:
        return subprocess.run(["unshare", "--net", "cat", str(path)], capture_output=True,
                              text=True, check=False).stdout.strip()

    old = int(path.read_text().split()[0])
    before = in_fresh_netns()
    path.write_text(f"{value}\n")
    if in_fresh_netns() != before:  # a global knob: put it back at once
        path.write_text(f"{old}\n")
        raise RuntimeError(f"{key} is not per network namespace on this kernel; not changed")
    return old
