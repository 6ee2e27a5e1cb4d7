"""Deadlines and waiting: the one way every receive (and blocking send) path waits.

Owns: turning a timeout into an absolute deadline once per call (:func:`deadline_after`),
what is left of it (:func:`remaining`), and blocking until a socket is ready or the
deadline passes (:func:`wait_ready`), in slices so that a socket closed by another thread
is noticed. The shape is dnspython's ``_remaining`` / ``_wait_for_readable``: read
optimistically, wait only when nothing is there, and never restart the clock.
Must not: read or write datagrams, or translate errors (it raises plain
``TimeoutError`` / ``OSError``; the socket core turns them into typed errors).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from typing import Final

__all__ = ["deadline_after", "remaining", "wait_ready"]

_SLICE_S: Final = 1.0  # longest single poll: a close() by another thread is seen within it
_RDHUP: Final = getattr(select, "POLLRDHUP", 0)  # Linux: the socket was shut down


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic time at which a wait of ``timeout`` seconds ends (None: never)."""
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative; None: no deadline)."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def wait_ready(sock: socket.socket, deadline: float | None, *, write: bool = False) -> None:
    """Block until ``sock`` is readable (or writable) or ``deadline`` passes.

    Raises:
        TimeoutError: the deadline passed (at once for a deadline already due).
        OSError: EBADF, the socket was closed (checked between slices of at most 1 s);
            ESHUTDOWN, it was shut down for reading (it would be "readable" forever).
    """
    events = select.POLLOUT if write else select.POLLIN | _RDHUP
    while True:
        fd = sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        left = remaining(deadline)
        if left is not None and left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        wait = _SLICE_S if left is None else min(_SLICE_S, left)
        p = select.poll()
        p.register(fd, events)
        ready = p.poll(max(1, int(wait * 1000 + 0.999)))
        if ready:
            if ready[0][1] & _RDHUP and not write:
                # shut down for reading (close() here, or in a process sharing the
                # socket): readable forever with nothing to read. Say so instead of
                # letting the caller's read-then-wait loop spin.
                raise OSError(errno.ESHUTDOWN, os.strerror(errno.ESHUTDOWN))
            return
