"""The platform layer: one option table chosen once by ``sys.platform``.

Owns: :func:`setopt` / :func:`getopt`, which look an abstract :class:`Op` up in the
table and raise :class:`UnsupportedError` when the row is missing, and the packers;
the link-layer constants of the raw send path (``AF_PACKET``, ``SIOCGIFHWADDR``,
``ARPHRD_*``; ``AF_PACKET`` is None where there is none), and the ``prctl`` numbers of
the thread timer slack that ``_platform._thread`` calls (None where there is none).
Must not: keep state or branch on the platform anywhere but here.
Platform notes: only Linux is tested; other platforms get an empty table (untested).
"""

from __future__ import annotations

import socket
import sys
from typing import Final

from .._errors import UnsupportedError
from .._packet import CmsgKind
from ._table import Op, Opt

if sys.platform == "linux":
    from . import _linux as _impl
else:  # pragma: no cover - untested platforms
    from . import _fallback as _impl

PLATFORM: Final = _impl.PLATFORM
OPTIONS: Final = _impl.OPTIONS
CMSG_KINDS: Final = _impl.CMSG_KINDS
AF_PACKET: Final = _impl.AF_PACKET
SIOCGIFHWADDR: Final = _impl.SIOCGIFHWADDR
PR_GET_TIMERSLACK: Final = _impl.PR_GET_TIMERSLACK  # None: no timer slack (._thread)
PR_SET_TIMERSLACK: Final = _impl.PR_SET_TIMERSLACK
ARPHRD_ETHER: Final = _impl.ARPHRD_ETHER
ARPHRD_LOOPBACK: Final = _impl.ARPHRD_LOOPBACK
LINK_TYPES: Final = _impl.LINK_TYPES

__all__ = ["AF_PACKET", "ARPHRD_ETHER", "ARPHRD_LOOPBACK", "CMSG_KINDS", "LINK_TYPES",
           "PLATFORM", "PR_GET_TIMERSLACK", "PR_SET_TIMERSLACK", "SIOCGIFHWADDR", "CmsgKind",
           "Op", "Opt", "cmsg_type", "getopt", "lookup", "setopt", "supports"]

_EMPTY: Final[dict[Op, Opt]] = {}


def lookup(family: int, op: Op) -> Opt:
    """Return the row for ``op``; raise UnsupportedError naming the platform if absent."""
    row = OPTIONS.get(family, _EMPTY).get(op)
    if row is None:
        fam = "IPv6" if family == socket.AF_INET6 else "IPv4"
        raise UnsupportedError(f"{op.value} ({fam}) is not implemented on {PLATFORM}")
    return row


def supports(family: int, op: Op) -> bool:
    return op in OPTIONS.get(family, _EMPTY)


def cmsg_type(kind: CmsgKind) -> tuple[int, int]:
    """The (level, type) pair of a control message kind (e.g. to send IP_PKTINFO)."""
    for pair, k in CMSG_KINDS.items():
        if k is kind:
            return pair
    raise UnsupportedError(f"{kind.value} control messages are not implemented on {PLATFORM}")


def setopt(sock: socket.socket, op: Op, value: int | bytes) -> None:
    """``setsockopt`` through the table (ints are passed as C ints)."""
    row = lookup(sock.family, op)
    sock.setsockopt(row.level, row.name, value)


def getopt(sock: socket.socket, op: Op) -> int:
    row = lookup(sock.family, op)
    return sock.getsockopt(row.level, row.name)
