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

    if not hasattr(_Ring, "read"):  # an older build: use the ctypes / Python backends
        raise ImportError("mcastkit._speedups.Ring has no read(); rebuild it")

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
    """Reader of the ``"c"`` backend: one ``Ring`` (its buffers grow on demand).

    ``read`` is the ring's own ``read``: one C call takes the batch and its summary
    together under the ring's lock (it has one for its buffers), so several threads can
    share the reader without a lock here and a batch costs no Python frame.
    """

    impl = "c"
    #: read(sock, max_count): one ``recvmmsg(MSG_DONTWAIT)`` of up to ``max_count``
    #: (BlockingIOError: none queued); the datagrams and their :data:`Summary`
    read: Callable[[socket.socket, int], tuple[list[Datagram], Summary | None]]

    def __init__(self, family: int, recv_size: int, slots: int) -> None:
        assert Ring is not None
        self._ring = Ring(family, recv_size, slots)
        self.read = self._ring.read
