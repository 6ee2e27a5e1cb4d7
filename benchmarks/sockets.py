"""Many sockets: 1, 16, 128 and 512 receivers, each on its own port and joined to the
group on ``lo``, share one burst of traffic (the same number of datagrams per socket).

Sync: each socket is drained in turn until it is empty, mcastkit's ``recv_batch(256)``
against plain ``recvfrom`` loops. aio: every endpoint consumed at once, ``mcastkit.aio``
(``recv_many``, stock loop, interface watching on as by default) against uvloop
``DatagramProtocol`` endpoints. "first pass" is the first burst after opening (buffers
are made then); "steady" the best of the next two bursts on the same sockets.

Memory per socket (KiB, lower is better) is measured in a fresh child process
(``python -m benchmarks.sockets KIND N``: open N receivers, one burst, print the growth of
VmRSS and VmSize per socket): a long-running process reuses memory that earlier rows
freed, which would hide what a socket costs. The modules a kind needs (``mcastkit.aio``,
``uvloop``) are imported before the first reading: loading them is paid once per
process, and at 16 sockets it used to be most of the figure.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from ._util import (
    GROUP,
    Options,
    Result,
    Row,
    big_rcvbuf,
    fill_each,
    measure,
    now,
    plain_receiver,
    port,
    raise_nofile,
    receiver,
    rss_kib,
)

AXIS = [1, 16, 128, 512]
MEM_AXIS = [16, 512]
#: (first-pass rate, steady rate)
Passes = tuple[float, float]


def _timed_passes(drain: Callable[[], int], ports: list[int], each: int) -> list[float]:
    rates = []
    for _ in range(3):
        fill_each(ports, each, 64)
        t = now()
        n = drain()
        rates.append(n / (now() - t))
        if n != each * len(ports):
            raise RuntimeError(f"received {n} of {each * len(ports)}")
    return rates


def _open_sync(kind: str, ports: list[int]) -> tuple[list[Any], Callable[[], int]]:
    if kind == "plain":
        socks: list[Any] = [plain_receiver(p) for p in ports]
        for s in socks:
            s.setblocking(False)

        def drain() -> int:
            k = 0
            for s in socks:
                rf = s.recvfrom
                try:
                    while True:
                        rf(65535)
                        k += 1
                except BlockingIOError:
                    pass
            return k
    else:
        socks = [receiver(p) for p in ports]
        for s in socks:
            s.setblocking(False)

        def drain() -> int:
            k = 0
            for s in socks:
                rb = s.recv_batch
                try:
                    while True:
                        k += len(rb(256))
                except BlockingIOError:
                    pass
            return k
    return socks, drain


def _sync(kind: str, n: int, total: int) -> Passes:
    each = max(1, total // n)
    ports = [port() for _ in range(n)]
    raise_nofile(4 * n + 64)
    socks, drain = _open_sync(kind, ports)
    try:
        rates = _timed_passes(drain, ports, each)
        return rates[0], max(rates[1:])
    finally:
        for s in socks:
            s.close()


async def _open_aio(kind: str, ports: list[int], each: int
                    ) -> tuple[Callable[[], Any], list[Callable[[], object]]]:
    """(consume: a coroutine function taking one burst, closers) for ``kind``."""
    loop = asyncio.get_running_loop()
    want = each * len(ports)
    if kind == "uvloop":
        got = [0]
        done: list[asyncio.Future[None]] = [loop.create_future()]

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got[0] += 1
                if got[0] >= want and not done[0].done():
                    done[0].set_result(None)

        trs = []
        for p in ports:
            s = plain_receiver(p)
            s.setblocking(False)
            tr, _ = await loop.create_datagram_endpoint(Proto, sock=s)
            trs.append(tr)

        async def consume() -> int:
            got[0] = 0
            done[0] = loop.create_future()
            await asyncio.wait_for(done[0], 60)
            return got[0]

        return consume, [tr.close for tr in trs]
    import mcastkit.aio as aio

    eps = []
    for p in ports:
        ep = aio.open_multicast(f"{GROUP}:{p}", interface="lo", reuse_port=True,
                                queue_size=each + 256)
        await ep.__aenter__()
        big_rcvbuf(ep.socket.sock)
        eps.append(ep)

    async def one(ep: Any) -> int:
        k = 0
        rm = ep.recv_many
        while k < each:
            k += len(await rm(256, 10))
        return k

    async def consume_all() -> int:
        return sum(await asyncio.gather(*(one(ep) for ep in eps)))

    return consume_all, [ep.close for ep in eps]


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def _close_all(closers: list[Callable[[], object]]) -> None:
    for c in closers:
        r = c()
        if asyncio.iscoroutine(r):
            await r


def _aio(kind: str, n: int, total: int) -> Passes:
    each = max(1, total // n)
    ports = [port() for _ in range(n)]
    raise_nofile(4 * n + 64)
    loop = _new_loop(kind)

    async def main() -> Passes:
        consume, closers = await _open_aio(kind, ports, each)
        try:
            rates = []
            for _ in range(3):
                fill_each(ports, each, 64)
                t = now()
                k = await consume()
                rates.append(k / (now() - t))
            return rates[0], max(rates[1:])
        finally:
            await _close_all(closers)

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


#: a first-pass row leaves its run's passes here for the steady row that follows it
_memo: dict[tuple[str, int], Passes] = {}


def _row(fn: Callable[[str, int, int], Passes], kind: str, phase: int, total: int
         ) -> Callable[[int], float]:
    def one(n: int) -> float:
        if phase == 0:
            r = _memo[(kind, n)] = fn(kind, n, total)
            return r[0]
        r = _memo.pop((kind, n), None) or fn(kind, n, total)
        return r[1]
    return one


def rows(total: int) -> list[Row]:
    out: list[Row] = []
    for face, fn, base, ours in (("sync", _sync, "plain", "mcastkit"),
                                 ("aio", _aio, "uvloop", "mcastkit.aio")):
        for phase, label in enumerate(("first pass", "steady")):
            b = f"{face} {base} sockets, {label}"
            out.append((b, b, _row(fn, base, phase, total)))
            out.append((f"{face} {ours} sockets, {label}", b, _row(fn, ours, phase, total)))
    return out


# --------------------------------------------------------------------------- memory

def probe(kind: str, n: int) -> dict[str, float]:
    """In this (fresh) process: open ``n`` receivers of ``kind``, take one burst of 64
    datagrams each, and return the growth of VmRSS / VmSize per socket in KiB."""
    ports = [port() for _ in range(n)]
    raise_nofile(4 * n + 64)
    if kind == "mcastkit.aio":  # a module is loaded once per process, not per socket
        import mcastkit.aio  # noqa: F401
    elif kind == "uvloop":
        import uvloop  # noqa: F401
    rss0, vsz0 = rss_kib("VmRSS"), rss_kib("VmSize")
    if kind in ("plain", "mcastkit"):
        socks, drain = _open_sync(kind, ports)
        fill_each(ports, 64, 64)
        drain()
        rss, vsz = rss_kib("VmRSS"), rss_kib("VmSize")
        for s in socks:
            s.close()
    else:
        loop = _new_loop(kind)

        async def main() -> tuple[int, int]:
            consume, closers = await _open_aio(kind, ports, 64)
            fill_each(ports, 64, 64)
            await consume()
            out = rss_kib("VmRSS"), rss_kib("VmSize")
            await _close_all(closers)
            return out

        rss, vsz = loop.run_until_complete(main())
        loop.close()
    return {"rss": (rss - rss0) / n, "vsz": (vsz - vsz0) / n}


def _mem(kind: str, n: int) -> tuple[float, dict[str, float]]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.sockets", kind, str(n)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return got["rss"], {"vsz_kib/sock": got["vsz"]}


def mem_rows() -> list[Row]:
    return [
        ("memory: plain socket", "memory: plain socket", lambda n: _mem("plain", n)),
        ("memory: mcastkit socket", "memory: plain socket", lambda n: _mem("mcastkit", n)),
        ("memory: uvloop endpoint", "memory: uvloop endpoint", lambda n: _mem("uvloop", n)),
        ("memory: mcastkit.aio endpoint", "memory: uvloop endpoint",
         lambda n: _mem("mcastkit.aio", n)),
    ]


def run(o: Options) -> list[Result]:
    total = 15_000 if o.quick else 60_000
    out = measure("sockets", AXIS, lambda _n: rows(total), o.runs)
    out += measure("sockets", MEM_AXIS, lambda _n: mem_rows(), 1, unit="KiB/sock",
                   lower_is_better=True)
    return out


if __name__ == "__main__":  # the memory probe's child process
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]))))
