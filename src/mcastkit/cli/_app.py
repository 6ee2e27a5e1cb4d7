"""The argument parser and the one place where errors become exit statuses.

Owns: building the ``mcastkit`` parser from the verb modules (each supplies ``HELP``,
``DESCRIPTION``, ``EXAMPLES``, ``add_arguments(p)`` and ``run(args, env)``), routing
help and usage errors to the :class:`Env` streams instead of ``sys.exit``, and mapping
exceptions to one ``mcastkit: error: ...`` line plus an :class:`ExitStatus`.
Must not: make socket calls, import mcastkit.compat, print tracebacks unless
``--traceback`` was given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

import mcastkit
from mcastkit import (
    InterfaceNotFoundError,
    McastError,
    McastValueError,
    ReceiveTimeoutError,
    UnsupportedError,
)

from ._common import CliError
from ._env import Env
from ._status import ExitStatus
from .commands import doctor, interfaces, listen, perf, ping, record, replay, send

__all__ = ["VERBS", "build_parser", "main"]

VERBS: dict[str, ModuleType] = {
    "listen": listen,
    "send": send,
    "ping": ping,
    "perf": perf,
    "interfaces": interfaces,
    "doctor": doctor,
    "record": record,
    "replay": replay,
}

_EPILOG = """\
Examples:
  mcastkit listen 239.255.0.1:5000 -i lo
  mcastkit send 239.255.0.1:5000 -i lo "hello"
  mcastkit ping 239.255.0.9:4321 -i eth0 -c 10
  mcastkit doctor 239.255.0.1 -i eth0

Exit statuses: 0 ok, 1 error, 2 usage, 3 timeout, 4 unsupported, 5 loss, 130 Ctrl-C.
Run 'mcastkit VERB --help' for a verb's options and examples."""


class _Exit(Exception):
    def __init__(self, status: ExitStatus) -> None:
        super().__init__(int(status))
        self.status = status


class _UsageError(Exception):
    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to the Env and raises instead of exiting."""

    env: Env

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        target = self.env.stderr if file is sys.stderr else self.env.stdout
        target.write(message)
        target.flush()

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.env.stderr.write(message)
        raise _Exit(ExitStatus.OK if status == 0 else ExitStatus.USAGE)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self.prog)


def _common_options(env: Env) -> _Parser:
    common = _Parser(add_help=False)
    common.env = env
    g = common.add_argument_group("output and debugging")
    g.add_argument("--json", action="store_true",
                   help="print JSON lines (one object per line) instead of text")
    g.add_argument("--traceback", action="store_true",
                   help="re-raise errors with a Python traceback (for debugging)")
    return common


def build_parser(env: Env) -> argparse.ArgumentParser:
    """The full parser; help and errors go to ``env``."""

    def make(**kw: Any) -> _Parser:
        p = _Parser(**kw)
        p.env = env
        return p

    parser = make(
        prog="mcastkit",
        description="IP multicast from the command line: listen, send, ping, measure, "
                    "inspect and diagnose.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mcastkit {mcastkit.__version__}")
    parser.add_argument("--traceback", dest="traceback_top", action="store_true",
                        help="re-raise errors with a Python traceback (for debugging)")
    subs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    common = _common_options(env)
    for name, mod in VERBS.items():
        sp = subs.add_parser(
            name, help=mod.HELP, description=mod.DESCRIPTION,
            epilog="Examples:\n" + mod.EXAMPLES.rstrip() + "\n",
            formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common],
        )
        sp.env = env
        mod.add_arguments(sp)
        sp.set_defaults(_verb=mod)
    return parser


def _take_extra_words(ns: argparse.Namespace, extra: list[str]) -> None:
    """``send G:P -i lo hello world``: argparse leaves MESSAGE words that follow an
    option unparsed; give them back to the verbs that take free text (words after ``--``
    even when they start with a dash). Anything else is a usage error naming only the
    words that were not understood."""
    if hasattr(ns, "message"):
        words, after = extra, []
        if "--" in extra:  # everything after "--" is text, dashes included
            cut = extra.index("--")
            words, after = extra[:cut], extra[cut + 1:]
        unknown = [w for w in words if w.startswith("-") and w != "-"]
        if not unknown:
            ns.message = [*ns.message, *words, *after]
            return
        extra = unknown
    prog = "mcastkit" + "".join(f" {v}" for v in (getattr(ns, "verb", None),
                                                   getattr(ns, "mode", None)) if v)
    raise _UsageError("unrecognized arguments: " + " ".join(extra), prog)


def _wants_traceback(argv: Sequence[str]) -> bool:
    return "--traceback" in argv


def _fail(env: Env, message: str, status: ExitStatus) -> ExitStatus:
    env.err(f"mcastkit: error: {message}")
    return status


def _status_of(exc: McastError) -> ExitStatus:
    if isinstance(exc, ReceiveTimeoutError):
        return ExitStatus.TIMEOUT
    if isinstance(exc, UnsupportedError):
        return ExitStatus.UNSUPPORTED
    if isinstance(exc, InterfaceNotFoundError | McastValueError):
        return ExitStatus.USAGE
    return ExitStatus.ERROR


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> ExitStatus:
    """Run ``mcastkit`` with ``argv`` (default: ``sys.argv[1:]``) against ``env``.

    Never raises for user mistakes or network errors: they become one
    ``mcastkit: error: ...`` line on stderr and an :class:`ExitStatus`. With
    ``--traceback`` anything unexpected is re-raised.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    env = env if env is not None else Env()
    debug = _wants_traceback(args_list)
    parser = build_parser(env)
    try:
        try:
            ns, extra = parser.parse_known_args(args_list)
            if extra:
                _take_extra_words(ns, extra)
        except _UsageError as exc:
            return _fail(env, f"{exc} (see '{exc.prog} --help')", ExitStatus.USAGE)
        except _Exit as ex:
            return ex.status
        mod: ModuleType | None = getattr(ns, "_verb", None)
        if mod is None:
            parser.print_help(env.stderr)
            return _fail(env, "no verb given; choose one of: " + ", ".join(VERBS),
                         ExitStatus.USAGE)
        status: ExitStatus = mod.run(ns, env)
        return status
    except KeyboardInterrupt:
        if debug:
            raise
        env.err("mcastkit: interrupted")
        return ExitStatus.CTRL_C
    except CliError as exc:
        if debug:
            raise
        return _fail(env, str(exc), exc.status)
    except McastError as exc:
        if debug:
            raise
        return _fail(env, exc.message, _status_of(exc))
    except BrokenPipeError:
        return ExitStatus.OK  # the reader went away (mcastkit listen | head)
    except OSError as exc:
        if debug:
            raise
        return _fail(env, f"{exc.strerror or exc} (rerun with --traceback for details)",
                     ExitStatus.ERROR)
    except Exception as exc:
        if debug:
            raise
        return _fail(env, f"unexpected {type(exc).__name__}: {exc} (this is a bug; rerun with "
                          "--traceback and report it)", ExitStatus.ERROR)
