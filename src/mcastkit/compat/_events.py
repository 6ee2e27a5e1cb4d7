"""The event parameter objects of the compat class.

Owns: :class:`MCastDataInEventParams`, :class:`MCastErrorEventParams`,
:class:`MCastReadyToSendEventParams` (frozen, read-only attributes named as in the vendor's
Python edition) and the handler type aliases.
Must not: import sockets, dispatch events or know about settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DataInHandler",
    "ErrorHandler",
    "MCastDataInEventParams",
    "MCastErrorEventParams",
    "MCastReadyToSendEventParams",
    "ReadyToSendHandler",
]


@dataclass(frozen=True, slots=True)
class MCastDataInEventParams:
    """Passed to ``on_data_in``: one datagram arrived.

    Attributes:
        datagram: the payload (cut to MaxPacketSize; a cut fires ``on_error`` 10040 too).
        source_address: the sender's address (IPv6 link-local ones carry ``%ifindex``).
        source_port: the sender's UDP port.
    """

    datagram: bytes
    source_address: str
    source_port: int


@dataclass(frozen=True, slots=True)
class MCastErrorEventParams:
    """Passed to ``on_error``: an error that no exception could report.

    Attributes:
        error_code: vendor-style number (see docs/compat.md).
        description: what happened and what to do.
    """

    error_code: int
    description: str


@dataclass(frozen=True, slots=True)
class MCastReadyToSendEventParams:
    """Passed to ``on_ready_to_send``: sending is possible (after activation, or after a
    send failed with 10035 "would block"). Has no attributes."""


DataInHandler = Callable[[MCastDataInEventParams], object]
ErrorHandler = Callable[[MCastErrorEventParams], object]
ReadyToSendHandler = Callable[[MCastReadyToSendEventParams], object]
