"""The writing side of :mod:`mcastkit.aio`: waiting until a full socket can send again.

Owns: :class:`Writability`, the retry loop of a non-blocking send (:meth:`~Writability.flow`:
call it, park on would-block, call it again), the futures of sends parked on a full send
buffer and the one ``add_writer`` registration that wakes them all (made when the first
send parks, removed when the socket becomes writable or closes). Closing fails every
parked send, and every later one, with :class:`~mcastkit.ClosedError`.
Must not: choose what to send or how (the owner passes its core's send call), poll, or
sleep on the loop. Not thread-safe: every method runs on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import ParamSpec

from ._errors import ClosedError

__all__ = ["Writability"]

_P = ParamSpec("_P")


class Writability:
    """Parked sends of one descriptor on one loop.

    Args:
        loop: the loop the descriptor is registered with.
        fd: the socket's descriptor.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._waiters: list[asyncio.Future[None]] = []
        self._registered = False
        self._closed = False
        self.waits = 0  # sends that found the buffer full and waited

    async def flow(self, fn: Callable[_P, int], *args: _P.args, **kw: _P.kwargs) -> int:
        """Call a non-blocking send; on would-block wait for writability and retry.

        Raises:
            ClosedError: closed before or while waiting.
        """
        while True:
            if self._closed:
                raise ClosedError("the socket is closed; open a new one")
            try:
                return fn(*args, **kw)
            except BlockingIOError:
                await self.wait()

    async def wait(self) -> None:
        """Return when the socket is writable (or raise ClosedError if it closes)."""
        self.waits += 1
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(fut)
        if not self._registered:
            self._loop.add_writer(self._fd, self.on_writable)
            self._registered = True
        try:
            await fut
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    def on_writable(self) -> None:
        """The writer callback: unregister and wake every parked send."""
        if self._registered:
            self._registered = False
            self._loop.remove_writer(self._fd)
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def close(self) -> None:
        """Unregister and fail every parked send with ClosedError. Idempotent."""
        self._closed = True
        if self._registered and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
        self._registered = False
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_exception(ClosedError("the socket was closed while sending"))
