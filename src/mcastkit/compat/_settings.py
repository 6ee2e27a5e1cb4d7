"""The configuration settings of the compat class: names, types, defaults, parsing.

Owns: the table of the 23 settings reachable through ``MCast.config()`` (the only place
their names are spelled), case-insensitive lookup, value parsing and formatting
(booleans read back as ``"True"``/``"False"``), the QOSTrafficType → DSCP map and the
CodePage → codec map.
Must not: touch sockets or the core; apply settings (``_mcast`` does, through the core).
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass
from typing import Final

from . import _codes

__all__ = [
    "QOS_TRAFFIC_TYPES",
    "SETTINGS",
    "Kind",
    "Setting",
    "codec_for",
    "format_value",
    "lookup",
    "parse_value",
    "split_config",
]

# Canonical names (use these constants everywhere else).
CAPTURE_IP_PACKET_INFO: Final = "CaptureIPPacketInfo"
DESTINATION_ADDRESS: Final = "DestinationAddress"
DONT_FRAGMENT: Final = "DontFragment"
LOCAL_HOST: Final = "LocalHost"
LOCAL_PORT: Final = "LocalPort"
MAX_PACKET_SIZE: Final = "MaxPacketSize"
QOS_DSCP_VALUE: Final = "QOSDSCPValue"
QOS_TRAFFIC_TYPE: Final = "QOSTrafficType"
SHARE_LOCAL_PORT: Final = "ShareLocalPort"
SOURCE_IP_ADDRESS: Final = "SourceIPAddress"
SOURCE_MAC_ADDRESS: Final = "SourceMacAddress"
USE_CONNECTION: Final = "UseConnection"
USE_IPV6: Final = "UseIPv6"
ABSOLUTE_TIMEOUT: Final = "AbsoluteTimeout"
FIREWALL_DATA: Final = "FirewallData"
IN_BUFFER_SIZE: Final = "InBufferSize"
OUT_BUFFER_SIZE: Final = "OutBufferSize"
BUILD_INFO: Final = "BuildInfo"
LICENSE_INFO: Final = "LicenseInfo"
CODE_PAGE: Final = "CodePage"
PROCESS_IDLE_EVENTS: Final = "ProcessIdleEvents"
SELECT_WAIT_MILLIS: Final = "SelectWaitMillis"
USE_INTERNAL_SECURITY_API: Final = "UseInternalSecurityAPI"


class Kind(enum.Enum):
    BOOL = "bool"
    INT = "int"
    OPT_INT = "optional int"  # "" = unset
    STR = "str"
    TRAFFIC = "traffic type"  # a QOSTrafficType name or 0-5


Value = bool | int | str | None


@dataclass(frozen=True, slots=True)
class Setting:
    """One row: name, type, default, range, read-only flag and the error number raised when
    it is changed while the component is active (None: may change at any time)."""

    name: str
    kind: Kind
    default: Value
    read_only: bool = False
    locked_code: int | None = None
    lo: int = 0
    hi: int = (1 << 31) - 1


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(CAPTURE_IP_PACKET_INFO, Kind.BOOL, False),
    Setting(DESTINATION_ADDRESS, Kind.STR, "", read_only=True),
    Setting(DONT_FRAGMENT, Kind.BOOL, False),
    Setting(LOCAL_HOST, Kind.STR, "", locked_code=_codes.CANNOT_CHANGE_LOCAL_HOST),
    Setting(LOCAL_PORT, Kind.INT, 0, locked_code=_codes.CANNOT_CHANGE_LOCAL_PORT, hi=65535),
    Setting(MAX_PACKET_SIZE, Kind.INT, 2048, locked_code=_codes.CANNOT_CHANGE_MAX_PACKET_SIZE,
            lo=1, hi=65535),
    Setting(QOS_DSCP_VALUE, Kind.OPT_INT, None, hi=63),
    Setting(QOS_TRAFFIC_TYPE, Kind.TRAFFIC, 0, hi=5),
    Setting(SHARE_LOCAL_PORT, Kind.BOOL, False, locked_code=_codes.CANNOT_CHANGE_SHARE_LOCAL_PORT),
    Setting(SOURCE_IP_ADDRESS, Kind.STR, ""),
    Setting(SOURCE_MAC_ADDRESS, Kind.STR, ""),
    Setting(USE_CONNECTION, Kind.BOOL, False, locked_code=_codes.CANNOT_CHANGE_USE_CONNECTION),
    Setting(USE_IPV6, Kind.BOOL, False, locked_code=_codes.CANNOT_CHANGE_USE_IPV6),
    Setting(ABSOLUTE_TIMEOUT, Kind.INT, 0, lo=-(1 << 31)),
    Setting(FIREWALL_DATA, Kind.STR, ""),
    Setting(IN_BUFFER_SIZE, Kind.OPT_INT, None, lo=1, hi=1 << 30),
    Setting(OUT_BUFFER_SIZE, Kind.OPT_INT, None, lo=1, hi=1 << 30),
    Setting(BUILD_INFO, Kind.STR, "", read_only=True),
    Setting(LICENSE_INFO, Kind.STR, "", read_only=True),
    Setting(CODE_PAGE, Kind.INT, 65001, lo=1, hi=65535),
    Setting(PROCESS_IDLE_EVENTS, Kind.BOOL, False),
    Setting(SELECT_WAIT_MILLIS, Kind.INT, 20, hi=3_600_000),
    Setting(USE_INTERNAL_SECURITY_API, Kind.BOOL, False),
)

_BY_LOWER: Final[dict[str, Setting]] = {s.name.lower(): s for s in SETTINGS}

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

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def lookup(name: str) -> Setting:
    """The setting called ``name`` (any case).

    Raises:
        MCastError: 120 (unknown setting); the message lists the known names.
    """
    s = _BY_LOWER.get(name.strip().lower())
    if s is None:
        known = ", ".join(x.name for x in SETTINGS)
        raise _codes.component_error(
            _codes.UNKNOWN_SETTING, f"{name.strip()!r} is not a setting of MCast; known: {known}"
        )
    return s


def split_config(arg: str) -> tuple[str, str | None]:
    """``"Name=Value"`` → (name, value); ``"Name"`` → (name, None)."""
    name, sep, value = arg.partition("=")
    return name.strip(), (value.strip() if sep else None)


def _bad(setting: Setting, text: str, want: str) -> _codes.MCastError:
    return _codes.component_error(_codes.BAD_VALUE, f"{setting.name}={text!r}: expected {want}.")


def parse_value(setting: Setting, text: str) -> Value:
    """Parse ``text`` for ``setting`` (booleans: True/False/1/0/yes/no/on/off, any case).

    Raises:
        MCastError: 121 (bad value; nothing changes).
    """
    t = text.strip()
    if setting.kind is Kind.BOOL:
        if t.lower() in _TRUE:
            return True
        if t.lower() in _FALSE:
            return False
        raise _bad(setting, text, "True or False")
    if setting.kind is Kind.STR:
        return t
    if setting.kind is Kind.OPT_INT and t == "":
        return None
    if setting.kind is Kind.TRAFFIC:
        key = t.lower().replace(" ", "").replace("_", "").replace("/", "")
        if key in QOS_TRAFFIC_TYPES:
            return QOS_TRAFFIC_TYPES[key][0]
    try:
        n = int(t, 0)
    except ValueError:
        names = "a name (" + ", ".join(QOS_TRAFFIC_TYPES) + ") or " \
            if setting.kind is Kind.TRAFFIC else ""
        raise _bad(setting, text, f"{names}an integer {setting.lo}-{setting.hi}") from None
    if not setting.lo <= n <= setting.hi:
        raise _bad(setting, text, f"an integer {setting.lo}-{setting.hi}")
    if setting.name == CODE_PAGE:
        codec_for(n)
    return n


def format_value(value: Value) -> str:
    """How ``config("Name")`` reads a value back (``None`` → ``""``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


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
