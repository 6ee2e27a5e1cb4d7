"""Where ``mcastkit send`` gets its payloads: binary-safe, one framing per source.

Owns: turning MESSAGE words, ``--hex``, ``--file`` and standard input (framed by
``--split line|null|none``) into payload bytes, and the largest payload each IP version
can carry. Text is never decoded: stdin and files are read as bytes; MESSAGE words go
back to the bytes the shell gave (``surrogateescape``).
Must not: make socket calls or decide how fast to send.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from ._common import CliError
from ._status import ExitStatus

__all__ = ["MAX_PAYLOAD", "check_size", "from_hex", "read_file", "split_stream", "words"]

#: the largest UDP payload: 65535 minus the IPv4 (20) and UDP (8) headers; IPv6's payload
#: length excludes its own header, so only the UDP header counts (no jumbograms)
MAX_PAYLOAD = {4: 65507, 6: 65527}

_READ = 1 << 16


def check_size(n: int, version: int, what: str) -> None:
    """A usage error (exit 2) for a payload no datagram of ``version`` can carry."""
    if n > MAX_PAYLOAD[version]:
        raise CliError(f"{what}: {n} bytes do not fit in one IPv{version} UDP datagram (at "
                       f"most {MAX_PAYLOAD[version]} bytes); send smaller payloads",
                       ExitStatus.USAGE)


def words(message: list[str]) -> bytes:
    """MESSAGE words joined by spaces, as the bytes the shell passed."""
    return " ".join(message).encode("utf-8", "surrogateescape")


def from_hex(text: str) -> bytes:
    """``--hex``: hex digits; spaces, colons, dashes and a ``0x`` prefix are ignored."""
    t = re.sub(r"[\s:\-]", "", text)
    t = t[2:] if t.lower().startswith("0x") else t
    try:
        return bytes.fromhex(t)
    except ValueError:
        raise CliError(f"--hex {text!r}: not hex bytes (an even number of 0-9a-f digits, "
                       "e.g. --hex 'de ad be ef')", ExitStatus.USAGE) from None


def read_file(path: str) -> bytes:
    """``--file PATH``: the whole file as one payload."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_PAYLOAD[6] + 1)
    except OSError as exc:
        raise CliError(f"--file {path!r}: {exc.strerror}; give a readable file",
                       ExitStatus.USAGE) from None


def split_stream(stream: BinaryIO, split: str, keep_empty: bool) -> Iterator[bytes]:
    """Payloads read from a byte stream as it arrives.

    ``line``: one payload per line (LF; a CR before it is dropped too); ``null``: one
    per NUL-terminated record (binary safe, like ``find -print0``); ``none``: the whole
    stream is one payload. Empty records are skipped unless ``keep_empty``.
    """
    if split == "none":
        data = stream.read()
        if data or keep_empty:
            yield data
        return
    sep = b"\n" if split == "line" else b"\0"
    pending = b""
    # a line at a time from a pipe, so each datagram leaves as soon as its line is typed
    read = stream.readline if split == "line" else getattr(stream, "read1", stream.read)
    while True:
        chunk = read(_READ)
        if not chunk:
            break
        pending += chunk
        *records, pending = pending.split(sep)
        for r in records:
            if split == "line" and r.endswith(b"\r"):
                r = r[:-1]
            if r or keep_empty:
                yield r
    if split == "line" and pending.endswith(b"\r"):
        pending = pending[:-1]
    if pending:
        yield pending
