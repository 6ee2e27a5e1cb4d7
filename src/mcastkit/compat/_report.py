"""What the compat class counts and how it reports errors nobody handles.

Owns: :class:`MCastStats` (the counters behind ``MCast.stats`` and the KernelDrops
setting), :class:`ErrorLog` (WARNING lines for errors without an ``on_error`` handler,
rate-limited with a summary count, security goal G12) and :func:`handler_error`, which
turns an exception raised by an event handler into the MCastError given to ``on_error``
plus a log text that never contains the exception's text (it may quote the payload).
Must not: touch sockets or the core, dispatch events, or log payload bytes or any text
that came from a datagram or a handler.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from . import _codes
from ._codes import MCastError

__all__ = ["ErrorLog", "MCastStats", "handler_error", "log"]

log: Final = logging.getLogger("mcastkit.compat")

BURST: Final = 5  # lines logged individually per window
WINDOW_S: Final = 60.0  # then one summary line per window at most


@dataclass(frozen=True, slots=True)
class MCastStats:
    """mcastkit extension: where every datagram went (``MCast.stats``), summed over every
    activation since the instance was made or :meth:`MCast.reset`.

    Attributes:
        delivered: datagrams handed to ``on_data_in`` (also counted with no handler set).
        discarded: datagrams already read from the kernel when a handler set
            ``active = False`` in the middle of a batch; deactivating drops them.
        kernel_drops: datagrams the kernel dropped because the receive buffer was full
            (the KernelDrops setting); ``delivered + discarded + kernel_drops + filtered``
            is every datagram that reached the socket.
        filtered: datagrams the core refused (a group this instance did not join on the
            arrival interface; security goal G1; needs CaptureIPPacketInfo).
        errors_not_logged: errors without an ``on_error`` handler that were counted in a
            summary line instead of logged one by one.
    """

    delivered: int = 0
    discarded: int = 0
    kernel_drops: int = 0
    filtered: int = 0
    errors_not_logged: int = 0


class ErrorLog:
    """WARNING lines for errors that no ``on_error`` handler takes: the first ``burst``
    per ``window_s`` one by one, the rest counted by error number and summarized in one
    line when the window ends (or at :meth:`flush`: deactivation and reset). A flood of
    hostile datagrams therefore costs a few lines, never one line per datagram (G12).

    The texts given to :meth:`warn` must come from mcastkit itself (never a payload or a
    handler's exception text); :func:`handler_error` makes such texts.
    """

    def __init__(self, logger: logging.Logger = log, burst: int = BURST,
                 window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger, self._burst, self._window_s, self._clock = logger, burst, window_s, clock
        self._start = clock()
        self._logged = 0
        self._held: collections.Counter[int] = collections.Counter()
        self.not_logged = 0  # total over the instance's life (MCastStats.errors_not_logged)

    def warn(self, code: int, text: str) -> None:
        """Log ``[code] text`` or count it for the summary line."""
        now = self._clock()
        if now - self._start >= self._window_s:
            self.flush()
            self._start, self._logged = now, 0
        if self._logged < self._burst:
            self._logged += 1
            self._logger.warning("MCast error with no on_error handler: [%d] %s", code, text)
            return
        self._held[code] += 1
        self.not_logged += 1

    def flush(self) -> None:
        """Write the summary line for the errors held back, if any."""
        if not self._held:
            return
        total = sum(self._held.values())
        codes = ", ".join(f"{c} x{n}" for c, n in sorted(self._held.items()))
        self._held.clear()
        self._logger.warning(
            "MCast: %d more errors with no on_error handler were not logged one by one "
            "(%s); set on_error to see each of them", total, codes)


def _handler_name(handler: object) -> str:
    return str(getattr(handler, "__name__", type(handler).__name__))


def handler_error(handler: object, exc: Exception) -> tuple[MCastError, str]:
    """(the error ``on_error`` receives, the text a log line may carry) for an exception a
    handler raised. The first keeps the exception's text for the application's own
    handler; the second names only the handler and the exception type."""
    name = _handler_name(handler)
    safe = f"{name} raised {type(exc).__name__} (its text is not logged: it may quote " \
           "the datagram)"
    if isinstance(exc, MCastError):
        return MCastError(exc.code, f"{name} raised: {exc.message}", errno=exc.errno), safe
    return _codes.component_error(_codes.HANDLER_FAILED,
                                  f"{name} raised {type(exc).__name__}: {exc}"), safe
