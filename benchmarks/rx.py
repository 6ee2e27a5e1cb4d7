"""Receive scenarios: drain a queue that was filled first (large rcvbuf), per receiver."""

from __future__ import annotations

import asyncio
import subprocess

from . import _peers
from ._util import (
    GROUP,
    Result,
    Row,
    big_rcvbuf,
    build_c,
    fill,
    io_backend,
    measure,
    now,
    port,
    receiver,
    timed,
)

_io = io_backend()  # mcastkit._io (mcastkit._batch in older packages: compare mode)


def _drain_plain(kind: str, count: int, size: int) -> float:
    p = port()
    rx = receiver(p)
    try:
        fill(p, count, size)
        s = rx.sock
        s.setblocking(False)

        def go() -> int:
            n = 0
            try:
                if kind == "recvfrom":
                    rf = s.recvfrom
                    while True:
                        rf(65535)
                        n += 1
                else:
                    rm = s.recvmsg
                    while True:
                        rm(65535, 256)
                        n += 1
            except BlockingIOError:
                return n

        return timed(go)
    finally:
        rx.close()


def _drain_blocking(kind: str, count: int, size: int) -> float:
    """Blocking receivers that read exactly ``count`` datagrams (the queue holds them all):
    plain ``recvfrom`` / ``recvmsg`` loops on a blocking socket (no timeout: CPython reads
    without polling first) and mcastkit's ``recv()`` the way most code calls it. The
    ``+anc`` / ``+meta`` rows have metadata on (the same ancillary options for both)."""
    p = port()
    rx = receiver(p, metadata=kind.endswith(("+anc", "+meta")))
    try:
        fill(p, count, size)
        s = rx.sock

        def go() -> int:
            if kind == "recvfrom":
                rf = s.recvfrom
                for _ in range(count):
                    rf(65535)
            elif kind == "recvmsg+anc":
                rm = s.recvmsg
                for _ in range(count):
                    rm(65535, 256)
            elif kind == "recv(timeout_s=0.5)":
                r = rx.recv
                for _ in range(count):
                    r(0.5)
            else:  # recv(), recv()+meta
                r = rx.recv
                for _ in range(count):
                    r()
            return count

        return timed(go)
    finally:
        rx.close()


def _drain_mcastkit(kind: str, count: int, size: int) -> float:
    p = port()
    meta = kind.endswith("+meta")
    _io.force_python(kind.startswith("recv_batch[python]"))
    rx = receiver(p, metadata=meta)
    try:
        fill(p, count, size)
        rx.setblocking(False)

        def go() -> int:
            n = 0
            try:
                if kind.startswith("recv()"):
                    r = rx.recv
                    while True:
                        r()
                        n += 1
                else:
                    rb = rx.recv_batch
                    while True:
                        n += len(rb(256))
            except BlockingIOError:
                return n

        return timed(go)
    finally:
        rx.close()
        _io.force_python(False)


def _drain_asyncio(kind: str, count: int, size: int) -> float:
    if kind == "uvloop":
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    p = port()
    rx = receiver(p)
    try:
        fill(p, count, size)
        done = loop.create_future()
        got = [0]

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got[0] += 1
                if got[0] >= count and not done.done():
                    done.set_result(None)

        async def main() -> int:
            s = rx.sock
            s.setblocking(False)
            tr, _ = await loop.create_datagram_endpoint(Proto, sock=s)
            try:
                await asyncio.wait_for(done, 60)
            finally:
                tr.abort()
            return got[0]

        return timed(lambda: loop.run_until_complete(main()))
    finally:
        loop.close()
        rx.close()


def _drain_aio(kind: str, count: int, size: int) -> float:
    """mcastkit.aio on the stock loop: ``await ep.recv()``, ``async for`` or
    ``await ep.recv_many(256)`` (no wait_for per datagram: that creates a task each)."""

    import mcastkit.aio as aio

    p = port()

    async def main() -> float:
        async with aio.open_multicast(f"{GROUP}:{p}", interface="lo",
                                      queue_size=count + 256, watch_interfaces=False) as ep:
            big_rcvbuf(ep.socket.sock)
            fill(p, count, size)
            t = now()
            n = 0
            if kind == "recv":
                r = ep.recv
                while n < count:
                    await r(10)
                    n += 1
            elif kind == "async for":
                async for _d in ep:
                    n += 1
                    if n >= count:
                        break
            else:
                rm = ep.recv_many
                while n < count:
                    n += len(await rm(256, 10))
            return n / (now() - t)

    return asyncio.run(main())


