"""Other platforms: UNTESTED. An empty option table, so every multicast operation raises
:class:`~mcastkit.UnsupportedError` naming the platform. Linux is the only platform that
mcastkit tests; a port fills in a table like ``_linux.py`` and says what it verified.

Must not: pretend an option works.
"""

from __future__ import annotations

import sys
from typing import Final

from .._packet import CmsgKind
from ._table import Op, Opt

__all__ = ["AF_PACKET", "ARPHRD_ETHER", "ARPHRD_LOOPBACK", "CMSG_KINDS", "LINK_TYPES", "OPTIONS",
           "PLATFORM", "PR_GET_TIMERSLACK", "PR_SET_TIMERSLACK", "SIOCGIFHWADDR"]

PLATFORM: Final = sys.platform
OPTIONS: Final[dict[int, dict[Op, Opt]]] = {}
CMSG_KINDS: Final[dict[tuple[int, int], CmsgKind]] = {}
# no raw send path: RawSender raises UnsupportedError when AF_PACKET is None
AF_PACKET: Final[int | None] = None
SIOCGIFHWADDR: Final = 0
ARPHRD_ETHER: Final = 1
ARPHRD_LOOPBACK: Final = 772
LINK_TYPES: Final[dict[int, str]] = {}
# no thread timer slack: mcastkit._platform._thread reports it unavailable
PR_SET_TIMERSLACK: Final[int | None] = None
PR_GET_TIMERSLACK: Final[int | None] = None
