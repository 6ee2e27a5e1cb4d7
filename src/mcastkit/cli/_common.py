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
import re
import signal
from collections.abc import Callable
from typing import Any

from mcastkit import Endpoint, Interface, McastError, parse_endpoint, resolve_interface

from ._env import Env
from ._status import ExitStatus

__all__ = [
    "PORTS",
    "CliError",
    "Pacer",
    "Progress",
    "Terminated",
    "add_output_options",
    "add_reuse_option",
    "cli_message",
    "emit_json",
    "endpoint_arg",
    "interface_of",
    "interrupt_status",
    "nonneg_float",
    "percent_arg",
    "positive_int",
    "rate_arg",
    "signal_status",
    "size_arg",
]


class CliError(Exception):
    """A failure to report as one ``mcastkit: error: ...`` line with ``status``."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.status = status


PORTS = "1-65535"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, systemd, docker), raised in the main thread so that every
    verb ends as on Ctrl-C: summary printed, exit 143."""


def interrupt_status(exc: BaseException) -> ExitStatus:
    """The exit status of an interruption: 143 for SIGTERM, 130 for Ctrl-C."""
    return signal_status(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def signal_status(signum: int) -> ExitStatus:
    """The exit status of a verb stopped by a signal it caught (record, replay, relay
    finish cleanly first): 143 for SIGTERM, 130 for SIGINT / Ctrl-C, like every verb."""
    return ExitStatus.TERMINATED if signum == signal.SIGTERM else ExitStatus.CTRL_C


def add_output_options(p: argparse.ArgumentParser) -> None:
    """The options every verb has: ``--json``, ``-v``, ``-q`` and ``--traceback``."""
    g = p.add_argument_group("output and debugging")
    g.add_argument("--json", action="store_true",
                   help="print JSON lines (one object per line, each with a 'type'; schema "
                        "in docs/cli.md) instead of text")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="say more (sockets opened, buffer sizes applied, interfaces chosen)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="print only results and errors (no notices, no progress)")
    g.add_argument("--traceback", action="store_true",
                   help="re-raise errors with a Python traceback (for debugging)")


def add_reuse_option(p: argparse.ArgumentParser) -> None:
    """``--reuse``: the one way a receiving verb shares its port (issue: G7)."""
    p.add_argument("--reuse", action="store_true",
                   help="share the port with other programs (SO_REUSEADDR and SO_REUSEPORT, "
                        "as iperf and socat need); off by default, so nobody else can bind "
                        "it and take copies or replies. With it, any local user who sets "
                        "SO_REUSEADDR can bind the port too")


def notice(env: Env, args: argparse.Namespace, line: str, level: int = 0) -> None:
    """A notice on stderr (``mcastkit: ...``) unless ``-q``; ``level`` 1 needs ``-v``."""
    if getattr(args, "quiet", False) or getattr(args, "verbose", 0) < level:
        return
    env.err(f"mcastkit: {line}")


def endpoint_arg(text: str) -> Endpoint:
    """argparse type for ``[SOURCE,]GROUP:PORT`` (IPv6 in brackets); ports are 1-65535."""
    try:
        ep = parse_endpoint(text)
    except McastError as exc:
        raise argparse.ArgumentTypeError(cli_message(exc.message)) from None
    if ep.port == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: port 0 is not a port to use; give {PORTS}")
    return ep


# The core names its own keyword arguments in messages; the CLI user knows its options.
# One table, applied to every library message the CLI shows (see :func:`cli_message`).
_KNOBS: tuple[tuple[str, str], ...] = (
    ("(interface= / set_interface(), or -i on the command line)", "(-i IFACE)"),
    ("(interface= / set_interface())", "(-i IFACE)"),
    ("pass interface=", "give -i IFACE"),
    ("interface=", "-i IFACE"),
    ("pass reuse_port=True on every socket that shares the port",
     "give --reuse to every mcastkit that shares the port (and SO_REUSEPORT to other "
     "programs)"),
    ("rcvbuf_bytes", "--rcvbuf"),
    ("sndbuf_bytes", "--sndbuf"),
    ("in 0-65535", f"in {PORTS}"),
    ("range 0-65535", f"range {PORTS}"),
)


def cli_message(message: str) -> str:
    """A library message with the core's keyword names replaced by the CLI's options."""
    for lib, cli in _KNOBS:
        message = message.replace(lib, cli)
    return message


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
    """argparse type: seconds > 0 (the message says so, not ">= 0")."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds "
                                         "above 0 (e.g. 0.5)")
    return v


_SIZE = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1 << 20, "MB": 10**6,
         "MIB": 1 << 20, "G": 1 << 30, "GB": 10**9, "GIB": 1 << 30}


def size_arg(text: str) -> int:
    """argparse type: a byte count >= 1 with an optional suffix: ``4096``, ``64K``,
    ``4M``, ``1G`` (K/M/G and KiB/MiB/GiB are powers of 1024; kB/MB/GB of 1000)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    mult = _SIZE.get(m.group(2).upper()) if m else None
    if m is None or mult is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size in bytes (e.g. 1200, 64K, 4M, 1G)")
    v = float(m.group(1)) * mult
    if v < 1 or v > 1 << 40:
        raise argparse.ArgumentTypeError(f"{text!r}: give a size from 1 byte up")
    return int(v)


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
        raise CliError(f"-i/--interface {spec!r}: {cli_message(exc.message)}",
                       ExitStatus.USAGE) from None


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
