"""The encrypted UDP tunnel between two relays: its socket, timers and send queue.

Owns: the tunnel's UDP endpoint (an :mod:`mcastkit.aio` socket used for unicast: batched
receive, sendmmsg, the kernel's drop counter), binding (listen) or resolving (connect,
again while the link is down), the receive task that feeds every packet to the session
layer, the keepalive timer (dead-peer expiry, HELLOs, reconnecting with exponential
backoff on the connecting side), the queue of sealed DATA packets and its flush (flow
control towards the engine: a full socket buffer slows the relay down), sending control
packets, closing (BYE, nothing read left uncounted), and the state it reports.
The handshake, peers, authentication, replay windows and drop causes live in
:mod:`~mcastkit.relay._session` (the handshake is described there).
Must not: touch multicast sockets, decide what to relay, authenticate or seal a packet
itself, or log a payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from mcastkit import ErrorCode, McastError, McastOSError, MulticastSocket
from mcastkit.aio import AsyncMulticastSocket

from ._peer import Peer
from ._rules import TunnelSpec
from ._session import Addr, Sessions
from ._stats import Counters
from ._wire import Inner, TunnelKey, encode_inner, inner_overhead

__all__ = ["Tunnel"]

_log = logging.getLogger("mcastkit.relay")


class Tunnel:
    """One end of the relay tunnel.

    Args:
        spec: listen or connect, address, port, key file, timers, MTU.
        key: the pre-shared key.
        counters: where to count (the relay's shared counters).
        on_data: called with each authentic relayed datagram (on the loop, synchronously).
        on_batch: called after each received batch (the engine flushes its sends then).
        rcvbuf_bytes: socket buffer sizes to request (None: the kernel's default).
    """

    def __init__(self, spec: TunnelSpec, key: TunnelKey, counters: Counters,
                 on_data: Callable[[Inner], None], on_batch: Callable[[], None] = lambda: None,
                 rcvbuf_bytes: int | None = None) -> None:
        self.spec = spec
        self._key = key
        self._c = counters.tunnel
        self._batch_done = on_batch
        self._rcvbuf = rcvbuf_bytes
        self._s = Sessions(spec.mode, spec.mtu, key, self._c, on_data, self._transmit)
        self._ep: AsyncMulticastSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._out: list[bytes] = []  # sealed DATA packets waiting for flush()
        self._out_to: list[Addr] = []  # ... and where each goes
        self._final_drops = 0
        self._remote: Addr | None = None  # connect: the resolved peer address
        self._backoff = spec.keepalive_s
        self._closing = False
        self.local_address: tuple[str, int] = ("", 0)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind (listen) or resolve and open (connect); start the receive and keepalive
        tasks.

        Raises:
            McastOSError: the port is taken or the address cannot be used (names it).
        """
        loop = asyncio.get_running_loop()
        s = self.spec
        if s.mode == "listen":
            host = s.host or "0.0.0.0"
            port = s.port
        else:
            self._remote = await self._resolve()
            host = "::" if ":" in str(self._remote[0]) else "0.0.0.0"
            port = 0
        core = MulticastSocket(6 if ":" in host else 4, blocking=False,
                               rcvbuf_bytes=self._rcvbuf, sndbuf_bytes=self._rcvbuf)
        try:
            core.bind(port, host)
        except McastError as exc:
            core.close()
            raise McastOSError(getattr(exc, "errno", 0) or 0,
                               f"tunnel {s.mode} {host}:{port}: {exc.message}; pick another "
                               "--tunnel-listen port or check the address", op="tunnel"
                               ) from None
        self._ep = AsyncMulticastSocket(core, queue_size=16384, max_per_wakeup=512,
                                        watch_interfaces=False)
        self.local_address = core.local_address
        self._tasks = [loop.create_task(self._receive(), name="mcastkit-relay-tunnel-rx"),
                       loop.create_task(self._keepalive(), name="mcastkit-relay-tunnel")]
        _log.info("tunnel: %s on %s:%d (key id %s, session %016x)", s.mode,
                  *self.local_address, self._key.key_id.hex(), self._s.session)

    def kernel_drops(self) -> int:
        """Tunnel packets the kernel dropped (receive buffer full) plus those dropped
        from the receive queue; they never reached authentication."""
        ep = self._ep
        if ep is None or ep.closed:
            return self._final_drops
        st = ep.stats
        return max(0, st.kernel_drops) + st.queue_drops

    async def _receive(self) -> None:
        assert self._ep is not None
        ep = self._ep
        on_packet = self._s.on_packet
        while True:
            batch = await ep.recv_many(512)
            for d in batch:
                on_packet(d.data, (d.source, d.port), d.truncated)  # zone kept for replies
            self._batch_done()

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The tunnel's running tasks (the relay watches them for failures)."""
        return tuple(self._tasks)

    async def _drain_queued(self) -> None:
        """Process the packets already read but not handled yet (at close: none is lost
        without being counted)."""
        ep = self._ep
        if ep is None or ep.closed:
            return
        while ep.stats.queued:
            for d in await ep.recv_many(512):
                self._s.on_packet(d.data, (d.source, d.port), d.truncated)
        self._batch_done()

    async def _resolve(self) -> Addr:
        """The peer's address now (names are looked up each time: dynamic DNS).

        Raises:
            McastOSError: the name does not resolve (``NO_ROUTE``; an ``OSError``, so the
                keepalive's re-resolve while down keeps trying).
        """
        loop = asyncio.get_running_loop()
        host, port = self.spec.host, self.spec.port
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise McastOSError(0, f"tunnel peer {host}:{port}: the name {host!r} does not "
                               f"resolve ({exc.strerror}); check the spelling and DNS, or "
                               "give the peer's IP address", code=ErrorCode.NO_ROUTE) from exc
        return tuple(infos[0][4])

    async def close(self) -> None:
        """Tell established peers we are leaving (BYE), stop the timers, close."""
        if self._closing:
            return
        self._closing = True
        self._s.closing()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._ep is not None:
            await self._drain_queued()
            with contextlib.suppress(McastError, OSError):
                await self.flush()
            self._s.goodbye()
            self._final_drops = self.kernel_drops()
            self._ep.close()
        self._s.set_link()

    # ------------------------------------------------------------------ state

    @property
    def session(self) -> int:
        """This end's random session id."""
        return self._s.session

    @property
    def peers(self) -> dict[int, Peer]:
        """The known sessions of other relays, by session id."""
        return self._s.peers

    @property
    def up(self) -> bool:
        """True while at least one peer is established."""
        return self._s.up

    def describe(self) -> dict[str, Any]:
        """State, peers and counters (for statistics and the health endpoint)."""
        up = self._s.link_up
        return {"mode": self.spec.mode, "state": "up" if up else "down",
                "local": f"{self.local_address[0]}:{self.local_address[1]}",
                "key_id": self._key.key_id.hex(),
                "peers": [p.describe() for p in self._s.peers.values() if p.established and up],
                "kernel_drops": self.kernel_drops(),
                **self._c}

    # ------------------------------------------------------------------ sending

    def _transmit(self, packet: bytes, addr: Addr) -> None:
        """Send one sealed control packet now (a full socket buffer drops it, counted: the
        keepalive timer sends another)."""
        ep = self._ep
        if ep is None or ep.closed:
            return
        try:
            ep.socket.sendto(packet, addr[0], addr[1])
        except (McastError, OSError):
            self._c["send_errors"] += 1
            return
        self._c["packets_out"] += 1

    def fits(self, version: int, size: int) -> bool:
        """True if a payload of ``size`` bytes to an IPv``version`` group fits the MTU."""
        return size + inner_overhead(version) <= self.spec.mtu

    def send_data(self, group: str, port: int, source: str, source_port: int,
                  ttl: int | None, data: bytes) -> int:
        """Seal one datagram for every established peer and queue it for :meth:`flush`;
        the number of peers it is queued for. The caller checks :meth:`fits` first and
        counts what does not fit."""
        if not self._s.established or self._ep is None:
            return 0
        body = encode_inner(group, port, source, source_port, ttl, data)
        return self._s.seal_data(body, self._out, self._out_to)

    async def flush(self) -> None:
        """Send the queued DATA packets (sendmmsg per peer; waits while the socket buffer
        is full, so a fast sender slows the relay down instead of losing datagrams)."""
        out, to = self._out, self._out_to
        if not out:
            return
        self._out, self._out_to = [], []
        ep = self._ep
        if ep is None or ep.closed:
            self._c["send_errors"] += len(out)
            return
        first = to[0]
        if all(a == first for a in to):  # the usual case: one peer
            groups = [(first, out)]
        else:
            by: dict[Addr, list[bytes]] = {}
            for a, pkt in zip(to, out, strict=True):
                by.setdefault(a, []).append(pkt)
            groups = list(by.items())
        for addr, pkts in groups:
            try:
                n = await ep.send_many(pkts, addr[0], addr[1])
            except McastError as exc:
                n = exc.datagrams_sent or 0
                self._c["send_errors"] += len(pkts) - n
                _log.warning("tunnel: sending to %s:%s failed: %s", addr[0], addr[1],
                             exc.message)
            self._c["packets_out"] += n
            self._c["data_out"] += n

    # ------------------------------------------------------------------ keepalive

    async def _keepalive(self) -> None:
        s = self.spec
        while True:
            self._s.expire(time.monotonic(), s.dead_s)
            if s.mode == "connect":
                if not self._s.up:
                    with contextlib.suppress(OSError):  # re-resolve while down (dynamic DNS)
                        self._remote = await self._resolve()
                self._s.keepalive(self._remote)
            else:
                self._s.keepalive()
            wait = s.keepalive_s if self._s.up or s.mode == "listen" else self._backoff
            if s.mode == "connect" and not self._s.up:
                self._backoff = min(s.max_backoff_s, self._backoff * 2)
            else:
                self._backoff = s.keepalive_s
            await asyncio.sleep(wait)
