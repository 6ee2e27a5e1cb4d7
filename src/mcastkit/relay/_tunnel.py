"""The encrypted UDP tunnel between two relays: handshake, keepalive, reconnect, peers.

Owns: the tunnel's UDP endpoint (an :mod:`mcastkit.aio` socket used for unicast: batched
receive, sendmmsg, the kernel's drop counter), the session handshake (each side proves it
holds the key and that its peer's session is fresh by echoing the peer's random session
id), keepalives, dead-peer detection, reconnecting with exponential backoff (connecting
side), the link state both sides report, flow control towards the engine, and counting
every dropped packet by cause (logged without payloads, rate-limited).
Must not: touch multicast sockets, decide what to relay, or log a payload.

Handshake: the connecting side C sends HELLO(echo=0); the listener L answers
HELLO(echo=C's session); C, seeing its own session echoed, knows L is live and answers
HELLO(echo=L's session, established); L now knows C is live. DATA is accepted only from
an established session, and each session's counters pass a replay window, so a packet
recorded earlier (this session or an older one) is never relayed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from mcastkit import McastError, McastOSError, MulticastSocket
from mcastkit.aio import AsyncMulticastSocket

from ._peer import Peer
from ._rules import TunnelSpec
from ._stats import Counters
from ._wire import (
    CONTROL,
    Drop,
    Inner,
    Kind,
    SessionCipher,
    TunnelKey,
    decode_inner,
    encode_inner,
    inner_overhead,
    open_packet,
    parse_header,
)

__all__ = ["Peer", "Tunnel"]

_log = logging.getLogger("mcastkit.relay")
_F_ESTABLISHED = 1
_FAST = struct.Struct("!4sBB4sQQ")  # the header, magic and version read as one field
_MAGIC_V1 = b"MKR\x01"
_MIN = _FAST.size + 16  # header + tag
_MAX_CANDIDATES = 64


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
        self._on_data = on_data
        self._batch_done = on_batch
        self._rcvbuf = rcvbuf_bytes
        self.session = int.from_bytes(os.urandom(8), "big") or 1
        self._tx: SessionCipher = key.session(self.session)
        self._counter = -1  # DATA packets: 0, 1, 2... (gaps at the peer count as lost)
        self._control = CONTROL  # HELLO / BYE: their own range, so DATA has no gaps
        self._ciphers: dict[int, SessionCipher] = {}
        self.peers: dict[int, Peer] = {}
        self._ep: AsyncMulticastSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._out: list[bytes] = []  # sealed DATA packets waiting for flush()
        self._out_to: list[tuple[Any, ...]] = []  # ... and where each goes
        self._final_drops = 0
        self._established: list[Peer] = []  # kept by _set_link() on every peer change
        self._remote: tuple[Any, ...] | None = None  # connect: the resolved peer address
        self._backoff = spec.keepalive_s
        self._was_up = False
        self._closing = False
        self.local_address: tuple[str, int] = ("", 0)
        self._logged: dict[str, int] = {}

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
                  *self.local_address, self._key.key_id.hex(), self.session)

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
        on_packet = self._on_packet
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
                self._on_packet(d.data, (d.source, d.port), d.truncated)
        self._batch_done()

    async def _resolve(self) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.spec.host, self.spec.port, type=socket.SOCK_DGRAM)
        return tuple(infos[0][4])

    async def close(self) -> None:
        """Tell established peers we are leaving (BYE), stop the timers, close."""
        if self._closing:
            return
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._ep is not None:
            await self._drain_queued()
            with contextlib.suppress(McastError, OSError):
                await self.flush()
            for p in list(self.peers.values()):
                if p.established:
                    self._send(Kind.BYE, self._last_data(), p.addr)
            self._final_drops = self.kernel_drops()
            self._ep.close()
        self._set_link()

    # ------------------------------------------------------------------ state

    @property
    def up(self) -> bool:
        """True while at least one peer is established."""
        return any(p.established for p in self.peers.values())

    def describe(self) -> dict[str, Any]:
        """State, peers and counters (for statistics and the health endpoint)."""
        up = self.up and not self._closing
        return {"mode": self.spec.mode, "state": "up" if up else "down",
                "local": f"{self.local_address[0]}:{self.local_address[1]}",
                "key_id": self._key.key_id.hex(),
                "peers": [p.describe() for p in self.peers.values() if p.established and up],
                "kernel_drops": self.kernel_drops(),
                **self._c}

    def _set_link(self) -> None:
        self._established = [p for p in self.peers.values() if p.established]
        up = self.up and not self._closing
        if up != self._was_up:
            self._was_up = up
            self._c["link_changes"] += 1
            peers = ", ".join(f"{p.addr[0]}:{p.addr[1]}" for p in self.peers.values()
                              if p.established)
            if up:
                _log.warning("tunnel: link up (%s)", peers)
            else:
                _log.warning("tunnel: link down")

    # ------------------------------------------------------------------ sending

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _next_control(self) -> int:
        self._control += 1
        return self._control

    def _send(self, kind: Kind, body: bytes, addr: tuple[Any, ...], flags: int = 0) -> None:
        """Send one control packet now (a full socket buffer drops it, counted: the
        keepalive timer sends another)."""
        ep = self._ep
        if ep is None or ep.closed:
            return
        try:
            ep.socket.sendto(self._tx.seal(kind, self._next_control(), body, flags), addr[0],
                             addr[1])
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
        est = self._established
        if not est or self._ep is None:
            return 0
        body = encode_inner(group, port, source, source_port, ttl, data)
        for p in est:
            self._out.append(self._tx.seal(Kind.DATA, self._next(), body))
            self._out_to.append(p.addr)
        return len(est)

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
            by: dict[tuple[Any, ...], list[bytes]] = {}
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
            now = time.monotonic()
            for sid, p in list(self.peers.items()):
                if now - p.last_rx > s.dead_s:
                    if p.established:
                        _log.warning("tunnel: peer %s:%s silent for %.1f s", p.addr[0],
                                     p.addr[1], now - p.last_rx)
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
            self._set_link()
            if s.mode == "connect":
                await self._hello_remote()
            else:
                for p in self.peers.values():
                    if p.established:
                        self._hello(p)
            wait = s.keepalive_s if self.up or s.mode == "listen" else self._backoff
            if s.mode == "connect" and not self.up:
                self._backoff = min(s.max_backoff_s, self._backoff * 2)
            else:
                self._backoff = s.keepalive_s
            await asyncio.sleep(wait)

    async def _hello_remote(self) -> None:
        if not self.up:
            with contextlib.suppress(OSError):  # re-resolve while down (dynamic DNS)
                self._remote = await self._resolve()
        est = [p for p in self.peers.values() if p.established]
        if est:
            for p in est:
                self._hello(p)
        elif self._remote is not None:
            self._send(Kind.HELLO, (0).to_bytes(8, "big") + b"\0" + self._last_data(),
                       self._remote)
            self._c["keepalives_out"] += 1

    def _hello(self, p: Peer) -> None:
        flags = _F_ESTABLISHED if p.established else 0
        self._send(Kind.HELLO, p.session.to_bytes(8, "big") + bytes([flags])
                   + self._last_data(), p.addr)
        self._c["keepalives_out"] += 1

    # ------------------------------------------------------------------ receiving

    def _drop(self, why: Drop, addr: tuple[Any, ...], detail: str = "") -> None:
        self._c[why.value] += 1
        n = self._c[why.value]
        if n <= 10 or n % 1000 == 0:
            _log.warning("tunnel: dropped a packet from %s:%s: %s%s (%d so far)", addr[0],
                         addr[1], why.value.replace("_", " "), detail, n)

    def _on_packet(self, packet: bytes, addr: tuple[Any, ...], truncated: bool) -> None:
        c = self._c
        c["packets_in"] += 1
        size = len(packet)
        if not truncated and _MIN <= size <= self.spec.mtu:  # fast path: DATA, known peer
            magic, kind, _f, key_id, session, counter = _FAST.unpack_from(packet)
            peer = self.peers.get(session)
            if (magic == _MAGIC_V1 and kind == 2 and counter < CONTROL and peer is not None
                    and peer.established and key_id == self._key.key_id):
                cipher = self._ciphers.get(session)
                if cipher is not None:
                    if not peer.window.check(counter):
                        self._drop(Drop.REPLAYED, addr, f" (counter {counter})")
                        return
                    body = cipher.open(packet, counter)
                    if body is None:
                        self._drop(Drop.AUTH_FAILED, addr)
                        return
                    self._accept(peer, counter, False, addr)
                    self._deliver(body, addr)
                    return
        self._on_other(packet, addr, truncated)

    def _accept(self, peer: Peer, counter: int, control: bool, addr: tuple[Any, ...]) -> None:
        """An authentic packet: move the window, count gaps, follow the peer's address."""
        if control:
            peer.control.accept(counter)
        else:  # data counters have no gaps: a gap is a lost packet
            if counter > peer.counted_to:
                self._c["lost"] += counter - peer.counted_to - 1
                peer.counted_to = counter
            elif counter > peer.base:  # a late one, counted lost when the gap appeared
                self._c["lost"] -= 1
            peer.window.accept(counter)
        peer.addr = addr  # authentic: follow the peer across NAT rebinding
        peer.last_rx = time.monotonic()

    def _deliver(self, body: bytes, addr: tuple[Any, ...]) -> None:
        inner = decode_inner(body)
        if inner is None:
            self._drop(Drop.MALFORMED, addr, " (bad datagram inside)")
            return
        self._c["data_in"] += 1
        self._on_data(inner)

    def _on_other(self, packet: bytes, addr: tuple[Any, ...], truncated: bool) -> None:
        """Everything the fast path does not take: control packets, new sessions, drops."""
        if truncated or len(packet) > self.spec.mtu:
            self._drop(Drop.OVERSIZED, addr, f" ({len(packet)} B > mtu {self.spec.mtu})")
            return
        h = parse_header(packet)
        if h is None:
            self._drop(Drop.MALFORMED, addr)
            return
        peer = self.peers.get(h.session)
        if h.kind != Kind.HELLO and (peer is None or not peer.established):
            if h.key_id != self._key.key_id:
                self._drop(Drop.WRONG_KEY, addr, f" (key id {h.key_id.hex()}, ours "
                                                 f"{self._key.key_id.hex()})")
            else:
                self._drop(Drop.STALE_SESSION, addr, f" (session {h.session:016x} not "
                                                     "established)")
            return
        is_control = h.counter >= CONTROL
        if is_control != (h.kind != Kind.DATA):
            self._drop(Drop.MALFORMED, addr, " (counter range)")
            return
        window = None if peer is None else peer.control if is_control else peer.window
        if window is not None and not window.check(h.counter):
            self._drop(Drop.REPLAYED, addr, f" (counter {h.counter})")
            return
        opened, why = open_packet(packet, self._key, self._ciphers, h)
        if opened is None:
            assert why is not None
            detail = (f" (key id {h.key_id.hex()}, ours {self._key.key_id.hex()})"
                      if why is Drop.WRONG_KEY else "")
            self._drop(why, addr, detail)
            return
        if peer is None:
            peer = self._candidate(h.session, addr)
        self._accept(peer, h.counter, is_control, addr)
        if opened.kind is Kind.DATA:
            self._deliver(opened.body, addr)
        elif opened.kind is Kind.HELLO:
            self._on_hello(peer, opened.body, addr)
        else:  # BYE
            if len(opened.body) == 8:
                self._count_tail(peer, opened.body)
            _log.warning("tunnel: peer %s:%s said goodbye", addr[0], addr[1])
            self.peers.pop(peer.session, None)
            self._ciphers.pop(peer.session, None)
            self._set_link()

    def _candidate(self, session: int, addr: tuple[Any, ...]) -> Peer:
        if len(self.peers) >= _MAX_CANDIDATES:
            for sid, p in list(self.peers.items()):
                if not p.established:
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
                    break
        p = Peer(session=session, addr=addr, last_rx=time.monotonic())
        self.peers[session] = p
        return p

    def _last_data(self) -> bytes:
        """The last DATA counter this side used (the peer counts a lost tail from it)."""
        return self._counter.to_bytes(8, "big") if self._counter >= 0 else b"\xff" * 8

    def _count_tail(self, peer: Peer, raw: bytes) -> None:
        """The peer says its last DATA counter is ``raw``: packets up to it that never came
        are lost (a tail that no later DATA packet would reveal)."""
        last = int.from_bytes(raw, "big")
        if last == (1 << 64) - 1 or not peer.established:
            return
        if last > peer.counted_to:
            self._c["lost"] += last - peer.counted_to
            peer.counted_to = last

    def _on_hello(self, peer: Peer, body: bytes, addr: tuple[Any, ...]) -> None:
        if len(body) != 17:
            self._drop(Drop.MALFORMED, addr, " (bad hello)")
            return
        self._c["keepalives_in"] += 1
        echo = int.from_bytes(body[:8], "big")
        peer.has_us = bool(body[8] & _F_ESTABLISHED)
        if echo == self.session and not peer.established:
            peer.established = True
            peer.since = time.monotonic()
            last = int.from_bytes(body[9:17], "big")
            peer.base = peer.counted_to = -1 if last == (1 << 64) - 1 else last
            if self.spec.mode == "connect":  # one remote: a new session replaces the old
                for sid in [s for s in self.peers if s != peer.session]:
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
            self._set_link()
        else:
            self._count_tail(peer, body[9:17])
        if not peer.has_us or echo != self.session:
            self._hello(peer)
