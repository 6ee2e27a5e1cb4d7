"""Turning Ctrl-C and SIGTERM into a clean stop for verbs that write files.

Owns: :func:`stop_on_signals`, a context manager that, in the main thread, makes SIGINT
and SIGTERM set an event (the verb then finishes its last block, closes its files and
prints its summary) and restores the previous handlers afterwards. Elsewhere (a thread,
as in tests) it only yields the event. And :func:`signals_held`, which holds SIGINT and
SIGTERM back while a verb sets up (joins, opens) until it has entered the block that
prints its summary, so a signal that comes right after the join is not lost between the
two.
Must not: print, exit, or touch sockets or files.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["StopEvent", "signals_held", "stop_on_signals"]


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


_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class signals_held:  # used like a function: ``with signals_held() as release``
    """Block SIGINT and SIGTERM until the yielded ``release()`` is called (or the block ends).

    A verb opens its sockets inside this block and calls ``release()`` as the first
    statement of the ``try`` that turns an interrupt into its summary: a signal that came
    during set-up is delivered there (Python runs the handler as ``pthread_sigmask``
    returns), never in the gap before it. Around a send and its count it keeps the two
    together. In a thread other than the main one (signals go to the main thread) it
    does nothing. A class, not a generator: it is entered once per batch sent.
    """

    __slots__ = ("_old",)

    def __init__(self) -> None:
        self._old: set[int | signal.Signals] | None = None

    def __enter__(self) -> Callable[[], None]:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        return self.release

    def release(self) -> None:
        """Deliver what was held (idempotent)."""
        old, self._old = self._old, None
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def __exit__(self, *exc: object) -> None:
        self.release()
