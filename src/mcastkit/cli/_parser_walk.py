"""A plain description of the ``mcastkit`` parser, for generated artefacts.

Owns: walking the argparse tree once into :class:`Command` / :class:`Option` values,
so shell completion (bash, zsh, fish) and the man page are generated from the parser
itself and can never drift from it.
Must not: build the parser (the caller passes it), print, or make socket calls.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

__all__ = ["Command", "Option", "walk"]


@dataclass(frozen=True, slots=True)
class Option:
    """One option or positional: ``flags`` empty for a positional."""

    flags: tuple[str, ...]
    metavar: str | None
    help: str
    choices: tuple[str, ...] = ()

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None


@dataclass(frozen=True, slots=True)
class Command:
    """A verb (``listen``) or a verb's mode (``perf send``)."""

    path: tuple[str, ...]
    help: str
    description: str
    epilog: str
    options: tuple[Option, ...]
    subcommands: tuple[Command, ...] = field(default=())


def _help_text(a: argparse.Action) -> str:
    h = a.help or ""
    if h == argparse.SUPPRESS:
        return ""
    return h.replace("%(default)s", str(a.default)).replace("%%", "%")


def _option(a: argparse.Action) -> Option | None:
    if isinstance(a, argparse._SubParsersAction) or a.help == argparse.SUPPRESS:
        return None
    metavar: str | None
    if a.nargs == 0:
        metavar = None
    elif isinstance(a.metavar, str):
        metavar = a.metavar
    elif a.choices is not None:
        metavar = "{" + ",".join(str(c) for c in a.choices) + "}"
    else:
        metavar = a.dest.upper()
    choices = tuple(str(c) for c in a.choices) if a.choices is not None else ()
    return Option(tuple(a.option_strings), metavar, _help_text(a), choices)


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_: str = ""
         ) -> Command:
    """The command tree under ``parser``."""
    opts: list[Option] = []
    subs: list[Command] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in a._choices_actions}
            for name, sp in a.choices.items():
                subs.append(walk(sp, (*path, name), helps.get(name, "")))
            continue
        o = _option(a)
        if o is not None:
            opts.append(o)
    return Command(path, help_, parser.description or "", parser.epilog or "", tuple(opts),
                   tuple(subs))
