"""mcastkit.compat: a drop-in replacement for the IPWorks ``MCast`` class (Python edition).

Owns: the public names of the compat face. Change ``from ipworks import *`` to
``from mcastkit.compat import *`` (or ``from mcastkit import MCast, MCastError``).
Must not: import the CLI or asyncio; make socket calls (the class wraps
:class:`mcastkit.MulticastSocket`). See docs/compat.md for every member and difference.
"""

from __future__ import annotations

from ._codes import MCastError
from ._events import (
    MCastDataInEventParams,
    MCastErrorEventParams,
    MCastReadyToSendEventParams,
)
from ._mcast import MCast
from ._report import MCastStats

IPWorksError = MCastError
"""Alias, so ``except IPWorksError`` in code written for the vendor's class keeps working."""

IPWorksMcastError = MCastError
"""Alias under the name the vendor's Python samples catch (``except IPWorksMcastError``)."""

__all__ = [
    "IPWorksError",
    "IPWorksMcastError",
    "MCast",
    "MCastDataInEventParams",
    "MCastError",
    "MCastErrorEventParams",
    "MCastReadyToSendEventParams",
    "MCastStats",
]
