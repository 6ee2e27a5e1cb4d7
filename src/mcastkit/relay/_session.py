"""The tunnel's session layer: who is on the other end, and whether a packet is theirs.

Owns: this relay's random session id and its sealing cipher, the DATA and control
counters, the peer table (one :class:`~mcastkit.relay._peer.Peer` per session of another
relay, with its cipher and replay windows), the handshake (each side proves it holds the
key and that its peer's session is fresh by echoing the peer's random session id),
authenticating and routing every received packet (a fast path for DATA of an established
peer), counting lost packets from counter gaps and BYE / HELLO tails, forgetting silent
peers, the link state (up while a peer is established; ``link_changes``), and counting
every dropped packet by cause (logged without payloads, rate-limited).
Must not: own a socket, a task or a timer (the tunnel's I/O loop in
:mod:`~mcastkit.relay._tunnel` reads, writes and keeps time; control packets go out
through its ``transmit`` callback), decide what to relay, or log a payload.

Handshake: the connecting side C sends HELLO(echo=0); the listener L answers
HELLO(echo=C's session); C, seeing its own session echoed, knows L is live and answers
HELLO(echo=L's session, established); L now knows C is live. DATA is accepted only from
an established session, and each session's counters pass a replay window, so a packet
recorded earlier (this session or an older one) is never relayed twice.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from ._peer import Peer
from ._wire import (
    CONTROL,
    Drop,
    Inner,
    Kind,
    SessionCipher,
    TunnelKey,
    decode_inner,
    open_packet,
    parse_header,
)

__all__ = ["Sessions"]

_log = logging.getLogger("mcastkit.relay")
_F_ESTABLISHED = 1
_FAST = struct.Struct("!4sBB4sQQ")  # the header, magic and version read as one field
_MAGIC_V1 = b"MKR\x01"
_MIN = _FAST.size + 16  # header + tag
_MAX_CANDIDATES = 64
Addr = tuple[Any, ...]


class Sessions:
    """The session state of one tunnel end.

    Args:
        mode: ``"listen"`` or ``"connect"`` (a connecting side keeps one remote session).
        mtu: the largest tunnel packet accepted.
        key: the pre-shared key.
        counters: the tunnel's counters (the relay's shared ones).
        on_data: called with each authentic relayed datagram (synchronously).
        transmit: sends one sealed control packet to an address (the tunnel's socket).

    Attributes:
        session: this end's random session id.
        peers: the known sessions of other relays, by session id.
        established: the peers that echoed our session (kept on every peer change).
    """

    def __init__(self, mode: str, mtu: int, key: TunnelKey, counters: dict[str, int],
                 on_data: Callable[[Inner], None],
                 transmit: Callable[[bytes, Addr], None]) -> None:
        self._mode = mode
        self._mtu = mtu
        self._key = key
        self._c = counters
        self._on_data = on_data
        self._transmit = transmit
        self.session = int.from_bytes(os.urandom(8), "big") or 1
        self._tx: SessionCipher = key.session(self.session)
        self._counter = -1  # DATA packets: 0, 1, 2... (gaps at the peer count as lost)
        self._control = CONTROL  # HELLO / BYE: their own range, so DATA has no gaps
        self._ciphers: dict[int, SessionCipher] = {}
        self.peers: dict[int, Peer] = {}
        self.established: list[Peer] = []
        self._was_up = False
        self._closing = False

    # ------------------------------------------------------------------ link state

    @property
    def up(self) -> bool:
        """True while at least one peer is established."""
        return any(p.established for p in self.peers.values())

    @property
    def link_up(self) -> bool:
        """The link as reported: up, and the tunnel is not closing."""
        return self.up and not self._closing

    def closing(self) -> None:
        """The tunnel is closing: the link is reported down from the next change on."""
        self._closing = True

    def set_link(self) -> None:
        """Recompute the established peers; count and log a link change."""
        self.established = [p for p in self.peers.values() if p.established]
        up = self.link_up
        if up != self._was_up:
            self._was_up = up
            self._c["link_changes"] += 1
            peers = ", ".join(f"{p.addr[0]}:{p.addr[1]}" for p in self.peers.values()
                              if p.established)
            if up:
                _log.warning("tunnel: link up (%s)", peers)
            else:
                _log.warning("tunnel: link down")

    def expire(self, now: float, dead_s: float) -> None:
        """Forget the peers silent for more than ``dead_s`` seconds."""
        for sid, p in list(self.peers.items()):
            if now - p.last_rx > dead_s:
                if p.established:
                    _log.warning("tunnel: peer %s:%s silent for %.1f s", p.addr[0],
                                 p.addr[1], now - p.last_rx)
                del self.peers[sid]
                self._ciphers.pop(sid, None)
        self.set_link()

    # ------------------------------------------------------------------ sealing

    def seal_data(self, body: bytes, out: list[bytes], out_to: list[Addr]) -> int:
        """Seal ``body`` once for every established peer (its own DATA counter each),
        appending the packets to ``out`` and their addresses to ``out_to``; the number of
        peers."""
        est = self.established
        for p in est:
            self._counter += 1
            out.append(self._tx.seal(Kind.DATA, self._counter, body))
            out_to.append(p.addr)
        return len(est)

    def _send(self, kind: Kind, body: bytes, addr: Addr, flags: int = 0) -> None:
        self._control += 1
        self._transmit(self._tx.seal(kind, self._control, body, flags), addr)

    def keepalive(self, remote: Addr | None = None) -> None:
        """HELLO to every established peer; with none and a ``remote``, HELLO(echo=0) to
        it (the connecting side opening a session)."""
        est = [p for p in self.peers.values() if p.established]
        for p in est:
            self._hello(p)
        if not est and remote is not None:
            self._send(Kind.HELLO, (0).to_bytes(8, "big") + b"\0" + self._last_data(), remote)
            self._c["keepalives_out"] += 1

    def goodbye(self) -> None:
        """BYE (with our last DATA counter) to every established peer."""
        for p in list(self.peers.values()):
            if p.established:
                self._send(Kind.BYE, self._last_data(), p.addr)

    def _hello(self, p: Peer) -> None:
        flags = _F_ESTABLISHED if p.established else 0
        self._send(Kind.HELLO, p.session.to_bytes(8, "big") + bytes([flags])
                   + self._last_data(), p.addr)
        self._c["keepalives_out"] += 1

    def _last_data(self) -> bytes:
        """The last DATA counter this side used (the peer counts a lost tail from it)."""
        return self._counter.to_bytes(8, "big") if self._counter >= 0 else b"\xff" * 8

    # ------------------------------------------------------------------ receiving

    def _drop(self, why: Drop, addr: Addr, detail: str = "") -> None:
        self._c[why.value] += 1
        n = self._c[why.value]
        if n <= 10 or n % 1000 == 0:
            _log.warning("tunnel: dropped a packet from %s:%s: %s%s (%d so far)", addr[0],
                         addr[1], why.value.replace("_", " "), detail, n)

    def on_packet(self, packet: bytes, addr: Addr, truncated: bool) -> None:
        """One packet read from the tunnel socket: authenticate it, then deliver DATA,
        answer HELLO, end the session on BYE, or count why it was dropped."""
        c = self._c
        c["packets_in"] += 1
        size = len(packet)
        if not truncated and _MIN <= size <= self._mtu:  # fast path: DATA, known peer
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

    def _accept(self, peer: Peer, counter: int, control: bool, addr: Addr) -> None:
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

    def _deliver(self, body: bytes, addr: Addr) -> None:
        inner = decode_inner(body)
        if inner is None:
            self._drop(Drop.MALFORMED, addr, " (bad datagram inside)")
            return
        self._c["data_in"] += 1
        self._on_data(inner)

    def _on_other(self, packet: bytes, addr: Addr, truncated: bool) -> None:
        """Everything the fast path does not take: control packets, new sessions, drops."""
        if truncated or len(packet) > self._mtu:
            self._drop(Drop.OVERSIZED, addr, f" ({len(packet)} B > mtu {self._mtu})")
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
            self.set_link()

    def _candidate(self, session: int, addr: Addr) -> Peer:
        if len(self.peers) >= _MAX_CANDIDATES:
            for sid, p in list(self.peers.items()):
                if not p.established:
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
                    break
        p = Peer(session=session, addr=addr, last_rx=time.monotonic())
        self.peers[session] = p
        return p

    def _count_tail(self, peer: Peer, raw: bytes) -> None:
        """The peer says its last DATA counter is ``raw``: packets up to it that never came
        are lost (a tail that no later DATA packet would reveal)."""
        last = int.from_bytes(raw, "big")
        if last == (1 << 64) - 1 or not peer.established:
            return
        if last > peer.counted_to:
            self._c["lost"] += last - peer.counted_to
            peer.counted_to = last

    def _on_hello(self, peer: Peer, body: bytes, addr: Addr) -> None:
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
            if self._mode == "connect":  # one remote: a new session replaces the old
                for sid in [s for s in self.peers if s != peer.session]:
                    del self.peers[sid]
                    self._ciphers.pop(sid, None)
            self.set_link()
        else:
            self._count_tail(peer, body[9:17])
        if not peer.has_us or echo != self.session:
            self._hello(peer)
