"""mcastkit: IP multicast for Python, done right.

A typed socket core (:class:`MulticastSocket`) that joins any-source and source-specific
groups by interface index, keeps what it did not join out (``IP_MULTICAST_ALL`` off),
reports per-datagram metadata and counts every drop; an asyncio face
(:mod:`mcastkit.aio`); an IPWorks-compatible :class:`MCast` class (:mod:`mcastkit.compat`);
and the ``mcastkit`` command-line tool.

Quick example (loopback, in one process)::

    from mcastkit import MulticastSocket

    with MulticastSocket(4, interface="lo", metadata=True) as rx, \\
         MulticastSocket(4, interface="lo") as tx:
        port = rx.bind(0)[1]
        rx.join("239.255.0.1")
        tx.sendto(b"hello", "239.255.0.1", port)
        d = rx.recv(timeout_s=2)
        print(d.data, d.source, d.group, d.interface, d.ttl)

This module loads the core only (no asyncio, no argparse).
"""

from __future__ import annotations

from typing import Any

from ._addr import Endpoint as Endpoint
from ._addr import Group as Group
from ._addr import Scope as Scope
from ._addr import parse_endpoint as parse_endpoint
from ._errors import AlreadyJoinedError as AlreadyJoinedError
from ._errors import ClosedError as ClosedError
from ._errors import DatagramTooLargeError as DatagramTooLargeError
from ._errors import ErrorCode as ErrorCode
from ._errors import InterfaceError as InterfaceError
from ._errors import InterfaceNotFoundError as InterfaceNotFoundError
from ._errors import McastError as McastError
from ._errors import McastOSError as McastOSError
from ._errors import McastScopeWarning as McastScopeWarning
from ._errors import McastStateError as McastStateError
from ._errors import McastValueError as McastValueError
from ._errors import MembershipLimitError as MembershipLimitError
from ._errors import NotJoinedError as NotJoinedError
from ._errors import ReceiveTimeoutError as ReceiveTimeoutError
from ._errors import SendError as SendError
from ._errors import SourceFilterError as SourceFilterError
from ._errors import UnsupportedError as UnsupportedError
from ._errors import WouldBlockError as WouldBlockError
from ._interfaces import Interface as Interface
from ._interfaces import list_interfaces as list_interfaces
from ._interfaces import resolve_interface as resolve_interface
from ._membership import FilterMode as FilterMode
from ._membership import Membership as Membership
from ._membership import ModeConflictError as ModeConflictError
from ._open import open_receiver as open_receiver
from ._open import open_sender as open_sender
from ._packet import Datagram as Datagram
from ._socket import MulticastSocket as MulticastSocket
from ._socket import RecvStats as RecvStats
from ._version import __version__ as __version__

_COMPAT_NAMES = frozenset({"MCast", "MCastError", "IPWorksError", "IPWorksMcastError"})


def __getattr__(name: str) -> Any:  # Any: type checkers see no error, only less detail
    """Load the IPWorks-compatible class on first use (``from mcastkit import MCast``),
    so that ``import mcastkit`` stays light."""
    if name in _COMPAT_NAMES:
        # importlib, not an import statement: the root package must not depend on compat
        # in the static import graph (import-linter: cli and compat are independent).
        import importlib

        return getattr(importlib.import_module(".compat", __name__), name)
    raise AttributeError(f"module 'mcastkit' has no attribute {name!r}")

__all__ = [
    "AlreadyJoinedError",
    "ClosedError",
    "Datagram",
    "DatagramTooLargeError",
    "Endpoint",
    "ErrorCode",
    "FilterMode",
    "Group",
    "Interface",
    "InterfaceError",
    "InterfaceNotFoundError",
    "McastError",
    "McastOSError",
    "McastScopeWarning",
    "McastStateError",
    "McastValueError",
    "Membership",
    "MembershipLimitError",
    "ModeConflictError",
    "MulticastSocket",
    "NotJoinedError",
    "ReceiveTimeoutError",
    "RecvStats",
    "Scope",
    "SendError",
    "SourceFilterError",
    "UnsupportedError",
    "WouldBlockError",
    "list_interfaces",
    "open_receiver",
    "open_sender",
    "parse_endpoint",
    "resolve_interface",
]
