"""A plain description of the ``mcastkit`` parser, for generated artefacts.

Owns: walking the argparse tree once into :class:`Command` / :class:`Option` values,
so shell completion (bash, zsh, fish) and the man page are generated from the parser
itself and can never drift from it; and the one convention for completing an option
whose values are open (checked by an argparse ``type``, not ``choices``): the type
callable is marked with :func:`suggest`.
Must not: build the parser (the caller passes it), print, or make socket calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Command", "Option", "suggest", "walk"]

_T = TypeVar("_T")
_SUGGEST_ATTR = "_mcastkit_completions"


def suggest(type_fn: _T, words: Iterable[str]) -> _T:
    """Mark an argparse ``type`` callable with the words completion offers for it.

    For an option whose value set is open (so it cannot use ``choices``) but has
    well-known names, e.g. ``--seq`` (built-in formats, or ``u32@0``).

    Args:
        type_fn: the callable passed as ``type=`` to ``add_argument``.
        words: the values shell completion suggests.

    Returns:
        ``type_fn`` itself, marked.
    """
    setattr(type_fn, _SUGGEST_ATTR, tuple(words))
    return type_fn


@dataclass(frozen=True, slots=True)
class Option:
    """One option or positional: ``flags`` empty for a positional; ``choices`` are the
    values completion offers (argparse ``choices``, or the words of a :func:`suggest`
    -marked type)."""

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
    choices = (tuple(str(c) for c in a.choices) if a.choices is not None
               else tuple(getattr(a.type, _SUGGEST_ATTR, ())))
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
