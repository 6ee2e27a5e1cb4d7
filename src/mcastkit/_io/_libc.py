"""The ctypes backend's system calls: ``recvmmsg(2)`` / ``sendmmsg(2)`` from libc.

Owns: loading them once (Linux only; elsewhere both are None and the backend is not
offered), and the address of a bytearray for building ``mmsghdr`` arrays in place.
Must not: keep any other state, or raise at import (a missing symbol only means the
ctypes backend is unavailable).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

__all__ = ["addr_of", "recvmmsg", "sendmmsg"]

recvmmsg: Any = None
sendmmsg: Any = None


def _load() -> None:
    global recvmmsg, sendmmsg
    if sys.platform != "linux":  # pragma: no cover - untested platforms
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rx = libc.recvmmsg
        tx = libc.sendmmsg
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return
    rx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    rx.restype = ctypes.c_int
    tx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    tx.restype = ctypes.c_int
    recvmmsg, sendmmsg = rx, tx


_load()


def addr_of(buf: bytearray) -> int:
    """The address of ``buf``'s storage (valid while ``buf`` is neither resized nor freed)."""
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def raise_errno() -> None:
    """Raise the OSError of the last failed libc call (BlockingIOError for EAGAIN)."""
    import errno
    import os

    e = ctypes.get_errno()
    if e in (errno.EAGAIN, errno.EWOULDBLOCK):
        raise BlockingIOError(e, os.strerror(e))
    raise OSError(e, os.strerror(e))
