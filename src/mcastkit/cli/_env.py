"""The environment a CLI run talks to: streams, terminal detection and clocks.

Owns: :class:`Env`. Commands read input, write output and tell time only through it,
so tests inject a fake (``StringIO`` streams, a fixed clock) and run ``main()``
in-process. Must not: open sockets or parse arguments; no default instance is built at
import time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

__all__ = ["Env"]


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@dataclass
class Env:
    """Where a run reads, writes and gets the time.

    Attributes:
        stdin / stdout / stderr: text streams.
        stdin_isatty / stdout_isatty: whether they are terminals (``None``: ask them).
        monotonic: seconds for intervals and pacing.
        time_ns: wall clock in ns (timestamps carried in payloads).
        sleep: how to wait (pacing, probe intervals).
        environ: environment variables (``NO_COLOR`` and friends).

    Payloads on stdin are read as bytes through :meth:`stdin_bytes`.
    """

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    monotonic: Callable[[], float] = time.monotonic
    time_ns: Callable[[], int] = time.time_ns
    sleep: Callable[[float], None] = time.sleep
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)

    @property
    def color(self) -> bool:
        """Colour on stdout: only on a terminal, never with ``NO_COLOR`` set (any value,
        see no-color.org) or ``TERM=dumb``."""
        return (bool(self.stdout_isatty) and "NO_COLOR" not in self.environ
                and self.environ.get("TERM") != "dumb")

    def stdin_bytes(self) -> BinaryIO:
        """Standard input as bytes (payloads are binary: never decode them).

        The text stream's ``buffer`` when it has one; a test's ``StringIO`` is encoded
        back with ``surrogateescape`` (what Python uses for undecodable input).
        """
        buf = getattr(self.stdin, "buffer", None)
        if buf is not None:
            return buf  # type: ignore[no-any-return]
        import io

        return io.BytesIO(self.stdin.read().encode("utf-8", "surrogateescape"))

    def out(self, line: str = "") -> None:
        """Write one line to stdout and flush (output is often piped to another tool)."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def err(self, line: str) -> None:
        """Write one line to stderr."""
        self.stderr.write(line + "\n")
        self.stderr.flush()