def _drain_mcast(count: int, size: int) -> float:
    """mcastkit.compat.MCast: on_data_in fired from do_events (SelectWaitMillis=0)."""
    from mcastkit.compat import MCast

    p = port()
    mc = MCast()
    got = [0]

    def on_data_in(e: object) -> None:
        got[0] += 1

    mc.on_data_in = on_data_in
    mc.receive_interface = mc.send_interface = "lo"
    mc.local_port = p
    mc.multicast_group = GROUP
    mc.config("SelectWaitMillis=0")
    mc.active = True
    try:
        # the MulticastSocket the MCast wraps (private: ``_s.core`` today, ``_core`` in
        # the releases before the compat skin became tables, so compare mode reaches both)
        core = mc._s.core if hasattr(mc, "_s") else getattr(mc, "_core", None)
        assert core is not None
        big_rcvbuf(core.sock)
        fill(p, count, size)

        def go() -> int:
            de = mc.do_events
            while got[0] < count:
                before = got[0]
                de()
                if got[0] == before:
                    break
            return got[0]

        return timed(go)
    finally:
        mc.active = False


def _drain_twisted(count: int, size: int) -> float:
    """Twisted's multicast port (reactor in a child process: a reactor runs only once)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("twisted") is None:
        raise RuntimeError("twisted not installed")
    p = port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks._twisted_rx", GROUP, str(p),
                             str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdin and proc.stdout
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"twisted receiver did not start: {line!r}")
    fill(p, count, size)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    n, secs = proc.stdout.readline().split()
    proc.wait(10)
    return int(n) / float(secs)


def _drain_c(count: int, size: int) -> float:
    exe = build_c("recvmmsg_rx")
    if exe is None:
        raise RuntimeError("gcc not available")
    p = port()
    proc = subprocess.Popen([str(exe), GROUP, str(p), str(1 << 28), "drain"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    assert proc.stdout.readline().strip() == "ready"
    fill(p, count, size)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    n, secs = proc.stdout.readline().split()
    proc.wait(10)
    return int(n) / float(secs)


#: rows also compared with a second baseline (issue 5 target (b): stock loop and uvloop)
SECOND: dict[str, str] = {
    "mcastkit.aio recv()": "uvloop DatagramProtocol",
    "mcastkit.aio async for": "uvloop DatagramProtocol",
    "mcastkit.aio recv_many(256)": "uvloop DatagramProtocol",
    "multicast_expert AsyncMcastRxSocket": "uvloop DatagramProtocol",
    "asyncio-dgram recv()": "uvloop DatagramProtocol",
}


def scenarios(count: int) -> list[Row]:
    """(name, baseline name, fn(size) -> pps)."""
    base = "recvfrom loop"
    blk = "recvfrom loop (blocking)"
    aio = "asyncio DatagramProtocol"
    return [
        ("recvfrom loop", base, lambda s: _drain_plain("recvfrom", count, s)),
        ("recvmsg loop", base, lambda s: _drain_plain("recvmsg", count, s)),
        (blk, blk, lambda s: _drain_blocking("recvfrom", count, s)),
        ("recvmsg loop+anc (blocking)", blk, lambda s: _drain_blocking("recvmsg+anc", count, s)),
        ("C recvmmsg", base, lambda s: _drain_c(count, s)),
        (aio, base, lambda s: _drain_asyncio("asyncio", count, s)),
        ("uvloop DatagramProtocol", base, lambda s: _drain_asyncio("uvloop", count, s)),
        ("mcastkit recv()", blk, lambda s: _drain_blocking("recv()", count, s)),
        ("mcastkit recv(timeout_s=0.5)", blk,
         lambda s: _drain_blocking("recv(timeout_s=0.5)", count, s)),
        ("mcastkit recv()+meta", "recvmsg loop+anc (blocking)",
         lambda s: _drain_blocking("recv()+meta", count, s)),
        ("mcastkit recv() non-blocking", base, lambda s: _drain_mcastkit("recv()", count, s)),
        ("mcastkit recv_batch", base, lambda s: _drain_mcastkit("recv_batch", count, s)),
        ("mcastkit recv_batch+meta", base,
         lambda s: _drain_mcastkit("recv_batch+meta", count, s)),
        ("mcastkit recv_batch[python]+meta", base,
         lambda s: _drain_mcastkit("recv_batch[python]+meta", count, s)),
        ("mcastkit.aio recv()", aio, lambda s: _drain_aio("recv", count, s)),
        ("mcastkit.aio async for", aio, lambda s: _drain_aio("async for", count, s)),
        ("mcastkit.aio recv_many(256)", aio, lambda s: _drain_aio("recv_many", count, s)),
        ("MCast on_data_in (do_events)", base, lambda s: _drain_mcast(count, s)),
        ("Twisted multicast port", base, lambda s: _drain_twisted(count, s)),
        ("multicast_expert McastRxSocket", blk,
         lambda s: _peers.multicast_expert_sync(count, s)),
        ("multicast_expert AsyncMcastRxSocket", aio,
         lambda s: _peers.multicast_expert_async(count, s)),
        ("asyncio-dgram recv()", aio, lambda s: _peers.asyncio_dgram(count, s)),
    ]


def run(count: int, sizes: list[int], repeats: int) -> list[Result]:
    return measure("drain", sizes, lambda _s: scenarios(count), repeats, second=SECOND)
