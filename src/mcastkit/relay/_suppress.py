"""Loop and storm suppression: the recent-datagram cache and the own-address check.

Owns: the two storm rules of docs/relay.md:

1. *Own address*: a datagram whose source is an address of this host on another
   interface than the one it arrived on is the relay's own output come back (bridged
   interfaces, a loop through another box); it is dropped.
2. *Recent datagrams*: each relayed datagram (family, group, port, payload) is remembered
   for ``window_s`` with the interface it came in on. A copy of it arriving on a
   *different* interface within the window is a loop copy (another relay, a bridge) and
   is dropped; the same datagram arriving again on the *same* interface is a legitimate
   repeat (a sender that repeats itself) and is relayed. So every relay forwards a given
   datagram at most once per window, which bounds the copies: with N relays between two
   networks, each network sees at most N relayed copies of one original.

Must not: open sockets, keep payloads (only their hash), or grow without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["LoopGuard"]


class LoopGuard:
    """The recent-datagram cache and this host's own addresses."""

    __slots__ = ("_clock", "_own", "_recent", "evictions", "max_entries", "window_s")

    def __init__(self, window_s: float = 5.0, *, max_entries: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        # key -> (expiry, ingress); insertion order == expiry order (re-inserted on update)
        self._recent: dict[tuple[str, int, int, int], tuple[float, str]] = {}
        self._own: dict[str, str] = {}
        self.evictions = 0  # entries pushed out before their window ended (cache full)

    def __len__(self) -> int:
        return len(self._recent)

    # ------------------------------------------------------------------ own addresses

    def set_own_addresses(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Replace the table of this host's addresses: (address, interface name) pairs."""
        self._own = {a.split("%", 1)[0]: ifn for a, ifn in pairs}

    def is_own_echo(self, source: str, ingress: str) -> bool:
        """True if ``source`` is this host's address on an interface other than
        ``ingress`` (the relay's own output, come back)."""
        ifn = self._own.get(source.split("%", 1)[0] if "%" in source else source)
        return ifn is not None and ifn != ingress

    # ------------------------------------------------------------------ recent datagrams

    def check(self, group: str, port: int, data: bytes, ingress: str) -> bool:
        """Record the datagram; True if it is a loop copy to drop (seen within the window
        on another interface), False if it is to be relayed."""
        now = self._clock()
        recent = self._recent
        if recent:
            self._expire(now)
        key = (group, port, hash(data), len(data))
        hit = recent.get(key)
        if hit is not None and hit[1] != ingress:
            return True
        if hit is not None:
            del recent[key]  # re-insert at the end: its window starts again
        elif len(recent) >= self.max_entries:
            del recent[next(iter(recent))]
            self.evictions += 1
        recent[key] = (now + self.window_s, ingress)
        return False

    def _expire(self, now: float) -> None:
        recent = self._recent
        it = iter(recent.items())
        stale = []
        for k, (exp, _) in it:
            if exp > now:
                break
            stale.append(k)
        for k in stale:
            del recent[k]
