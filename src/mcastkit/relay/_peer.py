"""One remote relay as the tunnel sees it: its session, replay windows and link state.

Owns: :class:`Peer` (the per-session state :mod:`mcastkit.relay._session` keeps for each
other relay, and how it is described in stats). Must not: send, receive, or decide
anything (the session layer decides, the tunnel sends and receives).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._wire import ReplayWindow

__all__ = ["Peer"]


@dataclass(slots=True)
class Peer:
    """Another relay seen on the tunnel (one session of it)."""

    session: int
    addr: tuple[Any, ...]
    window: ReplayWindow = field(default_factory=ReplayWindow)  # DATA counters
    control: ReplayWindow = field(default_factory=ReplayWindow)  # HELLO / BYE counters
    established: bool = False  # it echoed our session: it is live and holds the key
    has_us: bool = False  # it says it has established us
    last_rx: float = 0.0
    since: float = 0.0
    base: int = -1  # its last DATA counter when established (earlier ones are not ours)
    counted_to: int = -1  # its DATA counters up to here are received or counted lost

    def describe(self) -> dict[str, Any]:
        return {"address": f"{self.addr[0]}:{self.addr[1]}", "session": f"{self.session:016x}",
                "established": self.established, "up_s": round(time.monotonic() - self.since, 1)
                if self.established else 0.0}
