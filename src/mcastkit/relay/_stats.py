"""The relay's counters, per rule and per direction, and their snapshot.

Owns: :class:`Counters` (what the engine and the tunnel increment), :class:`RelayStats`
(an immutable snapshot with ``as_dict()`` for JSON and ``line()`` for humans) and the
names of every counter (docs/relay.md lists them).
Must not: open sockets, log, or decide anything.

Accounting identity, per rule and ingress: ``received == filtered + loop_suppressed +
rate_limited + forwarded``, and each forwarded datagram becomes, per egress, one of
``relayed``, ``too_big`` or ``send_errors`` (``no_target`` when no egress is usable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["IN_COUNTERS", "OUT_COUNTERS", "TUNNEL_COUNTERS", "Counters", "RelayStats"]

#: per (rule, ingress interface)
IN_COUNTERS: Final = ("received", "filtered", "loop_suppressed", "rate_limited", "no_target")
#: per (rule, ingress -> egress)
OUT_COUNTERS: Final = ("relayed", "too_big", "send_errors")
#: tunnel packets dropped, by cause, and the tunnel's own traffic
TUNNEL_COUNTERS: Final = (
    "packets_in", "packets_out", "data_in", "data_out", "keepalives_in", "keepalives_out",
    "wrong_key", "auth_failed", "replayed", "stale_session", "malformed", "oversized",
    "lost", "send_errors", "link_changes",
)
(R_RECEIVED, R_FILTERED, R_LOOP, R_RATE, R_NOTARGET) = range(5)
(O_RELAYED, O_TOO_BIG, O_SEND_ERR) = range(3)


class Counters:
    """Mutable counters; the engine's hot path indexes the lists directly."""

    __slots__ = ("ins", "outs", "tunnel")

    def __init__(self) -> None:
        self.ins: dict[tuple[str, str], list[int]] = {}
        self.outs: dict[tuple[str, str, str], list[int]] = {}
        self.tunnel: dict[str, int] = dict.fromkeys(TUNNEL_COUNTERS, 0)

    def ingress(self, rule: str, ingress: str) -> list[int]:
        """The counter row of (rule, ingress), made on first use."""
        row = self.ins.get((rule, ingress))
        if row is None:
            row = self.ins[(rule, ingress)] = [0] * len(IN_COUNTERS)
        return row

    def egress(self, rule: str, ingress: str, egress: str) -> list[int]:
        """The counter row of (rule, ingress -> egress), made on first use."""
        row = self.outs.get((rule, ingress, egress))
        if row is None:
            row = self.outs[(rule, ingress, egress)] = [0] * len(OUT_COUNTERS)
        return row


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayStats:
    """A snapshot of a relay's counters.

    Attributes:
        rules: rule name -> {"in": {ingress: {counter: n}}, "out": {"a->b": {counter: n}}}.
        totals: every counter summed over rules and directions.
        kernel_drops: datagrams the kernel dropped on the relay's receive sockets (socket
            buffer full), plus datagrams dropped from the relay's full receive queues.
        tunnel: the tunnel's counters, state ("up"/"down") and peers, or None.
        pending: joins or senders waiting for an interface to appear.
        uptime_s: seconds since the relay started.
    """

    rules: dict[str, dict[str, dict[str, dict[str, int]]]]
    totals: dict[str, int]
    kernel_drops: int
    tunnel: dict[str, Any] | None = None
    pending: tuple[str, ...] = field(default=())
    uptime_s: float = 0.0

    @classmethod
    def build(cls, c: Counters, *, kernel_drops: int, tunnel: dict[str, Any] | None,
              pending: tuple[str, ...], uptime_s: float) -> RelayStats:
        """A snapshot of ``c`` with the totals summed (what :meth:`Relay.stats` returns)."""
        rules: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        totals = dict.fromkeys((*IN_COUNTERS, *OUT_COUNTERS), 0)
        for (rule, ing), row in c.ins.items():
            d = dict(zip(IN_COUNTERS, row, strict=True))
            rules.setdefault(rule, {"in": {}, "out": {}})["in"][ing] = d
            for k, v in d.items():
                totals[k] += v
        for (rule, ing, eg), row in c.outs.items():
            d = dict(zip(OUT_COUNTERS, row, strict=True))
            rules.setdefault(rule, {"in": {}, "out": {}})["out"][f"{ing}->{eg}"] = d
            for k, v in d.items():
                totals[k] += v
        return cls(rules=rules, totals=totals, kernel_drops=kernel_drops, tunnel=tunnel,
                   pending=pending, uptime_s=uptime_s)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` prints and the health endpoint serves)."""
        out: dict[str, Any] = {"uptime_s": round(self.uptime_s, 3), "totals": self.totals,
                               "kernel_drops": self.kernel_drops, "rules": self.rules}
        if self.tunnel is not None:
            out["tunnel"] = self.tunnel
        if self.pending:
            out["pending"] = list(self.pending)
        return out

    def line(self) -> str:
        """One human line: totals, kernel drops and the tunnel's state and drops."""
        t = self.totals
        s = (f"received {t['received']}, relayed {t['relayed']}, filtered {t['filtered']}, "
             f"loop-suppressed {t['loop_suppressed']}, rate-limited {t['rate_limited']}, "
             f"too big {t['too_big']}, send errors {t['send_errors']}, "
             f"kernel drops {self.kernel_drops}")
        if self.tunnel is not None:
            tn = self.tunnel
            drops = {k: tn[k] for k in ("wrong_key", "auth_failed", "replayed",
                                        "stale_session", "malformed", "oversized", "lost")
                     if tn[k]}
            s += f"; tunnel {tn['state']}, {len(tn['peers'])} peer(s)"
            if drops:
                s += ", dropped " + ", ".join(f"{k} {v}" for k, v in drops.items())
        if self.pending:
            s += f"; waiting for {', '.join(self.pending)}"
        return s
