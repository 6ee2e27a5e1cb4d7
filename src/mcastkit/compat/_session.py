"""The state of one ``MCast`` and everything it asks of the core.

Owns: :class:`Session`, the one object that holds an MCast's state (the values of every
row in ``_settings``, the open :class:`~mcastkit.MulticastSocket`, its selector, datagrams
read but not yet delivered, the recorded groups, the handlers, the counters); setting
and reading rows generically (read-only, locked-while-active, apply-then-store);
activation (constructor arguments from the rows, default interface, the rows' ``apply``,
bind, joins, connect) and deactivation; joins and leaves; remote resolution; the send
path the rows ask for; and turning core errors into :class:`MCastError`.
Must not: make socket calls of its own (every socket operation goes through the public
core API, or the core's raw sender for SourceMacAddress; remote host names are resolved
with ``getaddrinfo``, a resolver call), spell
setting names (it uses the rows), dispatch events (``_pump`` does) or keep a second copy
of option handling.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import selectors
import socket
from collections.abc import Callable
from typing import Any, Final

from .. import (
    Datagram,
    ErrorCode,
    Group,
    Interface,
    McastError,
    MulticastSocket,
    WouldBlockError,
    resolve_interface,
)
from .._frames import BROADCAST_MAC
from .._interfaces import is_broadcast_address, route_interface
from .._rawsend import RawSender
from . import _codes
from . import _settings as S
from ._codes import MCastError, component_error, from_core
from ._events import DataInHandler, ErrorHandler, ReadyToSendHandler
from ._kinds import TRAFFIC_DSCP, Value, codec_for
from ._report import ErrorLog, MCastStats

__all__ = ["Session"]

_UNSET: Final = object()


class Session:
    """One MCast's state and its core calls (see the module charter)."""

    def __init__(self) -> None:
        self.on_data_in: DataInHandler | None = None
        self.on_error: ErrorHandler | None = None
        self.on_ready_to_send: ReadyToSendHandler | None = None
        self.core: MulticastSocket | None = None
        self.selector: selectors.BaseSelector | None = None
        self.pending: collections.deque[Datagram] = collections.deque()  # read, undelivered
        self.want_write = False  # a send raised 10035: on_ready_to_send is owed
        self.in_events = False
        self.raw: tuple[tuple[object, ...], RawSender] | None = None  # SourceMacAddress's
        self.defaults()

    def defaults(self) -> None:
        """Every row back to its default, counters to zero (``reset()``)."""
        self.values: dict[str, Value] = {r.key: r.default for r in S.ROWS}
        self.groups: list[str] = []
        self.default_iface: Interface | None = None  # from local_host
        self.delivered = self.discarded = self.filtered_before = 0
        self.drops_before = 0  # kernel drops of earlier activations
        self.drops_seen = 0  # of the current activation, as last reported via on_error
        self.drops_checked_at = 0.0  # time.monotonic() of the last drop check
        self.errlog = ErrorLog()  # unhandled errors, rate-limited (G12)

    # ------------------------------------------------------------------ rows

    def value(self, row: S.Row) -> Value:
        """The stored value of ``row``."""
        return self.values[row.key]

    def read(self, row: S.Row) -> Value:
        """The value ``row`` reads back (live where the row says so)."""
        return row.read(self) if row.read is not None else self.values[row.key]

    def set(self, row: S.Row, value: Value) -> None:
        """Set an already parsed value: refuse (nothing changes) or apply, then store.

        Raises:
            MCastError: 122 read-only, the row's locked number, or what ``apply`` raised.
        """
        if row.read_only:
            raise component_error(_codes.READ_ONLY_SETTING, f"{row.label} can only be read.")
        core = self.core
        if (core is not None and row.locked is not None and value != self.values[row.key]
                and not (row.live_equal_ok and value == self.read(row))):
            raise component_error(row.locked, "Set active = False first.")
        if row.store is not None:
            row.store(self, value)
        else:
            if core is not None and row.apply is not None:
                row.apply(self, core, value)
            self.values[row.key] = value

    def call(self, fn: Callable[..., Any], *args: object, **kw: object) -> Any:
        """Call a core function, turning its errors into MCastError."""
        try:
            return fn(*args, **kw)
        except (McastError, OSError, ValueError, UnicodeError) as exc:
            raise from_core(exc) from exc

    def family(self) -> int:
        return 6 if self.values[S.USE_IPV6.key] else 4

    # ------------------------------------------------------------------ live read-backs

    def read_local_port(self) -> int:
        if self.core is not None:
            try:
                return self.core.local_address[1]
            except (OSError, McastError):
                pass
        return int(self.values[S.LOCAL_PORT.key] or 0)

    def read_local_host(self) -> str:
        """Inactive: the value assigned. Active: a group or unicast address assigned reads
        back as itself; otherwise the address of the interface in use (local_host's,
        send_interface, receive_interface, the first membership's), else the loopback
        address: a real address of this host, never the wildcard."""
        assigned = str(self.values[S.LOCAL_HOST.key])
        core = self.core
        if core is None:
            return assigned
        bare = assigned.split("%", 1)[0]
        if _is_ip(bare) and not ipaddress.ip_address(bare).is_unspecified:
            return assigned
        fam = self.family()
        specs: list[object] = [self.default_iface, self.values[S.SEND_INTERFACE.key],
                               self.values[S.RECEIVE_INTERFACE.key]]
        specs += [m.ifindex for m in core.memberships]
        for spec in specs:
            if spec in (None, ""):
                continue
            try:
                iface = resolve_interface(spec)  # type: ignore[arg-type]
            except (McastError, OSError, ValueError):
                continue
            addr = iface.address(fam)
            if addr is not None:  # a link-local address is only usable with its scope
                return f"{addr}%{iface.name}" if addr.is_link_local and fam == 6 else str(addr)
        return "::1" if fam == 6 else "127.0.0.1"

    def read_buffer(self, attr: str, requested: Value) -> int:
        """InBufferSize / OutBufferSize as integer text in every state: the kernel's value
        when active, the request when inactive, else the kernel's default."""
        if self.core is not None:
            try:
                return int(getattr(self.core, attr))
            except (McastError, OSError):
                pass
        if requested is not None:
            return int(requested)
        try:
            with MulticastSocket(self.family()) as probe:
                return int(getattr(probe, attr))
        except (McastError, OSError):  # e.g. out of descriptors: the sysctl says the same
            sysctl = "rmem_default" if attr == "rcvbuf_bytes" else "wmem_default"
            with open(f"/proc/sys/net/core/{sysctl}") as f:
                return int(f.read())

    def apply_buffer(self, fn: Callable[..., object], **size: int) -> None:
        """Request a buffer size; a size the kernel cannot apply is not an error: the
        kernel's own value stays and reads back (the vendor's "reverts")."""
        with contextlib.suppress(McastError, OSError):
            fn(**size)

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for a full receive buffer, over every activation."""
        return self.drops_before + self.live_drops()

    def live_drops(self) -> int:
        core = self.core
        if core is None:
            return 0
        n = core.kernel_drops()
        return n if n >= 0 else core.stats.kernel_drops

    def stats(self) -> MCastStats:
        core = self.core
        return MCastStats(delivered=self.delivered, discarded=self.discarded,
                          kernel_drops=self.kernel_drops(),
                          filtered=self.filtered_before + (_filtered(core) if core else 0),
                          errors_not_logged=self.errlog.not_logged)

    # ------------------------------------------------------------------ options

    def apply_dscp(self, core: MulticastSocket, dscp: object = _UNSET,
                   traffic: object = _UNSET) -> None:
        """QOSDSCPValue overrides QOSTrafficType; either may be the value being set."""
        d = self.values[S.QOS_DSCP_VALUE.key] if dscp is _UNSET else dscp
        t = self.values[S.QOS_TRAFFIC_TYPE.key] if traffic is _UNSET else traffic
        eff = int(d) if isinstance(d, int) else TRAFFIC_DSCP[int(t or 0)]  # type: ignore[call-overload]
        self.call(core.set_dscp, eff)

    # ------------------------------------------------------------------ remote

    def resolve(self, host: str) -> str:
        """An IP literal for ``host`` in this instance's family (names via getaddrinfo)."""
        if _is_ip(host.split("%", 1)[0]):
            return host
        fam = socket.AF_INET6 if self.family() == 6 else socket.AF_INET
        try:
            infos = socket.getaddrinfo(host, None, fam, socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise _codes.socket_error(exc.errno or -2, f"{host!r}: {exc.strerror}") from None
        return str(infos[0][4][0])

    def destination(self) -> tuple[str, int]:
        host, port = str(self.values[S.REMOTE_HOST.key]), int(self.values[S.REMOTE_PORT.key] or 0)
        if not host:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET, "Set remote_host first.")
        if port == 0:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET,
                                  "remote_port is 0; set the destination port.")
        ip = self.resolve(host)
        if (":" in ip) != (self.family() == 6):
            v = 6 if ":" in ip else 4
            extra = " (IPv6 has no broadcast: use the all-nodes group ff02::1)" if (
                v == 4 and is_broadcast_address(ip)) else ""
            raise component_error(
                _codes.BAD_VALUE, f"remote_host {ip} is IPv{v} but UseIPv6 is "
                f"{self.values[S.USE_IPV6.key]}; set UseIPv6={v == 6} while inactive{extra}.")
        if ip == "255.255.255.255":
            self._check_limited_broadcast()
        return ip, port

    def _check_limited_broadcast(self) -> None:
        """The limited broadcast leaves through one chosen interface, never the route's
        default: send_interface or local_host must name it."""
        if not (self.values[S.SEND_INTERFACE.key] or self.default_iface):
            raise component_error(
                _codes.BAD_VALUE, "remote_host 255.255.255.255 (the limited broadcast) "
                "leaves through one interface: set send_interface (or local_host) to it; "
                "a subnet's broadcast address (e.g. 198.18.9.255) needs neither.")

    def _check_connection(self, host: str, port: int) -> None:
        if not host:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET,
                                  "UseConnection needs remote_host.")
        if port == 0:
            raise component_error(_codes.REMOTE_PORT_ZERO, "Set remote_port first.")

    def reconnect(self, core: MulticastSocket, host: str | None = None,
                  port: int | None = None) -> None:
        """With UseConnection on, connect to the remote (``host``/``port`` override the
        stored values: they are the ones being set)."""
        if not self.values[S.USE_CONNECTION.key]:
            return
        h = str(self.values[S.REMOTE_HOST.key]) if host is None else host
        p = int(self.values[S.REMOTE_PORT.key] or 0) if port is None else port
        self._check_connection(h, p)
        ip = self.resolve(h)
        if ip == "255.255.255.255":
            self._check_limited_broadcast()
        self.call(core.connect, ip, p)

    def sender(self, core: MulticastSocket) -> S.SendFn:
        """The send path the rows ask for (``send_via``), else the core's ``sendto``."""
        for row in S.SENDERS:
            fn = row.send_via(self, core, self.values[row.key])  # type: ignore[misc]
            if fn is not None:
                return fn
        return core.sendto

    def send_from(self, core: MulticastSocket, src: str) -> S.SendFn:
        """SourceIPAddress's send path: ``sendto_from``, with a refusal of a source that
        is not an address of this host named as such."""
        def send(data: bytes, host: str, port: int) -> None:
            try:
                core.sendto_from(data, host, port, src)
            except WouldBlockError:
                raise
            except (McastError, OSError) as exc:
                err = from_core(exc)
                if err.errno in (errno.EINVAL, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                    err = MCastError(err.code, f"{err.message} (SourceIPAddress={src} must "
                                     "be an address of this host)", errno=err.errno)
                raise err from exc
        return send

    def send_raw(self, core: MulticastSocket, mac: str) -> S.SendFn:
        """SourceMacAddress's send path: whole frames through the core's raw sender
        (AF_PACKET, needs CAP_NET_RAW) out of send_interface, else local_host's
        interface, else the route's device for the destination; with this instance's
        local port, TTL, DSCP, DF and SourceIPAddress. A directed broadcast goes to
        ff:ff:ff:ff:ff:ff. The sender is made at the first send and kept until
        deactivation (or until the interface, MAC or DF changes)."""
        def send(data: bytes, host: str, port: int) -> None:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
            spec: object = (self.values[S.SEND_INTERFACE.key] or self.default_iface
                            or route_interface(ip))
            key = (spec, mac, core.dont_fragment)
            if self.raw is None or self.raw[0] != key:
                self.close_raw()
                try:
                    raw = RawSender(spec, src_mac=mac,  # type: ignore[arg-type]
                                    dont_fragment=core.dont_fragment)
                except McastError as exc:
                    if exc.code is not ErrorCode.PERMISSION:
                        raise
                    err = from_core(exc)
                    out = MCastError(err.code, f"{err.message} (clear SourceMacAddress to "
                                     "send through the normal path)", errno=err.errno)
                    out.core_code = err.core_code
                    raise out from exc
                self.raw = (key, raw)
            bcast = ip.version == 4 and not ip.is_multicast and is_broadcast_address(str(ip))
            src = str(self.values[S.SOURCE_IP_ADDRESS.key]) or None
            self.raw[1].send(data, ip, port, sport=core.local_address[1], src=src,
                             dst_mac=BROADCAST_MAC if bcast else None, ttl=core.ttl,
                             dscp=core.dscp)
        return send

    def close_raw(self) -> None:
        """Close SourceMacAddress's raw sender, if one was made."""
        if self.raw is not None:
            self.raw[1].close()
            self.raw = None

    def encode(self, text: bytes | str | bytearray | memoryview) -> bytes:
        if isinstance(text, str):
            codec = codec_for(int(self.values[S.CODE_PAGE.key] or 65001))
            try:
                return text.encode(codec)
            except UnicodeEncodeError as exc:
                raise component_error(_codes.BAD_VALUE, f"cannot encode the text with "
                                      f"CodePage {self.values[S.CODE_PAGE.key]}: {exc}") from None
        if isinstance(text, bytes | bytearray | memoryview):
            return bytes(text)
        raise component_error(_codes.BAD_VALUE, f"send() takes bytes or str, got {text!r}.")

    # ------------------------------------------------------------------ groups

    def parse_group(self, text: str, check_family: bool = True) -> Group:
        try:
            g = Group.parse(text)
        except (McastError, ValueError, UnicodeError) as exc:
            raise from_core(exc) from exc
        if check_family and g.version != self.family():
            raise component_error(
                _codes.BAD_VALUE, f"group {g} is IPv{g.version} but UseIPv6 is "
                f"{self.values[S.USE_IPV6.key]}; set UseIPv6={g.version == 6} while inactive.")
        return g

    def assign_group(self, text: str) -> None:
        """``multicast_group = text``: "G" joins (now if active), "-G" leaves G, "" leaves
        every group of this instance."""
        if text == "":
            for key in list(self.groups):
                self._leave_everywhere(key)
                self.groups.remove(key)
        elif text.startswith("-"):
            key = str(self.parse_group(text[1:].strip(), check_family=False))
            if key not in self.groups:
                raise _codes.socket_error(
                    errno.EADDRNOTAVAIL, f"{key} is not joined by this instance")
            self._leave_everywhere(key)
            self.groups.remove(key)
        else:
            g = self.parse_group(text, check_family=self.core is not None)
            if self.core is not None:
                self.join(self.core, g)
            if str(g) not in self.groups:
                self.groups.append(str(g))
        self.values[S.MULTICAST_GROUP.key] = text

    def join(self, core: MulticastSocket, g: Group) -> None:
        """Join on receive_interface, else local_host's interface, else the device of
        the kernel's route for the group (the core finds it even when the route has no
        source address)."""
        where: object = self.values[S.RECEIVE_INTERFACE.key] or self.default_iface
        self.call(core.join, g, where)

    def _leave_everywhere(self, key: str) -> None:
        """Leave ``key`` on every interface this instance joined it on (receive_interface
        may have changed between two joins), by index, so the core never guesses."""
        core = self.core
        if core is None:
            return
        for m in [m for m in core.memberships if m.group == key]:
            self.call(core.leave, key, m.ifindex)

    # ------------------------------------------------------------------ lifecycle

    def _bind_plan(self) -> tuple[str | None, Interface | None]:
        """(address to bind, default interface) for local_host. Linux delivers multicast
        only to sockets bound to the wildcard or the group, so a local *unicast* address
        (or an interface name) binds the wildcard and makes its interface the default."""
        h = str(self.values[S.LOCAL_HOST.key])
        if not h:
            return None, None
        bare = h.split("%", 1)[0]
        if not _is_ip(bare):
            return None, self.call(resolve_interface, h)
        ip = ipaddress.ip_address(bare)
        if ip.version != self.family():
            raise component_error(_codes.BAD_VALUE, f"local_host {h} is IPv{ip.version}; "
                                  f"set UseIPv6={'True' if ip.version == 6 else 'False'}.")
        if ip.is_multicast or ip.is_unspecified:
            return str(ip), None
        return None, self.call(resolve_interface, ip)

    def open(self) -> None:
        """Activate: the core opened with the rows' ``open_kw``, the default interface,
        every row's ``apply``, bind, the recorded joins, connect, the selector."""
        for text in self.groups:
            self.parse_group(text)
        v = self.values
        if v[S.USE_CONNECTION.key]:
            self._check_connection(str(v[S.REMOTE_HOST.key]), int(v[S.REMOTE_PORT.key] or 0))
        bind_addr, default_iface = self._bind_plan()
        kw: dict[str, Any] = {"blocking": False}
        for row in S.ROWS:
            if row.open_kw is not None:
                kw.update(row.open_kw(v[row.key]))
        core: MulticastSocket = self.call(MulticastSocket, **kw)
        self.default_iface = default_iface
        try:
            if default_iface is not None:
                self.call(core.set_interface, default_iface)
            for row in S.ROWS:
                if row.apply is not None and row.at_open:
                    row.apply(self, core, v[row.key])
            self.call(core.bind, int(v[S.LOCAL_PORT.key] or 0), bind_addr)
            self.core = core  # joins and reconnect read it
            for key in self.groups:
                self.join(core, Group.parse(key))
            self.reconnect(core)
            sel = selectors.DefaultSelector()
            sel.register(core.fileno(), selectors.EVENT_READ)
        except BaseException:
            self.core = None
            core.close()
            raise
        self.selector = sel
        self.want_write = False
        self.drops_seen = 0

    def close(self) -> None:
        """Deactivate: count what is dropped, leave every group, close."""
        core, sel = self.core, self.selector
        if core is None:
            return
        self.drops_before += self.live_drops()
        self.filtered_before += _filtered(core)
        self.discarded += len(self.pending)  # read by a batch, not delivered: counted
        self.pending.clear()
        self.core = self.selector = None
        self.want_write = False
        self.close_raw()
        self.errlog.flush()
        if sel is not None:
            sel.close()
        core.close()  # leaves every group


def _filtered(core: MulticastSocket) -> int:
    return core.stats.filtered + core.stats.ttl_filtered


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
