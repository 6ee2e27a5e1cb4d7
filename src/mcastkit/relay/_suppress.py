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
from collections import OrderedDict
from collections.abc import Callable, Iterable

__all__ = ["LoopGuard"]


class LoopGuard:
    """The recent-datagram cache and this host's own addresses."""

    __slots__ = ("_clock", "_next_sweep", "_own", "_recent", "evictions", "max_entries",
                 "window_s")

    def __init__(self, window_s: float = 5.0, *, max_entries: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        # key -> (expiry, ingress), oldest first (an OrderedDict: taking from the front
        # stays O(1) under churn, where a dict would rescan its deleted slots)
        self._recent: OrderedDict[tuple[str, int, int, int], tuple[float, str]] = \
            OrderedDict()
        self._own: dict[str, str] = {}
        self._next_sweep = 0.0
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
        if now >= self._next_sweep:
            self._sweep(now)
        key = (group, port, hash(data), len(data))
        hit = recent.get(key)
        if hit is not None:
            if hit[0] > now and hit[1] != ingress:
                return True
            recent.move_to_end(key)  # its window starts again
        elif len(recent) >= self.max_entries:
            _, (exp, _) = recent.popitem(last=False)
            if exp > now:
                self.evictions += 1
        recent[key] = (now + self.window_s, ingress)
        return False

    def _sweep(self, now: float) -> None:
        """Drop expired entries (from the front: oldest first); a few times a second."""
        recent = self._recent
        while recent:
            exp = next(iter(recent.values()))[0]
            if exp > now:
                break
            recent.popitem(last=False)
        self._next_sweep = now + min(0.25, self.window_s / 4)
