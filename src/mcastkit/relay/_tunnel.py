"""The encrypted UDP tunnel between two relays: handshake, keepalive, reconnect, peers.

Owns: the tunnel's UDP endpoint (asyncio), the session handshake (each side proves it
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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcastkit import McastOSError

from ._rules import TunnelSpec
from ._stats import Counters
from ._wire import (
    Drop,
    Inner,
    Kind,
    ReplayWindow,
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
_MAX_CANDIDATES = 64
_HIGH_WATER = 1 << 20


@dataclass(slots=True)
class Peer:
    """Another relay seen on the tunnel (one session of it)."""

    session: int
    addr: tuple[Any, ...]
    window: ReplayWindow = field(default_factory=ReplayWindow)
    established: bool = False  # it echoed our session: it is live and holds the key
    has_us: bool = False  # it says it has established us
    last_rx: float = 0.0
    since: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {"address": f"{self.addr[0]}:{self.addr[1]}", "session": f"{self.session:016x}",
                "established": self.established, "up_s": round(time.monotonic() - self.since, 1)
                if self.established else 0.0}


class Tunnel(asyncio.DatagramProtocol):
    """One end of the relay tunnel.

    Args:
        spec: listen or connect, address, port, key file, timers, MTU.
        key: the pre-shared key.
        counters: where to count (the relay's shared counters).
        on_data: called with each authentic relayed datagram (on the loop, synchronously).
    """

    def __init__(self, spec: TunnelSpec, key: TunnelKey, counters: Counters,
                 on_data: Callable[[Inner], None]) -> None:
        self.spec = spec
        self._key = key
        self._c = counters.tunnel
        self._on_data = on_data
        self.session = int.from_bytes(os.urandom(8), "big") or 1
        self._tx: SessionCipher = key.session(self.session)
        self._counter = 0
        self._ciphers: dict[int, SessionCipher] = {}
        self.peers: dict[int, Peer] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._resumed: asyncio.Event | None = None
        self._remote: tuple[Any, ...] | None = None  # connect: the resolved peer address
        self._backoff = spec.keepalive_s
        self._was_up = False
        self._closing = False
        self.local_address: tuple[str, int] = ("", 0)
        self._logged: dict[str, int] = {}

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind (listen) or resolve and open (connect); start the keepalive task.

        Raises:
            McastOSError: the port is taken or the address cannot be used (names it).
        """
        loop = asyncio.get_running_loop()
        s = self.spec
        try:
            if s.mode == "listen":
                host = s.host or "0.0.0.0"
                fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(fam, socket.SOCK_DGRAM)
                if fam == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind((host, s.port))
            else:
                self._remote = await self._resolve()
                fam = socket.AF_INET6 if ":" in str(self._remote[0]) else socket.AF_INET
                sock = socket.socket(fam, socket.SOCK_DGRAM)
                sock.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
        except OSError as exc:
            where = f"{s.host or '*'}:{s.port}"
            raise McastOSError(exc.errno or 0, f"tunnel {s.mode} {where}: {exc.strerror or exc}"
                               "; pick another --tunnel-listen port or check the address",
                               op="tunnel") from None
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self._transport = transport
        limits = getattr(transport, "set_write_buffer_limits", None)
        if limits is not None:  # selector transports: pause_writing() above this
            limits(high=_HIGH_WATER)
        la = sock.getsockname()
        self.local_address = (str(la[0]), int(la[1]))
        self._task = loop.create_task(self._keepalive(), name="mcastkit-relay-tunnel")
        _log.info("tunnel: %s on %s:%d (key id %s, session %016x)", s.mode,
                  *self.local_address, self._key.key_id.hex(), self.session)

    async def _resolve(self) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.spec.host, self.spec.port, type=socket.SOCK_DGRAM)
        return tuple(infos[0][4])

    async def close(self) -> None:
        """Tell established peers we are leaving (BYE), stop the timers, close."""
        if self._closing:
            return
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._transport is not None:
            for p in list(self.peers.values()):
                if p.established:
                    self._send(Kind.BYE, b"", p.addr)
            self._transport.close()
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
                **self._c}

    def _set_link(self) -> None:
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

    def _send(self, kind: Kind, body: bytes, addr: tuple[Any, ...], flags: int = 0) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        t.sendto(self._tx.seal(kind, self._next(), body, flags), addr)
        self._c["packets_out"] += 1

    def fits(self, version: int, size: int) -> bool:
        """True if a payload of ``size`` bytes to an IPv``version`` group fits the MTU."""
        return size + inner_overhead(version) <= self.spec.mtu

    def send_data(self, group: str, port: int, source: str, source_port: int,
                  ttl: int | None, data: bytes) -> int:
        """Seal one datagram to every established peer; the number of peers it went to.
        The caller checks :meth:`fits` first and counts what does not fit."""
        t = self._transport
        if t is None or t.is_closing():
            return 0
        body = encode_inner(group, port, source, source_port, ttl, data)
        n = 0
        for p in self.peers.values():
            if p.established:
                try:
                    t.sendto(self._tx.seal(Kind.DATA, self._next(), body), p.addr)
                except OSError:
                    self._c["send_errors"] += 1
                    continue
                n += 1
        self._c["packets_out"] += n
        self._c["data_out"] += n
        return n

    async def drain(self) -> None:
        """Wait while the transport's send buffer is over its limit (flow control)."""
        if self._paused and self._resumed is not None:
            await self._resumed.wait()

    def pause_writing(self) -> None:
        self._paused = True
        if self._resumed is None:
            self._resumed = asyncio.Event()
        self._resumed.clear()

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None:
            self._resumed.set()

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
            self._send(Kind.HELLO, (0).to_bytes(8, "big") + b"\0", self._remote)
            self._c["keepalives_out"] += 1

    def _hello(self, p: Peer) -> None:
        flags = _F_ESTABLISHED if p.established else 0
        self._send(Kind.HELLO, p.session.to_bytes(8, "big") + bytes([flags]), p.addr)
        self._c["keepalives_out"] += 1

    # ------------------------------------------------------------------ receiving

    def _drop(self, why: Drop, addr: tuple[Any, ...], detail: str = "") -> None:
        self._c[why.value] += 1
        n = self._c[why.value]
        if n <= 10 or n % 1000 == 0:
            _log.warning("tunnel: dropped a packet from %s:%s: %s%s (%d so far)", addr[0],
                         addr[1], why.value.replace("_", " "), detail, n)

    def datagram_received(self, packet: bytes, addr: tuple[Any, ...]) -> None:
        self._c["packets_in"] += 1
        if len(packet) > self.spec.mtu:
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
        if peer is not None and not peer.window.check(h.counter):
            self._drop(Drop.REPLAYED, addr, f" (counter {h.counter})")
            return
        opened, why = open_packet(packet, self._key, self._ciphers)
        if opened is None:
            assert why is not None
            detail = (f" (key id {h.key_id.hex()}, ours {self._key.key_id.hex()})"
                      if why is Drop.WRONG_KEY else "")
            self._drop(why, addr, detail)
            return
        if peer is None:
            peer = self._candidate(h.session, addr)
        peer.window.accept(h.counter)
        peer.addr = addr  # authentic: follow the peer across NAT rebinding
        peer.last_rx = time.monotonic()
        if opened.kind is Kind.DATA:
            inner = decode_inner(opened.body)
            if inner is None:
                self._drop(Drop.MALFORMED, addr, " (bad datagram inside)")
                return
            self._c["data_in"] += 1
            self._on_data(inner)
        elif opened.kind is Kind.HELLO:
            self._on_hello(peer, opened.body, addr)
        else:  # BYE
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

    def _on_hello(self, peer: Peer, body: bytes, addr: tuple[Any, ...]) -> None:
        if len(body) != 9:
            self._drop(Drop.MALFORMED, addr, " (bad hello)")
            return
        self._c["keepalives_in"] += 1
        echo = int.from_bytes(body[:8], "big")
        peer.has_us = bool(body[8] & _F_ESTABLISHED)
        if echo == self.session and not peer.established:
            peer.established = True
            peer.since = time.monotonic()
            if self.spec.mode == "connect":  # one remote: a new session replaces the old
                for sid in [s for s in self.peers if s != peer.session]:
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
            self._set_link()
        if not peer.has_us or echo != self.session:
            self._hello(peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier sends (port unreachable while the peer restarts): the
        # keepalive timers notice a dead peer; count it and go on.
        self._c["send_errors"] += 1
        _log.debug("tunnel: %s", exc)
