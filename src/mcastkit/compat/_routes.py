"""The device of the kernel's IPv4 route for a group, read from ``/proc/net/route``.

Owns: :func:`route_device`, the fallback ``MCast`` uses when the core cannot name a
default interface for a join because the route for the group has no source address
(``ip route add 224.0.0.0/4 dev eth1`` on an interface without IPv4 address: the core
finds the interface through the route's source address, which is then 0.0.0.0). It picks
the longest matching prefix of the main table (lowest metric on a tie) among routes that
are up. This is a stopgap: the core's route lookup should ask rtnetlink
(``RTM_GETROUTE`` → ``RTA_OIF``) and then this module goes away (see docs/compat.md).
Must not: open sockets, send anything, or be used when the core found an interface.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Final

__all__ = ["route_device"]

_RTF_UP: Final = 0x1
_PROC_ROUTE: Final = "/proc/net/route"


def _ip(hex_text: str) -> int:
    """A /proc/net/route address column (the raw 32-bit value in host byte order)."""
    return int.from_bytes(int(hex_text, 16).to_bytes(4, sys.byteorder), "big")


def route_device(group: str, table: str | None = None) -> str | None:
    """The interface name of the best IPv4 route for ``group`` in ``table`` (the text of
    /proc/net/route; read when None), or None (IPv6, unreadable, or no route)."""
    try:
        target = int(ipaddress.IPv4Address(group))
    except ValueError:
        return None
    if table is None:
        try:
            with open(_PROC_ROUTE) as f:
                table = f.read()
        except OSError:
            return None
    best: tuple[int, int, str] | None = None  # (prefix length, -metric, device)
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, flags, metric, mask = _ip(cols[1]), int(cols[3], 16), int(cols[6]), _ip(cols[7])
        except ValueError:
            continue
        if not flags & _RTF_UP or target & mask != dest:
            continue
        cand = (bin(mask).count("1"), -metric, cols[0])
        if best is None or cand[:2] > best[:2]:
            best = cand
    return best[2] if best is not None else None
