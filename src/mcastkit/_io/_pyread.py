"""The pure-Python backend: a non-waiting loop of ``recvfrom`` / ``recvmsg``.

Owns: :class:`PyReader`, which reads with ``MSG_DONTWAIT`` (the socket itself stays as
it is, so a concurrent reader in another thread never sees it flip to non-blocking) and
builds each Datagram with the reference decoder. It serves ``recv()`` and
``recv_many()`` on every backend, and ``recv_batch()`` where neither the accelerator nor
ctypes is available.
Must not: wait (the receive path does), or keep per-source state.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Final

from .. import _platform as plat
from .._packet import Datagram, decode_ancillary, source_of
from .._platform._structs import CTRL_SIZE
from ._base import Summary

__all__ = ["PyReader"]

_DONTWAIT: Final = int(socket.MSG_DONTWAIT)
_TRUNC: Final = int(socket.MSG_TRUNC)
_KINDS: Final = plat.CMSG_KINDS
_PLAIN_MIN: Final = 65535  # recvfrom cannot see truncation: only when nothing can be cut


def _shut() -> OSError:
    """A read woken by ``shutdown()`` (another thread's close) got no datagram."""
    return OSError(errno.ESHUTDOWN, os.strerror(errno.ESHUTDOWN))


class PyReader:
    """Reader of the ``"python"`` backend.

    Args:
        recv_size: bytes kept per datagram (longer ones are cut and flagged).
        ancillary: read control messages (metadata, truncation) with ``recvmsg``; False
            (metadata off and a buffer no datagram overflows) takes cheaper ``recvfrom``.
    """

    impl = "python"

    def __init__(self, recv_size: int, *, ancillary: bool = True) -> None:
        self._rs = recv_size
        self.read = self._read_msg if ancillary or recv_size < _PLAIN_MIN else self._read_plain  # type: ignore[method-assign]

    def read(self, sock: socket.socket, max_count: int
             ) -> tuple[list[Datagram], Summary | None]:  # pragma: no cover - replaced
        """One non-waiting read of up to ``max_count`` (see :class:`~._base.Reader`)."""
        return self._read_msg(sock, max_count)

    def _read_plain(self, sock: socket.socket, max_count: int
                    ) -> tuple[list[Datagram], Summary | None]:
        data, addr = sock.recvfrom(self._rs, _DONTWAIT)
        if addr is None:
            raise _shut()
        out = [Datagram(data, source_of(addr), addr[1])]
        nbytes = len(data)
        while len(out) < max_count:
            try:
                data, addr = sock.recvfrom(self._rs, _DONTWAIT)
            except BlockingIOError:
                break
            if addr is None:
                break
            out.append(Datagram(data, source_of(addr), addr[1]))
            nbytes += len(data)
        # no metadata, nothing cut: the whole batch admits with one decision
        return out, (None, None, None, nbytes, 0)

    def _read_msg(self, sock: socket.socket, max_count: int
                  ) -> tuple[list[Datagram], Summary | None]:
        out: list[Datagram] = []
        recvmsg = sock.recvmsg
        rs = self._rs
        while len(out) < max_count:
            try:
                data, anc, flags, addr = recvmsg(rs, CTRL_SIZE, _DONTWAIT)
            except BlockingIOError:
                if out:
                    break
                raise
            if addr is None:
                if out:
                    break
                raise _shut()
            d = Datagram(data, source_of(addr), addr[1], truncated=bool(flags & _TRUNC))
            if anc:
                decode_ancillary(d, anc, _KINDS)
            out.append(d)
        if len(out) == 1:  # recv(): its own summary spares the receive path a loop
            d = out[0]
            return out, (d.group, d.interface, d.drops, len(d.data), int(d.truncated))
        return out, None
