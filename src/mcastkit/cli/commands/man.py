"""``mcastkit man``: the manual page, generated from the parser (roff, man(7) macros).

Owns: rendering the parser tree as mcastkit(1): synopsis, every verb with its options
and examples, exit statuses, environment. Must not: make socket calls or keep a second,
hand-written copy of any option's help.
"""

from __future__ import annotations

import argparse

import mcastkit

from .._env import Env
from .._parser_walk import Command, Option, walk
from .._status import ExitStatus

HELP = "print the mcastkit(1) manual page (roff), generated from the parser"
DESCRIPTION = """\
Print the manual page in roff. Read it with 'mcastkit man | man -l -' or install it:
'mcastkit man > ~/.local/share/man/man1/mcastkit.1'."""
EXAMPLES = """\
  mcastkit man | man -l -
  mcastkit man > ~/.local/share/man/man1/mcastkit.1"""

_EXIT = (("0", "the command did what was asked"),
         ("1", "an operation failed (socket error; doctor found a problem)"),
         ("2", "bad command line (endpoint, interface, size, option)"),
         ("3", "nothing (or fewer than -c N) arrived before --timeout; ping: no peer"),
         ("4", "the platform lacks what the command needs"),
         ("5", "ping / perf recv saw loss above --max-loss"),
         ("130", "interrupted by Ctrl-C (SIGINT); the summary is printed"),
         ("143", "stopped by SIGTERM; the summary is printed"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no options of its own


def _esc(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote on a line."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line.replace("-", "\\-"))
    return "\n".join(lines)


def _opt(o: Option) -> str:
    names = ", ".join(f"\\fB{_esc(f)}\\fR" for f in o.flags) or f"\\fI{_esc(o.metavar or '')}\\fR"
    if o.flags and o.takes_value:
        names += f" \\fI{_esc(o.metavar or '')}\\fR"
    return f".TP\n{names}\n{_esc(o.help) or '.'}"


def _section(c: Command) -> list[str]:
    out = [f".SS {' '.join(c.path)}", _esc(c.description or c.help)]
    for o in c.options:
        if o.flags == ("-h", "--help"):
            continue
        out.append(_opt(o))
    if c.epilog:
        out += [".PP", ".nf", _esc(c.epilog.rstrip()), ".fi"]
    for s in c.subcommands:
        out += _section(s)
    return out


def man_page(root: Command) -> str:
    """The whole page."""
    verbs = "|".join(c.path[-1] for c in root.subcommands)
    out = [
        f'.TH MCASTKIT 1 "" "mcastkit {mcastkit.__version__}" "User Commands"',
        ".SH NAME", "mcastkit \\- IP multicast from the command line",
        ".SH SYNOPSIS", f"\\fBmcastkit\\fR {{{verbs}}} [\\fIoptions\\fR]",
        ".SH DESCRIPTION", _esc(root.description),
        ".PP", "Endpoints are [SOURCE,]GROUP:PORT (IPv6 in brackets). Always give \\fB\\-i\\fR "
        "\\fIIFACE\\fR.",
        ".SH COMMANDS",
    ]
    for c in root.subcommands:
        out += _section(c)
    out.append(".SH EXIT STATUS")
    for code, text in _EXIT:
        out += [".TP", f"\\fB{code}\\fR", _esc(text)]
    out += [".SH ENVIRONMENT", ".TP", "\\fBNO_COLOR\\fR",
            "when set (to anything), no colour even on a terminal.",
            ".SH SEE ALSO", "docs/cli.md in the mcastkit source; ip(8), nft(8)", ""]
    return "\n".join(out)


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    from .._app import build_parser  # the full parser, built here to avoid a cycle

    env.stdout.write(man_page(walk(build_parser(env))))
    env.stdout.flush()
    return ExitStatus.OK
