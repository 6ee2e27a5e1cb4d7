"""The ``mcastkit`` command-line tool: listen, send, ping, perf, interfaces, doctor.

Public API: :func:`main` (in-process, returns an :class:`ExitStatus`; tests pass a fake
:class:`Env`), :func:`run` (the console-script entry point) and :class:`ExitStatus`.
Must not: make socket calls of its own (it uses the public core ``mcastkit``), import
mcastkit.compat, or import rich unless a terminal wants live progress.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._env import Env
from ._status import ExitStatus

__all__ = ["Env", "ExitStatus", "main", "run"]


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> ExitStatus:
    """Run the CLI in-process; see :func:`mcastkit.cli._app.main`."""
    from ._app import main as _main

    return _main(argv, env)


def run() -> None:
    """Console entry point: ``sys.exit(int(main()))``."""
    sys.exit(int(main()))
