"""Per-thread platform calls: the calling thread's timer slack.

Linux lets a timed sleep (``select``, ``futex``, ``nanosleep``) end up to the thread's
*timer slack* after its deadline, so that nearby wake-ups can be merged; the default is
50 µs. A sender that paces datagrams to a schedule (``capture.replay``) asks for 1 µs
while it paces and puts the old value back afterwards (:func:`timer_slack`).

Owns: reading and setting the slack through ``prctl(2)`` (``PR_GET_TIMERSLACK`` /
``PR_SET_TIMERSLACK``, numbers from the platform table), loading ``prctl`` once.
Must not: keep state beyond the loaded function, branch on the platform (the table says
whether the call exists: ``PR_*`` is None elsewhere), or raise at import.
Platform notes: only Linux is tested; elsewhere :func:`timer_slack_ns` is None,
:func:`set_timer_slack_ns` raises :class:`UnsupportedError` and :func:`timer_slack`
changes nothing (untested).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from .._errors import McastOSError, McastValueError, UnsupportedError
from . import PLATFORM, PR_GET_TIMERSLACK, PR_SET_TIMERSLACK

__all__ = ["FINE_SLACK_NS", "set_timer_slack_ns", "timer_slack", "timer_slack_ns"]

FINE_SLACK_NS: Final = 1000  # 1 µs: what a paced sender asks for


def _load() -> Any:
    if PR_GET_TIMERSLACK is None or PR_SET_TIMERSLACK is None:  # pragma: no cover
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                   ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


_prctl: Final[Any] = _load()


def timer_slack_ns() -> int | None:
    """The calling thread's timer slack.

    Returns:
        The slack in nanoseconds, or None where the platform has no such setting.
    """
    if _prctl is None or PR_GET_TIMERSLACK is None:
        return None
    got = int(_prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
    return got if got >= 0 else None  # the slack is the return value; -1 only on error


def set_timer_slack_ns(ns: int) -> None:
    """Set the calling thread's timer slack (other threads keep theirs).

    Args:
        ns: the slack in nanoseconds, 1 or more (Linux reads 0 as "back to the default
            the thread inherited", which this call does not offer: pass the value).

    Raises:
        McastValueError: ``ns`` below 1.
        UnsupportedError: the platform has no timer slack.
        McastOSError: the kernel refused (keeps ``.errno``).
    """
    if ns < 1:
        raise McastValueError(f"timer slack {ns} ns: use 1 ns or more")
    if _prctl is None or PR_SET_TIMERSLACK is None:
        raise UnsupportedError(f"a thread's timer slack is not implemented on {PLATFORM}")
    if _prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise McastOSError(e, f"setting the thread's timer slack to {ns} ns failed: "
                           f"{os.strerror(e)}")


@contextmanager
def timer_slack(ns: int = FINE_SLACK_NS) -> Iterator[int | None]:
    """Run a block with the calling thread's timer slack at ``ns`` at most, and put the
    old value back when it ends (also on an exception or KeyboardInterrupt).

    Args:
        ns: the slack wanted, in nanoseconds; a thread whose slack is already at or below
            it is left alone.

    Yields:
        The slack before the block (None where the platform has none: nothing is changed).

    Raises:
        McastValueError: ``ns`` below 1.
        McastOSError: the kernel refused the new value.
    """
    if ns < 1:
        raise McastValueError(f"timer slack {ns} ns: use 1 ns or more")
    old = timer_slack_ns()
    if old is None or old <= ns:
        yield old
        return
    set_timer_slack_ns(ns)
    try:
        yield old
    finally:
        set_timer_slack_ns(old)
