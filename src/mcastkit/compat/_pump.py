"""Event dispatch of the compat class: what one ``do_events()`` call does.

Owns: waiting on the core's ``fileno()`` (SelectWaitMillis, :mod:`selectors`), firing
``on_ready_to_send`` after a would-block cleared, draining datagrams with the core's
``recv_batch`` into ``on_data_in`` (at most 256 per call; a batch cut short by
``accept_data = False`` is kept and delivered later), reporting truncation (10040),
kernel drops (10055, once per call, with the count) and a socket shut down by another
holder (10058, then sleeping out the wait instead of spinning, issue 14.2), and
routing every error to ``on_error`` or, without a handler, to the rate-limited log
(never payload text).
Must not: hold state of its own (the :class:`~mcastkit.compat._session.Session` does),
make socket calls other than through the core and the selector (a zero-timeout
``POLLRDHUP`` poll counts as one), start threads, or
re-enter itself (a call from inside a handler returns at once).
"""

from __future__ import annotations

import dataclasses
import errno
import select
import selectors
import time
from collections.abc import Callable
from typing import Final, cast

from .. import McastError
from .._errors import ErrOp
from .._translate import from_oserror
from . import _codes
from . import _settings as S
from ._codes import MCastError, component_error, from_core
from ._events import MCastDataInEventParams, MCastErrorEventParams, MCastReadyToSendEventParams
from ._report import handler_error
from ._session import Session

__all__ = ["do_events", "fire", "fire_error"]

MAX_READS_PER_CALL: Final = 256  # one do_events() never starves the caller under a flood
DROP_CHECK_S: Final = 0.05  # under a flood that never empties the queue: drop check period
_RDHUP: Final = getattr(select, "POLLRDHUP", 0)  # Linux: shut down for reading

# on_data_in's parameters are built per datagram through their slots (what the frozen
# dataclass's __init__ does with object.__setattr__, without its Python frame: half the
# cost, the largest per-datagram cost of do_events). Only while the class has exactly
# these fields and no __post_init__; otherwise through __init__.
_DataIn = MCastDataInEventParams
_new = object.__new__
_set_data, _set_source, _set_port = (  # the slots' member descriptors
    cast("Callable[[object, object], None]", getattr(_DataIn, f).__set__)
    for f in ("datagram", "source_address", "source_port"))
_BY_SLOTS: Final = ([f.name for f in dataclasses.fields(_DataIn)]
                    == ["datagram", "source_address", "source_port"]
                    and not hasattr(_DataIn, "__post_init__"))


def do_events(s: Session) -> None:
    """One round of events (see ``MCast.do_events``)."""
    if s.in_events:
        return
    wait_s = int(s.values[S.SELECT_WAIT_MILLIS.key] or 0) / 1000.0
    core, sel = s.core, s.selector
    accept = bool(s.values[S.ACCEPT_DATA.key])
    mask = 0
    if core is not None and sel is not None:
        if accept:
            mask |= selectors.EVENT_READ
        if s.want_write:
            mask |= selectors.EVENT_WRITE
    if s.pending and accept:
        wait_s = 0.0  # datagrams already read (a batch cut short by accept_data = False)
    if core is None or sel is None or mask == 0:
        if wait_s:
            time.sleep(wait_s)  # nothing to wait on: do not spin the caller's loop
        return
    try:
        sel.modify(core.fileno(), mask)
        ready = sel.select(wait_s)
    except (OSError, ValueError, McastError) as exc:
        fire_error(s, from_core(exc) if isinstance(exc, OSError | McastError)
                   else component_error(_codes.BAD_VALUE, str(exc)))
        return
    s.in_events = True
    try:
        readable = bool(s.pending)
        for _key, events in ready:
            if events & selectors.EVENT_WRITE and s.want_write:
                s.want_write = False
                fire(s, s.on_ready_to_send, MCastReadyToSendEventParams())
            if events & selectors.EVENT_READ:
                readable = True
        if readable:
            delivered, emptied = _drain(s)
            if delivered and (emptied or time.monotonic() - s.drops_checked_at >= DROP_CHECK_S):
                _report_drops(s)
            elif not delivered and emptied and _shut_down(s):
                time.sleep(wait_s)  # readable forever with nothing to read: do not spin
    finally:
        s.in_events = False


