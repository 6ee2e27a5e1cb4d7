"""Receiving on several endpoints at once: the CLI's name for the core's
:class:`~mcastkit._multirx.MultiReceiver` (record, listen and the library share it).

Owns: nothing of its own (one path per job). Must not: grow socket code.
"""

from __future__ import annotations

from mcastkit._multirx import MultiReceiver as Receivers

__all__ = ["Receivers"]
