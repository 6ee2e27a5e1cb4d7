"""The I/O layer: every way a datagram is read from or written to the kernel.

Owns: the backends behind one :class:`~._base.Reader` protocol (``c``: the compiled
accelerator, ``_c``; ``ctypes``: recvmmsg/sendmmsg through ctypes, ``_mmsg`` / ``_libc``;
``python``: a non-waiting recvmsg loop, ``_pyread``), the one place that picks between
them (``_select``; re-exported here), the batch sender (``_send``) and the one
deadline/wait helper (``_wait``). Struct layouts come from ``mcastkit._platform._structs``
and control-message meanings from ``mcastkit._platform.CMSG_KINDS``.
Must not: import the socket core, count, filter or translate errors (it raises plain
OSError / BlockingIOError / TimeoutError; the receive and send paths do the rest), or
hold per-source state without a bound (G6).

Platform notes: Linux only for ``c`` and ``ctypes`` (recvmmsg since 2.6.33, sendmmsg
since 3.0, UDP_SEGMENT since 4.18); elsewhere only ``python`` is offered.
"""

from __future__ import annotations

from ._base import Reader, Summary
from ._c import CReader
from ._c import sendto as csendto
from ._mmsg import MmsgReader
from ._pyread import PyReader
from ._select import available_impls, current_impl, force_impl, generation
from ._send import BatchSender, Dest, Payload
from ._wait import deadline_after, remaining, wait_ready

__all__ = [
    "BatchSender",
    "Dest",
    "Payload",
    "PyReader",
    "Reader",
    "Summary",
    "available_impls",
    "csendto",
    "current_impl",
    "deadline_after",
    "force_impl",
    "force_python",
    "generation",
    "new_reader",
    "remaining",
    "wait_ready",
]


def force_python(on: bool) -> None:
    """Force the pure-Python backend (True) or go back to the default (False)."""
    force_impl("python" if on else None)


def new_reader(family: int, recv_size: int, slots: int = 64) -> Reader:
    """A batch reader of the :func:`current_impl` backend (``slots``: first ring size)."""
    impl = current_impl()
    if impl == "c":
        return CReader(family, recv_size, slots)
    if impl == "ctypes":
        return MmsgReader(family, recv_size, slots)
    return PyReader(recv_size)
