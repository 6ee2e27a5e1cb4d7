"""The table of every property and configuration setting of the compat class.

Owns: :class:`Row` and :data:`ROWS`, one row per knob. A row carries everything about its
knob: the Python property name and/or the ``config()`` name (the only place setting names
are spelled), its value kind (parse / check / format), default, read-only flag, the error
number raised when it is changed while active, the constructor arguments it gives the core
(``open_kw``), how it is pushed onto an open core (``apply``, also run at activation
unless ``at_open`` is False), how it reads back live (``read``), and a ``store`` hook
for knobs whose assignment is an action (``multicast_group``). Adding a knob is adding one
row; :class:`~mcastkit.compat._session.Session` applies rows generically. Also owns the
case-insensitive setting lookup and ``"Name=Value"`` splitting.
Must not: keep state, open sockets, or call the core except through the row functions it
declares (each a one-line call of a public core method or a Session helper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .. import __version__
from . import _codes
from . import _kinds as K
from ._kinds import Kind, Value

if TYPE_CHECKING:
    from .. import MulticastSocket
    from ._session import Session

__all__ = [
    "COMPAT_TTL",
    "PROPS",
    "ROWS",
    "SENDERS",
    "SETTINGS",
    "Row",
    "SendFn",
    "lookup",
    "split_config",
]

SendFn = Callable[[bytes, str, int], object]
COMPAT_TTL: Final = 7  # the vendor's default (the core's own default stays 1)
_BUF_MAX: Final = 1 << 30  # the largest buffer request the core takes


@dataclass(frozen=True, slots=True)
class Row:
    """One knob. ``key`` names its stored value (the setting name, else the property name).

    Attributes:
        name: the ``config()`` name ("" for a property without a setting).
        prop: the Python property name ("" for a setting without a property).
        read_only: ``config("Name=...")`` raises 122.
        locked: error number raised when the value changes while active (None: free).
        open_kw: the :class:`~mcastkit.MulticastSocket` arguments this knob sets at
            activation (for what an open socket cannot change).
        apply: push a new value onto the open core; raises MCastError to refuse (nothing
            is stored then). Runs at activation too when ``at_open``.
        read: the live value (default: the stored one).
        live_equal_ok: while locked, assigning the live value is a no-op, not a change
            (``local_port = local_port`` after the kernel chose the port).
        send_via: the send path this knob's value asks for (``send(data, host, port)``),
            or None for the core's plain ``sendto``; the first row in table order that
            gives one is used (SourceMacAddress's raw path, which honours
            SourceIPAddress, before SourceIPAddress's ``sendto_from``).
        store: replaces "apply, then store" for knobs whose assignment is an action.
    """

    kind: Kind
    default: Value
    name: str = ""
    prop: str = ""
    read_only: bool = False
    locked: int | None = None
    open_kw: Callable[[Value], dict[str, object]] | None = None
    apply: Callable[[Session, MulticastSocket, Value], None] | None = None
    at_open: bool = True
    read: Callable[[Session], Value] | None = None
    live_equal_ok: bool = False
    send_via: Callable[[Session, MulticastSocket, Value], SendFn | None] | None = None
    store: Callable[[Session, Value], None] | None = None

    @property
    def key(self) -> str:
        return self.name or self.prop

    @property
    def label(self) -> str:
        """How errors name this knob (the property name for properties)."""
        return self.prop or self.name


def _ro(read: Callable[[Session], Value]) -> Row:
    return Row(K.TEXT, "", read_only=True, read=read)


_OPT_BUF: Final = K.opt_int_kind(0, (1 << 31) - 1)  # any size: the kernel clamps, we never refuse


def _buffer(name: str, attr: str) -> Row:
    """InBufferSize / OutBufferSize: any size is taken and clamped to what the core accepts;
    the kernel's value reads back when active (see ``Session.read_buffer``)."""
    def apply(s: Session, core: MulticastSocket, v: Value) -> None:
        if v is not None:
            s.apply_buffer(core.set_buffer_sizes, **{attr: max(1, min(int(v), _BUF_MAX))})

    return Row(_OPT_BUF, None, name=name, apply=apply,
               read=lambda s: s.read_buffer(attr, s.values[name]))


# Read with ``s.value(row)``; the order is the order of application at activation.
ACCEPT_DATA: Final = Row(K.BOOL, True, prop="accept_data")
LOCAL_HOST: Final = Row(K.TEXT, "", name="LocalHost", prop="local_host",
                        locked=_codes.CANNOT_CHANGE_LOCAL_HOST, at_open=False,
                        read=lambda s: s.read_local_host())
LOCAL_PORT: Final = Row(K.int_kind(0, 65535), 0, name="LocalPort", prop="local_port",
                        locked=_codes.CANNOT_CHANGE_LOCAL_PORT, at_open=False,
                        read=lambda s: s.read_local_port(), live_equal_ok=True)
LOOPBACK: Final = Row(K.BOOL, True, prop="loopback",
                      apply=lambda s, c, v: s.call(c.set_loopback, bool(v)))
MULTICAST_GROUP: Final = Row(K.TEXT, "", prop="multicast_group",
                             store=lambda s, v: s.assign_group(str(v)))
RECEIVE_INTERFACE: Final = Row(K.TEXT, "", prop="receive_interface")
REMOTE_HOST: Final = Row(K.TEXT, "", prop="remote_host", at_open=False,
                         apply=lambda s, c, v: s.reconnect(c, host=str(v)))
REMOTE_PORT: Final = Row(K.int_kind(0, 65535), 0, prop="remote_port", at_open=False,
                         apply=lambda s, c, v: s.reconnect(c, port=int(v or 0)))
SEND_INTERFACE: Final = Row(K.TEXT, "", prop="send_interface",
                            apply=lambda s, c, v: s.call(c.set_interface, v) if v else None)
TIME_TO_LIVE: Final = Row(K.int_kind(0, 255), COMPAT_TTL, prop="time_to_live",
                          apply=lambda s, c, v: s.call(c.set_ttl, int(v or 0)))

CAPTURE_IP_PACKET_INFO: Final = Row(K.BOOL, False, name="CaptureIPPacketInfo",
                                    apply=lambda s, c, v: s.call(c.set_metadata, bool(v)))
DESTINATION_ADDRESS: Final = Row(K.TEXT, "", name="DestinationAddress", read_only=True)
DONT_FRAGMENT: Final = Row(K.BOOL, False, name="DontFragment",
                           apply=lambda s, c, v: s.call(c.set_dont_fragment, bool(v)))
MAX_PACKET_SIZE: Final = Row(K.int_kind(1, 65535), 2048, name="MaxPacketSize",
                             locked=_codes.CANNOT_CHANGE_MAX_PACKET_SIZE,
                             open_kw=lambda v: {"recv_size": int(v or 2048)})
QOS_DSCP_VALUE: Final = Row(K.opt_int_kind(0, 63), None, name="QOSDSCPValue",
                            apply=lambda s, c, v: s.apply_dscp(c, dscp=v))
QOS_TRAFFIC_TYPE: Final = Row(K.TRAFFIC, 0, name="QOSTrafficType",
                              apply=lambda s, c, v: s.apply_dscp(c, traffic=v))
SHARE_LOCAL_PORT: Final = Row(K.BOOL, False, name="ShareLocalPort",
                              locked=_codes.CANNOT_CHANGE_SHARE_LOCAL_PORT,
                              open_kw=lambda v: {"reuse_port": bool(v), "reuse_address": bool(v)})
SOURCE_IP_ADDRESS: Final = Row(K.SOURCE_IP, "", name="SourceIPAddress",
                               send_via=lambda s, c, v: s.send_from(c, str(v)) if v else None)
SOURCE_MAC_ADDRESS: Final = Row(K.MAC, "", name="SourceMacAddress",
                                send_via=lambda s, c, v: s.send_raw(c, str(v)) if v else None)
USE_CONNECTION: Final = Row(K.BOOL, False, name="UseConnection",
                            locked=_codes.CANNOT_CHANGE_USE_CONNECTION)
USE_IPV6: Final = Row(K.BOOL, False, name="UseIPv6", locked=_codes.CANNOT_CHANGE_USE_IPV6,
                      open_kw=lambda v: {"family": 6 if v else 4, "broadcast": not v})
ABSOLUTE_TIMEOUT: Final = Row(K.BOOL, False, name="AbsoluteTimeout")
FIREWALL_DATA: Final = Row(K.TEXT, "", name="FirewallData")
IN_BUFFER_SIZE: Final = _buffer("InBufferSize", "rcvbuf_bytes")
OUT_BUFFER_SIZE: Final = _buffer("OutBufferSize", "sndbuf_bytes")
BUILD_INFO: Final = Row(K.TEXT, "", name="BuildInfo", read_only=True,
                        read=lambda s: f"mcastkit {__version__} (IPWorks 2020 "
                        "MCast-compatible class, Linux)")
LICENSE_INFO: Final = Row(K.TEXT, "", name="LicenseInfo", read_only=True,
                          read=lambda s: "mcastkit is open source (MIT); no license key is needed")
CODE_PAGE: Final = Row(K.CODE_PAGE, 65001, name="CodePage")
PROCESS_IDLE_EVENTS: Final = Row(K.BOOL, False, name="ProcessIdleEvents")
SELECT_WAIT_MILLIS: Final = Row(K.int_kind(0, 3_600_000), 20, name="SelectWaitMillis")
USE_INTERNAL_SECURITY_API: Final = Row(K.BOOL, False, name="UseInternalSecurityAPI")
KERNEL_DROPS: Final = Row(K.int_kind(0, 1 << 63), 0, name="KernelDrops", read_only=True,
                          read=lambda s: s.kernel_drops())

ROWS: Final[tuple[Row, ...]] = (
    ACCEPT_DATA, LOCAL_HOST, LOCAL_PORT, LOOPBACK, MULTICAST_GROUP, RECEIVE_INTERFACE,
    REMOTE_HOST, REMOTE_PORT, SEND_INTERFACE, TIME_TO_LIVE,
    CAPTURE_IP_PACKET_INFO, DESTINATION_ADDRESS, DONT_FRAGMENT, MAX_PACKET_SIZE,
    QOS_DSCP_VALUE, QOS_TRAFFIC_TYPE, SHARE_LOCAL_PORT, SOURCE_MAC_ADDRESS, SOURCE_IP_ADDRESS,
    USE_CONNECTION, USE_IPV6, ABSOLUTE_TIMEOUT, FIREWALL_DATA, IN_BUFFER_SIZE, OUT_BUFFER_SIZE,
    BUILD_INFO, LICENSE_INFO, CODE_PAGE, PROCESS_IDLE_EVENTS, SELECT_WAIT_MILLIS,
    USE_INTERNAL_SECURITY_API, KERNEL_DROPS,
)
SETTINGS: Final[tuple[Row, ...]] = tuple(r for r in ROWS if r.name)
SENDERS: Final[tuple[Row, ...]] = tuple(r for r in ROWS if r.send_via is not None)
PROPS: Final[dict[str, Row]] = {r.prop: r for r in ROWS if r.prop}
_BY_LOWER: Final[dict[str, Row]] = {r.name.lower(): r for r in SETTINGS}


def lookup(name: str) -> Row:
    """The setting called ``name`` (any case).

    Raises:
        MCastError: 120 (unknown setting); the message lists the known names.
    """
    row = _BY_LOWER.get(name.strip().lower())
    if row is None:
        known = ", ".join(x.name for x in SETTINGS)
        raise _codes.component_error(
            _codes.UNKNOWN_SETTING, f"{name.strip()!r} is not a setting of MCast; known: {known}"
        )
    return row


def split_config(arg: str) -> tuple[str, str | None]:
    """``"Name=Value"`` → (name, value); ``"Name"`` → (name, None)."""
    name, sep, value = arg.partition("=")
    return name.strip(), (value.strip() if sep else None)
