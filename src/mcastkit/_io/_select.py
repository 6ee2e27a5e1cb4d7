"""Which backend runs: the one place the ``c`` / ``ctypes`` / ``python`` choice is made.

Owns: the process-wide switch (``MCASTKIT_BATCH=c|ctypes|python`` at import, or
:func:`force_impl` later, for tests and benchmarks) and its generation counter, which
tells a sender made earlier to re-pick its path.
Must not: build readers or senders (``mcastkit._io`` does), or hold other state.
"""

from __future__ import annotations

import os
from typing import Final

from . import _c, _libc

__all__ = ["available_impls", "current_impl", "force_impl", "generation"]

_IMPLS: Final = ("c", "ctypes", "python")
_env = os.environ.get("MCASTKIT_BATCH", "").lower()
_ENV_IMPL: Final = _env if _env in _IMPLS else None
_forced: str | None = _ENV_IMPL
_generation = 0


def _usable() -> tuple[str, ...]:
    out: tuple[str, ...] = ("c",) if _c.Ring is not None else ()
    if _libc.recvmmsg is not None and _libc.sendmmsg is not None:
        out += ("ctypes",)
    return (*out, "python")


_AVAILABLE: Final = _usable()  # fixed once the backends are imported


def available_impls() -> list[str]:
    """The backends usable here, best first (``"python"`` always)."""
    return list(_AVAILABLE)


def force_impl(name: str | None) -> None:
    """Use ``name`` (``"c"``, ``"ctypes"`` or ``"python"``) for readers and senders made
    from now on; None restores the default (``MCASTKIT_BATCH`` if set, else the best).

    Raises:
        ValueError: an unknown or unavailable backend.
    """
    global _forced, _generation
    if name is not None and name not in available_impls():
        raise ValueError(f"batch implementation {name!r} is not available here; "
                         f"available: {', '.join(available_impls())}")
    _forced = _ENV_IMPL if name is None else name
    _generation += 1


def current_impl() -> str:
    """The backend new readers and senders use: the forced one if available, else the
    best. (Sending: ``"c"`` is the accelerator's sendmmsg, ``"ctypes"`` sendmmsg through
    ctypes, ``"python"`` a sendto loop.)"""
    return _forced if _forced in _AVAILABLE else _AVAILABLE[0]


def generation() -> int:
    """Bumped by every :func:`force_impl`: a sender re-picks its path when it changes."""
    return _generation
