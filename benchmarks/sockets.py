"""Many sockets: 1, 16, 128 and 512 receivers, each on its own port and joined to the
group on ``lo``, share one burst of traffic (the same number of datagrams per socket).

Sync: each socket is drained in turn until it is empty, mcastkit's ``recv_batch(256)``
against plain ``recvfrom`` loops. aio: every endpoint consumed at once, ``mcastkit.aio``
(``recv_many``, stock loop, interface watching on as by default) against uvloop
``DatagramProtocol`` endpoints. "first pass" is the first burst after opening (buffers
are made then); "steady" the best of the next two bursts on the same sockets. Side
figures: resident and virtual memory per socket after the first pass (KiB)."""

from __future__ import annotations

import asyncio
import time
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
    plain_receiver,
    port,
    raise_nofile,
    receiver,
    rss_kib,
)

AXIS = [1, 16, 128, 512]
#: (first-pass rate, steady rate, memory per socket)
Passes = tuple[float, float, dict[str, float]]


def _mem() -> tuple[int, int]:
    return rss_kib("VmRSS"), rss_kib("VmSize")


def _passes(drain: Callable[[], int], ports: list[int], each: int,
            mem0: tuple[int, int]) -> tuple[float, float, dict[str, float]]:
    """(first-pass rate, steady rate, memory per socket) for a drain over ``ports``."""
    rates = []
    side: dict[str, float] = {}
    for i in range(3):
        fill_each(ports, each, 64)
        t = time.perf_counter()
        n = drain()
        rates.append(n / (time.perf_counter() - t))
        if n != each * len(ports):
            raise RuntimeError(f"received {n} of {each * len(ports)}")
        if i == 0:
            rss, vsz = _mem()
            side = {"rss_kib/sock": (rss - mem0[0]) / len(ports),
                    "vsz_kib/sock": (vsz - mem0[1]) / len(ports)}
    return rates[0], max(rates[1:]), side


def _sync(kind: str, n: int, total: int) -> Passes:
    each = max(1, total // n)
    ports = [port() for _ in range(n)]
    raise_nofile(4 * n + 64)
    mem0 = _mem()
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
    try:
        return _passes(drain, ports, each, mem0)
    finally:
        for s in socks:
            s.close()


def _aio(kind: str, n: int, total: int) -> Passes:
    each = max(1, total // n)
    ports = [port() for _ in range(n)]
    raise_nofile(4 * n + 64)
    if kind == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    async def main() -> tuple[float, float, dict[str, float]]:
        mem0 = _mem()
        want = each * n
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
            closers: list[Callable[[], object]] = [tr.close for tr in trs]

            async def consume() -> int:
                got[0] = 0
                done[0] = loop.create_future()
                await asyncio.wait_for(done[0], 60)
                return got[0]
        else:
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

            async def consume() -> int:
                return sum(await asyncio.gather(*(one(ep) for ep in eps)))

            closers = [ep.close for ep in eps]
        try:
            rates = []
            side: dict[str, float] = {}
            for i in range(3):
                fill_each(ports, each, 64)
                t = time.perf_counter()
                k = await consume()
                rates.append(k / (time.perf_counter() - t))
                if i == 0:
                    rss, vsz = _mem()
                    side = {"rss_kib/sock": (rss - mem0[0]) / n,
                            "vsz_kib/sock": (vsz - mem0[1]) / n}
            return rates[0], max(rates[1:]), side
        finally:
            for c in closers:
                r = c()
                if asyncio.iscoroutine(r):
                    await r

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


#: a first-pass row leaves its run's three passes here for the steady row that follows it
_memo: dict[tuple[str, int], Passes] = {}


def _row(fn: Callable[[str, int, int], Passes], kind: str, phase: int, total: int
         ) -> Callable[[int], tuple[float, dict[str, float]]]:
    def one(n: int) -> tuple[float, dict[str, float]]:
        if phase == 0:
            r = _memo[(kind, n)] = fn(kind, n, total)
            return r[0], r[2]
        r = _memo.pop((kind, n), None) or fn(kind, n, total)
        return r[1], {}
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


def run(o: Options) -> list[Result]:
    total = 15_000 if o.quick else 60_000
    return measure("sockets", AXIS, lambda _n: rows(total), o.runs)

