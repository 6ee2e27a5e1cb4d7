"""The sequence layer as the CLI verbs have always imported it.

Owns: nothing; the code lives in :mod:`mcastkit.seq` (core, reusable by the library),
and this module keeps ``from .. import _seq`` working in the verbs.
Must not: grow code of its own (one path per job).
"""

from __future__ import annotations

from mcastkit.seq import (
    HEADER_SIZE,
    Kind,
    SeqAnalyzer,
    SeqHeader,
    StreamStats,
    StreamSummary,
    pack,
    pack_reply,
    parse,
    parse_format,
    parse_iperf2,
    parse_reply_responder,
)

__all__ = [
    "HEADER_SIZE",
    "Kind",
    "SeqAnalyzer",
    "SeqHeader",
    "StreamStats",
    "StreamSummary",
    "pack",
    "pack_reply",
    "parse",
    "parse_format",
    "parse_iperf2",
    "parse_reply_responder",
]
