"""Turning Ctrl-C and SIGTERM into a clean stop for verbs that write files.

Owns: :func:`stop_on_signals`, a context manager that, in the main thread, makes SIGINT
and SIGTERM set an event (the verb then finishes its last block, closes its files and
prints its summary) and restores the previous handlers afterwards. Elsewhere (a thread,
as in tests) it only yields the event.
Must not: print, exit, or touch sockets or files.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["StopEvent", "stop_on_signals"]


class StopEvent(threading.Event):
    """An event that remembers which signal set it (``signum``; None: not a signal)."""

    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopEvent]:
    """Yield an event that SIGINT / SIGTERM set instead of interrupting."""
    ev = StopEvent()
    if threading.current_thread() is not threading.main_thread():
        yield ev
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        ev.signum = signum
        ev.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield ev
    finally:
        for s, h in old.items():
            signal.signal(s, h)
