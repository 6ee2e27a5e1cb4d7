"""Colour for the terminal, and none anywhere else.

Owns: :func:`paint`, the one place text gets a style: through rich (a dependency of the
``cli`` extra) when the Env says colour is wanted (stdout a terminal, no ``NO_COLOR``,
``TERM`` not ``dumb``); plain ANSI SGR when rich is missing; the text unchanged
otherwise, so pipes, files and tests get no escape sequences.
Must not: write to any stream, or import rich unless colour is wanted.
"""

from __future__ import annotations

import io

from ._env import Env

__all__ = ["paint"]

_SGR = {"green": "32", "cyan": "36", "yellow": "33", "red": "31", "bold red": "1;31"}


def paint(env: Env, text: str, style: str) -> str:
    """``text`` in ``style`` (a rich style name) when colour is wanted, else unchanged."""
    if not env.color:
        return text
    try:
        from rich.console import Console
    except ImportError:
        return f"\x1b[{_SGR.get(style, '0')}m{text}\x1b[0m"
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="standard", width=1 << 16,
            no_color=False).print(text, style=style, end="", markup=False, highlight=False,
                                  soft_wrap=True)
    return buf.getvalue()
