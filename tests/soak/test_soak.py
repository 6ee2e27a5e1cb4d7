"""The soak: every face receiving while senders, interface flaps and forked children
come and go at random, for ``MCASTKIT_SOAK_S`` seconds (issue 14).

Owns: one long run in a fresh namespace with
  * senders: ``sendto`` and ``send_batch`` (loop and mmsg) from two sockets, seeded;
  * receivers on every face: the sync core (``recv_batch`` in a thread), asyncio
    (``aio.open_multicast`` in a thread's loop) and ``MCast`` (``do_events`` in a thread);
  * a socket joined by name on a veth that is deleted and re-created at random, then
    ``refresh_interfaces()``;
  * forked children that close their inherited copy of a receiver (a ``with`` block);
and asserts the invariants: for each receiver, delivered + every drop counter == sent;
no growth of descriptors, kernel memberships or RSS from the steady state to the end;
no spin (CPU time bounded while everything idles).
Must not: run unless asked (``soak`` marker), or leave the namespace.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from typing import Any

import pytest

import mcastkit
from mcastkit import MulticastSocket, ReceiveTimeoutError, SendError, aio
from mcastkit.compat import MCast, MCastDataInEventParams
from tests.support import kernelstate
from tests.support.addrs import asm4
from tests.support.netns import Netns
from tests.support.soak import soak_seconds

pytestmark = [pytest.mark.soak, pytest.mark.kernel]

G = asm4(98, 1)
G_FLAP = asm4(98, 2)
SENTINEL = b"\xffsentinel"


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _kernel_memberships() -> int:
    return sum(1 for _dev, g in kernelstate.igmp_groups() if g in (G, G_FLAP))


class SyncRx:
    """The sync core face: recv_batch in a thread."""

    def __init__(self, port: int) -> None:
        self.sock = mcastkit.open_receiver(f"{G}:{port}", interface="lo", reuse_port=True,
                                           reuse_address=True, rcvbuf_bytes=1 << 22)
        self.got = 0
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                for d in self.sock.recv_batch(256, timeout_s=0.5):
                    if d.data == SENTINEL:
                        self.done.set()
                    else:
                        self.got += 1
            except ReceiveTimeoutError:
                continue

    def drops(self) -> int:
        return self.sock.kernel_drops()


class AioRx:
    """The asyncio face: its own loop in a thread."""

    def __init__(self, port: int) -> None:
        self.got = 0
        self.done = threading.Event()
        self.ready = threading.Event()
        self.ep: Any = None
        self.t = threading.Thread(target=lambda: asyncio.run(self._run(port)), daemon=True)
        self.t.start()
        assert self.ready.wait(10)

    async def _run(self, port: int) -> None:
        self.ep = aio.open_multicast(f"{G}:{port}", interface="lo", queue_size=1 << 16,
                                     watch_interfaces=False, rcvbuf_bytes=1 << 22,
                                     reuse_port=True, reuse_address=True)
        self.ready.set()
        async with self.ep:
            while True:
                d = await self.ep.recv()
                if d.data == SENTINEL:
                    break
                self.got += 1
            self.final = self.ep.stats
        self.done.set()

    def drops(self) -> int:
        st = self.final
        return int(st.kernel_drops + st.queue_drops + st.discarded)


class CompatRx:
    """The IPWorks face: do_events in a thread."""

    def __init__(self, port: int) -> None:
        self.got = 0
        self.done = threading.Event()
        self.mc = MCast()
        self.mc.config("SelectWaitMillis=100")
        self.mc.receive_interface = "lo"
        self.mc.send_interface = "lo"
        self.mc.local_port = port
        self.mc.config("InBufferSize=4194304")
        self.mc.config("ShareLocalPort=True")
        self.mc.multicast_group = G
        self.mc.on_data_in = self._on_data
        self.mc.active = True
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _on_data(self, e: MCastDataInEventParams) -> None:
        if e.datagram == SENTINEL:
            self.done.set()
        else:
            self.got += 1

    def _run(self) -> None:
        while not self.done.is_set():
            self.mc.do_events()

    def drops(self) -> int:
        return int(self.mc._s.core.kernel_drops())  # type: ignore[union-attr]


def _make_flap(netns: Netns) -> None:
    netns.ip("link", "add", "f0", "type", "veth", "peer", "name", "f0p")
    netns.ip("link", "set", "f0p", "up")
    netns.ip("link", "set", "f0", "up")


def test_soak_every_face_with_flaps_and_forks(netns: Netns, mcast_port: int) -> None:
    duration = soak_seconds()
    rnd = random.Random(14)
    port = mcast_port
    _make_flap(netns)
    flap_rx = MulticastSocket(4)
    flap_rx.bind(0)
    flap_rx.join(G_FLAP, "f0")
    rxs: list[Any] = [SyncRx(port), AioRx(port), CompatRx(port)]
    tx1 = MulticastSocket(4, interface="lo")
    tx2 = MulticastSocket(4, interface="lo")
    sent = 0
    errors = 0
    flaps = forks = 0

    def send_some(n: int) -> None:
        nonlocal sent, errors
        tx = rnd.choice((tx1, tx2))
        payloads = [os.urandom(rnd.randint(1, 512)) for _ in range(n)]
        how = rnd.choice(("sendto", "loop", "mmsg"))
        try:
            if how == "sendto":
                for p in payloads:
                    tx.sendto(p, G, port)
                    sent += 1
            else:
                sent += tx.send_batch(payloads, G, port, method=how)
        except SendError as exc:  # counted by the core; the accounting below uses them
            errors += 1
            sent += exc.datagrams_sent or 0

    # steady state first, then measure growth from there
    for _ in range(20):
        send_some(16)
    time.sleep(0.5)
    fds0, rss0, kernel0 = _fds(), _rss_kib(), _kernel_memberships()
    t_end = time.monotonic() + duration
    while time.monotonic() < t_end:
        r = rnd.random()
        if r < 0.03:  # an interface flap: re-created, re-joined by name
            netns.ip("link", "del", "f0")
            _make_flap(netns)
            flap_rx.refresh_interfaces()
            flaps += 1
        elif r < 0.06:  # a forked child closes its copy of the sync receiver
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                try:
                    with rxs[0].sock:
                        pass
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            forks += 1
        else:
            send_some(rnd.randint(1, 64))
        time.sleep(rnd.random() * 0.002)
    assert [m.group for m in flap_rx.memberships] == [G_FLAP]
    assert [m.group for m in rxs[0].sock.memberships] == [G]

    # no spin: everything idles for a second
    time.sleep(0.3)
    cpu0 = time.process_time()
    time.sleep(1.0)
    idle_cpu = time.process_time() - cpu0
    fds1, rss1, kernel1 = _fds(), _rss_kib(), _kernel_memberships()

    tx1.sendto(SENTINEL, G, port)
    for rx in rxs:
        assert rx.done.wait(30), f"{type(rx).__name__} never saw the sentinel"
        rx.t.join(30)
    tx_errors = tx1.stats.send_errors + tx2.stats.send_errors
    assert errors == 0 or tx_errors >= errors
    for rx in rxs:
        # 20 * 16 warm-up datagrams went out before the loop too
        assert rx.got + rx.drops() == sent, (type(rx).__name__, rx.got, rx.drops(), sent)
    assert idle_cpu < 0.25, f"{idle_cpu:.2f} s of CPU in 1 s of idling (a spin)"
    assert fds1 <= fds0, (fds0, fds1)
    assert kernel1 == kernel0, (kernel0, kernel1)
    assert rss1 - rss0 < 16 * 1024, f"RSS grew {rss1 - rss0} KiB"
    assert flaps + forks > 0
    for rx in rxs:
        if isinstance(rx, SyncRx):
            rx.sock.close()
        if isinstance(rx, CompatRx):
            rx.mc.active = False
    for s in (tx1, tx2, flap_rx):
        s.close()
