"""What every receive backend provides: the :class:`Reader` protocol and its summary.

Owns: the seam between the receive path (``mcastkit._receiver``) and the backends
(``c`` / ``ctypes`` / ``python``): a reader does one non-waiting read of up to
``max_count`` datagrams and says, when it can, that the whole batch shares one group,
interface and drop count (so the receive path can admit it with one decision).
Must not: hold behaviour (this is a declaration).
"""

from __future__ import annotations

import socket
from typing import Protocol

from .._packet import Datagram

__all__ = ["Reader", "Summary"]

#: (group, interface, drops, bytes, truncated) of a batch in which every datagram has
#: the same group, interface and drop count
Summary = tuple[str | None, int | None, int | None, int, int]


class Reader(Protocol):
    """One receive backend bound to one socket's family and receive size."""

    impl: str  # "c", "ctypes" or "python"

    def read(self, sock: socket.socket, max_count: int
             ) -> tuple[list[Datagram], Summary | None]:
        """Read up to ``max_count`` queued datagrams without waiting.

        Returns:
            The datagrams (at least one) and the batch :data:`Summary`, or None when the
            datagrams differ (or the backend does not summarise).

        Raises:
            BlockingIOError: nothing is queued.
            OSError: the read failed (EBADF once the socket is closed; ESHUTDOWN when a
                ``shutdown`` woke the read); the receive path translates it.
        """
        ...
