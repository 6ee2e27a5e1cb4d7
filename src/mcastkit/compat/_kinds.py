"""Value kinds of the compat class: how a property or setting value is parsed, checked and
formatted.

Owns: :class:`Kind` (one object per value type, carrying its three functions: ``parse``
for ``config("Name=text")``, ``check`` for a Python value assigned to a property,
``fmt`` for reading back), the kinds themselves (booleans, integer ranges, optional
integers, text, IP addresses, MAC addresses (parsed by the core's one MAC parser),
QOSTrafficType names, CodePage numbers), the QOSTrafficType → DSCP map and the
CodePage → codec map.
Must not: know setting names, touch sockets or the core (beyond its pure MAC parser),
or keep state.
"""

from __future__ import annotations

import codecs
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .. import McastValueError
from .._linklayer import format_mac, mac_bytes
from . import _codes

__all__ = [
    "BOOL",
    "CODE_PAGE",
    "MAC",
    "QOS_TRAFFIC_TYPES",
    "SOURCE_IP",
    "TEXT",
    "TRAFFIC",
    "TRAFFIC_DSCP",
    "Kind",
    "Value",
    "codec_for",
    "format_value",
    "int_kind",
    "opt_int_kind",
]

Value = bool | int | str | None

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})

# QOSTrafficType (Windows qWAVE QOS_TRAFFIC_TYPE order; research §13) → DSCP.
QOS_TRAFFIC_TYPES: Final[dict[str, tuple[int, int]]] = {
    # name (lower case): (number, DSCP)
    "besteffort": (0, 0),
    "background": (1, 8),
    "excellenteffort": (2, 40),
    "audiovideo": (3, 40),
    "voice": (4, 56),
    "control": (5, 56),
}
TRAFFIC_DSCP: Final[dict[int, int]] = dict(QOS_TRAFFIC_TYPES.values())

# CodePage numbers with a Python codec name that differs from "cp<N>".
_CODE_PAGES: Final[dict[int, str]] = {
    65001: "utf-8", 65000: "utf-7", 1200: "utf-16-le", 1201: "utf-16-be", 20127: "ascii",
    28591: "latin-1", 28592: "iso8859-2", 28605: "iso8859-15", 20866: "koi8-r",
    932: "cp932", 936: "gbk", 949: "cp949", 950: "cp950", 54936: "gb18030",
}


def _bad(name: str, got: object, want: str) -> _codes.MCastError:
    return _codes.component_error(_codes.BAD_VALUE, f"{name}={got!r}: expected {want}.")


@dataclass(frozen=True, slots=True)
class Kind:
    """A value type. ``parse(name, text)`` reads config text, ``check(name, value)`` checks a
    Python value assigned to a property, ``fmt(value)`` is what reading gives back. The
    first two raise MCastError 121 (nothing changes) naming the property or setting."""

    parse: Callable[[str, str], Value]
    check: Callable[[str, object], Value]
    fmt: Callable[[Value], str]


def format_value(value: Value) -> str:
    """How a value reads back: ``None`` → ``""``, booleans ``"True"``/``"False"``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


# ------------------------------------------------------------------ booleans and text

def _parse_bool(name: str, text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise _bad(name, text, "True or False")


BOOL: Final = Kind(_parse_bool, lambda _name, v: bool(v), format_value)


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _codes.component_error(_codes.BAD_VALUE, f"{name} must be a str, got {value!r}.")
    return value.strip()


TEXT: Final = Kind(lambda _name, t: t.strip(), _check_text, format_value)


def _parse_source_ip(name: str, text: str) -> str:
    t = text.strip()
    if not t:
        return ""
    try:
        ip = ipaddress.ip_address(t)
    except ValueError:
        raise _bad(name, text, "an IP address of this host") from None
    if ip.is_multicast or ip.is_unspecified:
        raise _bad(name, text, "a unicast address of this host")
    return str(ip)


SOURCE_IP: Final = Kind(_parse_source_ip,
                        lambda name, v: _parse_source_ip(name, _check_text(name, v)),
                        format_value)


def _parse_mac(name: str, text: str) -> str:
    """A source MAC as ``aa:bb:cc:dd:ee:ff`` ("" for none); ``-`` separators and any
    case are taken; a group-bit (multicast) MAC is refused."""
    t = text.strip()
    if not t:
        return ""
    try:
        return format_mac(mac_bytes(t, name, source=True))
    except McastValueError as exc:
        msg = exc.message if exc.message.startswith(name) else f"{name}: {exc.message}"
        raise _codes.component_error(_codes.BAD_VALUE, msg) from None


MAC: Final = Kind(_parse_mac, lambda name, v: _parse_mac(name, _check_text(name, v)),
                  format_value)


# ------------------------------------------------------------------ integers

def _int_in(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(name, value, f"an integer {lo}-{hi}")
    return value


def _parse_int(name: str, text: str, lo: int, hi: int) -> int:
    try:
        n = int(text.strip(), 0)
    except ValueError:
        raise _bad(name, text, f"an integer {lo}-{hi}") from None
    return _int_in(name, n, lo, hi)


def int_kind(lo: int, hi: int) -> Kind:
    """Integers ``lo``..``hi`` (config text in any base ``int(text, 0)`` accepts)."""
    return Kind(lambda name, t: _parse_int(name, t, lo, hi),
                lambda name, v: _int_in(name, v, lo, hi), format_value)


def opt_int_kind(lo: int, hi: int) -> Kind:
    """Like :func:`int_kind`, plus ``""`` / ``None`` for "unset"."""
    return Kind(lambda name, t: None if t.strip() == "" else _parse_int(name, t, lo, hi),
                lambda name, v: None if v is None else _int_in(name, v, lo, hi), format_value)


def _parse_traffic(name: str, text: str) -> int:
    key = text.strip().lower().replace(" ", "").replace("_", "").replace("/", "")
    if key in QOS_TRAFFIC_TYPES:
        return QOS_TRAFFIC_TYPES[key][0]
    try:
        return _parse_int(name, text, 0, 5)
    except _codes.MCastError:
        raise _bad(name, text, "a name (" + ", ".join(QOS_TRAFFIC_TYPES)
                   + ") or an integer 0-5") from None


TRAFFIC: Final = Kind(_parse_traffic, lambda name, v: _int_in(name, v, 0, 5), format_value)


def codec_for(code_page: int) -> str:
    """The Python codec for a Windows code page number (65001 → "utf-8").

    Raises:
        MCastError: 121 if Python has no codec for it.
    """
    name = _CODE_PAGES.get(code_page, f"cp{code_page}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise _codes.component_error(
            _codes.BAD_VALUE,
            f"CodePage={code_page}: no Python codec for it; use 65001 (UTF-8), 1252, 20127 "
            "(ASCII) or 28591 (Latin-1)",
        ) from None


def _code_page(name: str, n: int) -> int:
    codec_for(n)
    return n


CODE_PAGE: Final = Kind(lambda name, t: _code_page(name, _parse_int(name, t, 1, 65535)),
                        lambda name, v: _code_page(name, _int_in(name, v, 1, 65535)),
                        format_value)
