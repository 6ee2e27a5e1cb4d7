"""Helpers shared by the verbs: argument types, output, pacing and live progress.

Owns: :class:`CliError` (a user-facing failure with its exit status), parsing of
endpoints/interfaces/rates given on the command line, JSON-lines output, the pacing
clock and the optional rich progress line.
Must not: make socket calls (the public core does), import mcastkit.compat.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

from mcastkit import Endpoint, Interface, McastError, parse_endpoint, resolve_interface

from ._env import Env
from ._status import ExitStatus

__all__ = [
    "CliError",
    "Pacer",
    "Progress",
    "emit_json",
    "endpoint_arg",
    "interface_of",
    "nonneg_float",
    "percent_arg",
    "positive_int",
    "rate_arg",
]


class CliError(Exception):
    """A failure to report as one ``mcastkit: error: ...`` line with ``status``."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.status = status


def endpoint_arg(text: str) -> Endpoint:
    """argparse type for ``[SOURCE,]GROUP:PORT`` (IPv6 in brackets)."""
    try:
        ep = parse_endpoint(text)
    except McastError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    if ep.port == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: port 0 is not a port to use; give 1-65535")
    return ep


def _int_at_least(text: str, low: int, rule: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "at least 1")


def count_arg(text: str) -> int:
    """argparse type: an integer >= 0 (0 means: no limit)."""
    return _int_at_least(text, 0, "0 (no limit) or more")


def nonneg_float(text: str) -> float:
    """argparse type: seconds (a finite number >= 0)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return v


def percent_arg(text: str) -> float:
    """argparse type: a percentage, 0-100."""
    try:
        v = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (0-100)") from None
    if not math.isfinite(v) or not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: use a percentage 0-100")
    return v


def positive_float(text: str) -> float:
    """argparse type: seconds > 0."""
    v = nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return v


_SUFFIX = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


def rate_arg(text: str) -> float:
    """argparse type: packets per second, ``1000``, ``2.5k`` or ``1M``; 0 = unpaced."""
    t = text.strip()
    mult = 1.0
    if t and t[-1] in _SUFFIX:
        mult, t = _SUFFIX[t[-1]], t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate in packets per second (e.g. 1000, 10k, 1M; 0 = as fast "
            "as possible)") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"rate {text!r} must be 0 or a positive number")
    return v


def interface_of(spec: str | None) -> Interface | None:
    """Resolve ``-i`` (name, index or address) once, with a usage error naming the fix."""
    if spec is None:
        return None
    try:
        return resolve_interface(spec)
    except McastError as exc:
        raise CliError(f"-i/--interface {spec!r}: {exc.message}", ExitStatus.USAGE) from None


def emit_json(env: Env, obj: dict[str, Any]) -> None:
    """One JSON object per line (JSON lines), keys in insertion order."""
    env.out(json.dumps(obj, separators=(",", ":"), default=str))


class Pacer:
    """Absolute-schedule pacing: datagram ``i`` goes at ``start + i / rate``.

    Sleeping until an absolute deadline (never ``sleep(1/rate)`` in a loop) means the
    average rate does not drift with the cost of each send, and nothing busy-waits.
    """

    def __init__(self, rate: float, env: Env) -> None:
        self.rate = rate
        self.env = env
        self.start = env.monotonic()
        self.i = 0

    def wait(self) -> None:
        """Wait for the next slot (no-op when unpaced)."""
        if self.rate > 0:
            due = self.start + self.i / self.rate
            delay = due - self.env.monotonic()
            if delay > 0:
                self.env.sleep(delay)
        self.i += 1


class Progress:
    """A live status line on a terminal (rich if installed, else ``\\r``); silent when
    stdout is not a terminal, so pipes and logs only get the summary."""

    def __init__(self, env: Env, enabled: bool) -> None:
        self.env = env
        self.enabled = enabled and bool(env.stdout_isatty)
        self._live: Any = None
        self._text: Callable[[str], Any] | None = None
        self._plain = False
        #: which renderer draws the line: ``"rich"``, ``"plain"`` (``\r``) or ``None`` (off)
        self.renderer: str | None = None
        if not self.enabled:
            return
        try:  # optional dependency, imported only when a terminal wants it
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text
        except ImportError:
            self._plain = True
            self.renderer = "plain"
            return
        # The Env already decided this is a terminal; rich must not second-guess it, nor
        # swap sys.stdout/sys.stderr (output goes through the Env's streams).
        console = Console(file=env.stdout, force_terminal=True)
        self._text = Text
        self._live = Live(Text(""), console=console, refresh_per_second=4, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        self.renderer = "rich"

    def update(self, line: str) -> None:
        """Replace the live line with ``line`` (no-op when disabled)."""
        if not self.enabled:
            return
        if self._live is not None and self._text is not None:
            self._live.update(self._text(line))
        elif self._plain:
            self.env.stdout.write("\r" + line + "\x1b[K")
            self.env.stdout.flush()

    def close(self) -> None:
        """Erase the live line (idempotent); print the summary after this."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self._plain and self.enabled:
            self.env.stdout.write("\r\x1b[K")
            self.env.stdout.flush()
            self._plain = False
