"""How the CLI shows untrusted payloads, endpoints, times and numbers.

Owns: terminal-safe text for payloads (:func:`escape_payload`: one datagram is one line
and no byte reaches the terminal as a control sequence), the unambiguous JSON payload
encoding (:func:`json_payload`: text when valid UTF-8, else base64, with an ``encoding``
field), endpoint text (IPv6 in brackets, the zone as an interface name), arrival times
and the rounding every verb uses for seconds, percentages, rates and Mbit/s.
Must not: do I/O, make socket calls, or know about argparse.
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Callable
from typing import Any

__all__ = [
    "endpoint_text",
    "escape_payload",
    "json_payload",
    "mbps",
    "pct",
    "rate",
    "secs",
    "time_text",
]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _unsafe(ch: str) -> bool:
    """Characters a terminal may act on: C0/C1 controls, DEL, bidi overrides and
    isolates (which reorder what follows), line and paragraph separators."""
    o = ord(ch)
    return (o < 0x20 or 0x7F <= o <= 0x9F or 0x202A <= o <= 0x202E or 0x2066 <= o <= 0x2069
            or o in (0x2028, 0x2029, 0x200E, 0x200F, 0x061C, 0xFEFF))


def escape_payload(data: bytes) -> str:
    """A payload as one line of terminal-safe text.

    Valid UTF-8 is shown as text; every byte that is not is shown as ``\\xNN`` (80-ff);
    ASCII controls as ``\\n``, ``\\r``, ``\\t`` or ``\\xNN`` (00-1f, 7f); other
    unsafe characters as ``\\uNNNN``; a backslash as ``\\\\``. Every escape means one
    thing, so the bytes can be read back exactly.
    """
    text = data.decode("utf-8", "surrogateescape")
    out: list[str] = []
    for ch in text:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif _unsafe(ch):
            # \xNN only for ASCII controls: \x80-\xff always means an undecodable byte
            out.append(f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def json_payload(data: bytes, hex_output: bool = False) -> dict[str, str]:
    """``{"data": ..., "encoding": ...}``: ``utf-8`` text when the payload is valid
    UTF-8, else ``base64``; ``hex`` when asked. JSON escapes controls itself."""
    if hex_output:
        return {"data": data.hex(), "encoding": "hex"}
    try:
        return {"data": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def decode_json_payload(obj: dict[str, Any]) -> bytes:
    """The bytes a :func:`json_payload` object carries (for tests and consumers)."""
    enc, data = obj["encoding"], obj["data"]
    if enc == "utf-8":
        return str(data).encode("utf-8")
    if enc == "base64":
        return base64.b64decode(data)
    if enc == "hex":
        return bytes.fromhex(data)
    raise ValueError(f"unknown payload encoding {enc!r}")


def host_text(address: str, ifname: Callable[[int], str | None] | None = None) -> str:
    """An address with an IPv6 zone index turned into its interface name."""
    host, pct_, zone = address.partition("%")
    if pct_ and zone.isdigit() and ifname is not None:
        zone = ifname(int(zone)) or zone
    return f"{host}%{zone}" if pct_ else host


def endpoint_text(address: str, port: int | None,
                  ifname: Callable[[int], str | None] | None = None) -> str:
    """``198.18.1.10:40000`` or ``[fe80::1%eth0]:48611`` (``port`` None: no port)."""
    host = host_text(address, ifname)
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def time_text(ns: int) -> str:
    """An arrival time, ISO 8601 UTC with microseconds: ``2026-11-30T08:30:00.123456Z``."""
    t = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def secs(v: float) -> float:
    """Seconds: 3 decimals everywhere (text and JSON)."""
    return round(v, 3)


def pct(v: float) -> float:
    """Percentages: 2 decimals everywhere."""
    return round(v, 2)


def rate(v: float) -> float:
    """Datagrams per second: 1 decimal."""
    return round(v, 1)


def mbps(v: float) -> float:
    """Mbit/s: 3 decimals."""
    return round(v, 3)
