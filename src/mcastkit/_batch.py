"""Old name of the backend switch, kept for callers outside the core (benchmarks/rx.py).

Owns: nothing: re-exports :func:`mcastkit._io.force_impl` and friends under the names
``mcastkit._batch`` had. New code imports ``mcastkit._io``; remove this module once no
caller uses it (see HANDOFF.md).
Must not: hold behaviour.
"""

from __future__ import annotations

from ._io import available_impls, current_impl, force_impl, force_python, new_reader

__all__ = ["available_impls", "current_impl", "force_impl", "force_python", "new_receiver",
           "using_python"]

new_receiver = new_reader


def using_python() -> bool:
    """True when new readers and senders use the pure-Python backend."""
    return current_impl() == "python"