def _shut_down(s: Session) -> bool:
    """After the selector said readable and the read found nothing: was the socket shut
    down by another holder (a dup, a forked child)? Then it is readable forever; report
    it (typed, ESHUTDOWN) so the caller's loop learns why instead of spinning."""
    core = s.core
    if core is None or not _RDHUP:
        return False
    p = select.poll()
    p.register(core.fileno(), _RDHUP)
    if not p.poll(0):
        return False
    fire_error(s, from_core(from_oserror(OSError(errno.ESHUTDOWN, "shut down"), ErrOp.RECV,
                                         family=core.family)))
    return True


def _drain(s: Session) -> tuple[int, bool]:
    """Deliver up to MAX_READS_PER_CALL datagrams, re-checking after each handler whether
    it paused (accept_data) or deactivated. Returns (how many were delivered, whether a
    read found the kernel queue empty)."""
    values = s.values
    limit = int(values[S.MAX_PACKET_SIZE.key] or 2048)
    pending = s.pending
    capture = bool(values[S.CAPTURE_IP_PACKET_INFO.key])
    dest, accept = S.DESTINATION_ADDRESS.key, S.ACCEPT_DATA.key
    by_slots = _BY_SLOTS
    new, set_data, set_source, set_port = _new, _set_data, _set_source, _set_port
    left = MAX_READS_PER_CALL
    emptied = False
    try:
        while left > 0:
            core = s.core
            if core is None or not values[accept]:
                break
            if not pending:
                try:
                    got = core.recv_batch(left)
                except BlockingIOError:
                    emptied = True
                    break
                except (McastError, OSError) as exc:
                    fire_error(s, from_core(exc))
                    break
                emptied = len(got) < left
                pending.extend(got)
            d = pending.popleft()
            left -= 1
            if capture:
                values[dest] = d.group or ""
            handler = s.on_data_in
            if handler is not None:
                if by_slots:
                    e = new(_DataIn)
                    set_data(e, d.data)
                    set_source(e, d.source)
                    set_port(e, d.port)
                else:
                    e = _DataIn(d.data, d.source, d.port)
                try:
                    handler(e)
                except Exception as exc:
                    _handler_failed(s, handler, exc)
            if d.truncated:
                fire_error(s, _codes.socket_error(
                    errno.EMSGSIZE,
                    f"a datagram from {d.source}:{d.port} was longer than MaxPacketSize="
                    f"{limit} and was cut to {len(d.data)} bytes; raise MaxPacketSize "
                    "(while inactive)"))
    finally:
        s.delivered += MAX_READS_PER_CALL - left
    return MAX_READS_PER_CALL - left, emptied


def _report_drops(s: Session) -> None:
    """Fire on_error 10055 once if the kernel's drop counter rose since the last report.

    Checked after a call that delivered something and either found the queue empty or
    came DROP_CHECK_S after the last check. Nothing is missed: a drop needs a full queue,
    so after any drop some later call delivers and empties the queue, and checks."""
    s.drops_checked_at = time.monotonic()
    now = s.live_drops()
    if now <= s.drops_seen:
        return
    new, s.drops_seen = now - s.drops_seen, now
    fire_error(s, _codes.socket_error(
        errno.ENOBUFS,
        f"the kernel dropped {new} datagrams because the receive buffer was full "
        f"({s.kernel_drops()} in all, setting {S.KERNEL_DROPS.name}); raise "
        f"{S.IN_BUFFER_SIZE.name} or call do_events() more often"))


def fire(s: Session, handler: object, params: object) -> None:
    """Call an event handler; an exception goes to on_error (never to the caller)."""
    if handler is None:
        return
    try:
        handler(params)  # type: ignore[operator]
    except Exception as exc:
        _handler_failed(s, handler, exc)


def _handler_failed(s: Session, handler: object, exc: Exception) -> None:
    err, safe = handler_error(handler, exc)
    if handler is s.on_error:
        s.errlog.warn(err.code, f"the on_error handler raised; ignored: {safe}")
    else:
        fire_error(s, err, safe)


def fire_error(s: Session, err: MCastError, safe: str | None = None) -> None:
    """Give ``err`` to on_error; without a handler, to the rate-limited log (``safe``: a
    text without handler output to log instead of the message)."""
    handler = s.on_error
    if handler is None:
        s.errlog.warn(err.code, safe if safe is not None else err.message)
        return
    try:
        handler(MCastErrorEventParams(err.code, err.message))
    except Exception as exc:
        _err, text = handler_error(handler, exc)
        s.errlog.warn(err.code, f"the on_error handler raised; ignored: {text}")
