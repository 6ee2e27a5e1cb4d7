"""Exit statuses of the ``mcastkit`` command.

Owns: the :class:`ExitStatus` table (the contract scripts rely on; documented in
docs/cli.md). Must not: import anything but the standard library.
"""

from __future__ import annotations

import enum

__all__ = ["ExitStatus"]


@enum.unique
class ExitStatus(enum.IntEnum):
    """Process exit codes. Never renumbered.

    ====  ===========  ==========================================================
    code  name         meaning
    ====  ===========  ==========================================================
    0     OK           the command did what was asked
    1     ERROR        an operation failed (socket error, doctor found a problem)
    2     USAGE        bad command line (endpoint, interface, rate, option...)
    3     TIMEOUT      nothing (or too little) arrived before ``--timeout``
    4     UNSUPPORTED  the platform lacks what the command needs
    5     LOSS         ping/perf saw loss beyond the allowed threshold
    130   CTRL_C       interrupted by the user (SIGINT)
    143   TERMINATED   stopped by SIGTERM (timeout, systemd, docker); summary printed
    ====  ===========  ==========================================================
    """

    OK = 0
    ERROR = 1
    USAGE = 2
    TIMEOUT = 3
    UNSUPPORTED = 4
    LOSS = 5
    CTRL_C = 130
    TERMINATED = 143
