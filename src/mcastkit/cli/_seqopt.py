"""The ``--seq FORMAT`` option shared by listen, record and ping.

Owns: the option's spelling, help and argparse type (validated through
:func:`mcastkit.seq.parse_format`, so a bad FORMAT is a usage error naming the valid
ones). Must not: count anything (:class:`mcastkit.seq.SeqAnalyzer` does).
"""

from __future__ import annotations

import argparse

from mcastkit import McastValueError
from mcastkit.seq import FORMAT_NAMES, parse_format

from ._parser_walk import suggest

__all__ = ["add_seq_option", "seq_format_arg"]


def seq_format_arg(text: str) -> str:
    """argparse type: a sequence format name (returned normalised)."""
    try:
        return parse_format(text).name
    except McastValueError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


# completion offers the built-in names (the generic uN[be|le]@OFFSET form stays accepted)
suggest(seq_format_arg, (n for n in FORMAT_NAMES if "@" not in n))


def add_seq_option(p: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    """Add ``--seq FORMAT`` to ``p``."""
    p.add_argument("--seq", type=seq_format_arg, default=default, metavar="FORMAT",
                   help=f"{what}; FORMAT: {', '.join(FORMAT_NAMES)}")
