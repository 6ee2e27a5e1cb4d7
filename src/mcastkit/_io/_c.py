"""The compiled backend: ``mcastkit._speedups`` (recvmmsg ring and sendmmsg in C).

Owns: importing the optional accelerator, handing it the Datagram class and the platform's
control-message table (``setup``), and :class:`CReader`, the reader around its ``Ring``.
If the accelerator is missing or refuses the setup, :data:`Ring` and :data:`sendmmsg` are
None and the backend is not offered; it must never break the import of mcastkit.
Must not: wait (the ring reads with MSG_DONTWAIT; the receive path waits), or know option
numbers (they come from ``mcastkit._platform.CMSG_KINDS``; only the kind codes, the C
enum of ``_speedups.c``, are listed here).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from .. import _platform as plat
from .._packet import CmsgKind, Datagram
from ._base import Summary

__all__ = ["KIND_CODES", "CReader", "Ring", "sendmmsg", "sendto"]

#: CmsgKind -> the K_* code of _speedups.c (what each control message fills in)
KIND_CODES: Final = {CmsgKind.PKTINFO4: 1, CmsgKind.PKTINFO6: 2, CmsgKind.TTL: 3,
                     CmsgKind.HOPLIMIT: 3, CmsgKind.RXQ_OVFL: 4, CmsgKind.TIMESTAMPNS: 5,
                     CmsgKind.TOS: 6, CmsgKind.TCLASS: 6}

Ring: Any = None
sendmmsg: Callable[[int, Sequence[bytes | bytearray | memoryview], bytes, int], int] | None
sendmmsg = None
#: sendto(fd, payload, sockaddr, flags): one sendto(2) to a destination packed once
sendto: Callable[[int, bytes | bytearray | memoryview, bytes, int], int] | None = None
try:
    from .._speedups import Ring as _Ring
    from .._speedups import setup as _setup

    _setup(Datagram, [(lv, ty, KIND_CODES[k]) for (lv, ty), k in plat.CMSG_KINDS.items()
                      if k in KIND_CODES])
    Ring = _Ring
    try:
        from .._speedups import sendmmsg as _csend

        sendmmsg = _csend
        from .._speedups import sendto as _csendto

        sendto = _csendto
    except ImportError:  # an older accelerator: ctypes / socket.sendto send
        pass
except Exception:  # not built, or a mismatch: the accelerator must never break the import
    Ring = None


class CReader:
    """Reader of the ``"c"`` backend: one ``Ring`` (its buffers grow on demand)."""

    impl = "c"

    def __init__(self, family: int, recv_size: int, slots: int) -> None:
        assert Ring is not None
        self._ring = Ring(family, recv_size, slots)
        # the ring has its own lock for its buffers; this one keeps a batch and its
        # summary together when several threads read
        self._lock = threading.Lock()

    def read(self, sock: socket.socket, max_count: int) -> tuple[list[Datagram], Summary | None]:
        """One ``recvmmsg(MSG_DONTWAIT)`` of up to ``max_count`` (BlockingIOError: none)."""
        ring = self._ring
        with self._lock:
            got: list[Datagram] = ring.recv(sock.fileno(), max_count)
            return got, ring.summary
