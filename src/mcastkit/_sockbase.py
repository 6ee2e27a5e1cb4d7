"""Argument checks and counters that every part of :class:`~mcastkit.MulticastSocket` uses.

Owns: the argument checks (``_check_range``, ``_check_timeout``, ``_family_of``), the
façade's docstring copier (:func:`same_doc`), the :data:`InterfaceArg` type and the
:class:`RecvStats` counters (one object per socket: the receive path writes the receive
fields, the send path ``send_retries`` / ``send_errors``).
Must not: make socket calls or hold behaviour (the socket's state is in ``_handle`` and
in the parts ``_options``, ``_joins``, ``_receiver``, ``_sender``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._addr import IPAddress
from ._errors import ErrorCode, McastValueError
from ._interfaces import Interface

__all__ = ["InterfaceArg", "RecvStats", "same_doc"]

_F = TypeVar("_F", bound=Callable[..., Any])

InterfaceArg = str | int | IPAddress | Interface


@dataclass(slots=True)
class RecvStats:
    """Counters of what this socket received, dropped or refused. Nothing is lost silently.

    ``kernel_drops`` is the SO_RXQ_OVFL total the kernel last reported (metadata on); it
    only moves forward, also when several threads receive. :meth:`MulticastSocket.kernel_drops`
    reads the live counter, which also covers drops after the last queued datagram (field
    notes D1).

    Attributes:
        datagrams: datagrams delivered to the caller.
        bytes: payload bytes delivered to the caller.
        truncated: datagrams cut to ``recv_size`` (their ``truncated`` flag is set).
        kernel_drops: the SO_RXQ_OVFL total the kernel last reported (metadata on).
        filtered: datagrams for a group this socket never joined, dropped (defence in
            depth, G1).
        ttl_filtered: datagrams that arrived with a TTL / hop limit below ``min_ttl``,
            dropped (G4).
        send_retries: sends retried after a transient ENOBUFS.
        send_errors: sends that failed with an error (a would-block is not counted).
        send_drops: datagrams the kernel dropped on the way out (a full egress queue,
            seen through IP_RECVERR) and still dropped after the retries; also in
            ``send_errors``.
        icmp_errors: ICMP errors for earlier unicast datagrams taken off the socket's
            error queue, so they break no later send or receive.
    """

    datagrams: int = 0
    bytes: int = 0
    truncated: int = 0
    kernel_drops: int = 0
    filtered: int = 0  # destination was a group this socket never joined (defence in depth)
    ttl_filtered: int = 0  # arrived with a TTL / hop limit below ``min_ttl`` (G4)
    send_retries: int = 0
    send_errors: int = 0
    #: datagrams the kernel dropped on the way out (a full egress queue: ENOBUFS, seen
    #: through IP_RECVERR) and still dropped after the retries; also in ``send_errors``
    send_drops: int = 0
    #: ICMP errors (port / host unreachable for an earlier unicast datagram) taken off the
    #: socket's error queue so they do not break later sends and receives (IP_RECVERR)
    icmp_errors: int = 0


def _family_of(family: int | str) -> socket.AddressFamily:
    if family in (4, "4", "ipv4", socket.AF_INET):
        return socket.AF_INET
    if family in (6, "6", "ipv6", socket.AF_INET6):
        return socket.AF_INET6
    raise McastValueError(f"family {family!r}: use 4, 6, 'ipv4', 'ipv6' or socket.AF_INET(6)",
                          code=ErrorCode.WRONG_FAMILY)


def _check_range(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise McastValueError(f"{name} must be an integer {lo}-{hi}, got {value!r}",
                              code=ErrorCode.BAD_VALUE)
    return value


_NUMBER = (int, float)
_INF = float("inf")


def _check_timeout(value: object, name: str = "timeout_s") -> None:
    """Refuse a timeout that is not a number >= 0 (None, "wait forever", is the caller's
    to allow). NaN and infinities are refused too: neither is a time to wait."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not 0 <= value < _INF:
        raise McastValueError(
            f"{name} must be a number of seconds >= 0 (or None: wait forever), got {value!r}",
            code=ErrorCode.BAD_VALUE)


def same_doc(src: Callable[..., Any]) -> Callable[[_F], _F]:
    """Give a one-line delegation of the façade the docstring of the part it calls."""
    def deco(fn: _F) -> _F:
        fn.__doc__ = src.__doc__
        return fn
    return deco
