"""``MCast``: the IPWorks-compatible multicast class, a thin skin over MulticastSocket.

Owns: the 12 properties (``get_x`` / ``set_x`` / ``x``), ``config`` / ``do_events`` /
``reset`` / ``send``, the three events and their dispatch on the caller's thread, the
mapping of properties and settings onto core calls, and turning core errors into
:class:`MCastError` with vendor-style numbers.
Must not: make socket calls of its own (every socket operation goes through
:class:`~mcastkit.MulticastSocket`), keep a second copy of option handling, start
threads, spell setting names (they live in ``_settings``) or import the CLI.

Waiting in :meth:`MCast.do_events` uses :mod:`selectors` on the core's ``fileno()``;
remote host names are resolved with ``getaddrinfo`` (a resolver call, not a socket).
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import selectors
import socket
import time
from typing import Final

from .. import __version__
from .._addr import Group
from .._errors import McastError, WouldBlockError
from .._interfaces import Interface, resolve_interface
from .._packet import Datagram
from .._socket import MulticastSocket
from . import _codes
from . import _settings as S
from ._codes import MCastError, component_error, from_core
from ._events import (
    DataInHandler,
    ErrorHandler,
    MCastDataInEventParams,
    MCastErrorEventParams,
    MCastReadyToSendEventParams,
    ReadyToSendHandler,
)

__all__ = ["MCast"]

_log = logging.getLogger("mcastkit.compat")
_MAX_READS_PER_CALL: Final = 256  # one do_events() never starves the caller under a flood
_COMPAT_TTL: Final = 7  # the vendor's default (the core's own default stays 1)


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise component_error(_codes.BAD_VALUE, f"{name} must be an integer {lo}-{hi}, "
                                                f"got {value!r}.")
    return value


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise component_error(_codes.BAD_VALUE, f"{name} must be a str, got {value!r}.")
    return value.strip()


class MCast:
    """Send and receive IP multicast the way the vendor's ``ipworks.MCast`` does.

    Example (loopback)::

        mc = MCast()
        mc.on_data_in = lambda e: print(e.source_address, e.datagram)
        mc.receive_interface = mc.send_interface = "lo"
        mc.local_port = 5000
        mc.multicast_group = "239.255.0.1"
        mc.active = True
        mc.remote_host, mc.remote_port = "239.255.0.1", 5000
        mc.send(b"hello")
        mc.do_events()

    Events fire on the thread that calls :meth:`do_events` (and ``on_ready_to_send``
    also inside ``active = True``); nothing runs on a hidden thread.
    """

    def __init__(self) -> None:
        self._core: MulticastSocket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._in_events = False
        self._want_write = False
        self._bound_host = ""
        self._pending: collections.deque[Datagram] = collections.deque()  # read, not delivered
        self._on_data_in: DataInHandler | None = None
        self._on_error: ErrorHandler | None = None
        self._on_ready_to_send: ReadyToSendHandler | None = None
        self._defaults()

    def _defaults(self) -> None:
        self._accept_data = True
        self._local_host = ""
        self._local_port = 0
        self._loopback = True
        self._multicast_group = ""
        self._groups: list[str] = []
        self._receive_interface = ""
        self._remote_host = ""
        self._remote_port = 0
        self._send_interface = ""
        self._time_to_live = _COMPAT_TTL
        self._settings: dict[str, S.Value] = {s.name: s.default for s in S.SETTINGS}

    def __repr__(self) -> str:
        state = f"active on {self._bound_host}:{self.get_local_port()}" if self._core \
            else "inactive"
        return f"<MCast {state} groups={self._groups}>"

    # mcastkit extension: a context manager that deactivates on exit
    def __enter__(self) -> MCast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.set_active(False)

    # ================================================================== properties

    # --- accept_data
    def get_accept_data(self) -> bool:
        """Whether arriving datagrams are delivered to ``on_data_in`` (False: reading
        pauses; datagrams wait in the kernel buffer)."""
        return self._accept_data

    def set_accept_data(self, value: bool) -> None:
        self._accept_data = bool(value)

    accept_data = property(get_accept_data, set_accept_data)

    # --- active
    def get_active(self) -> bool:
        """True while the socket is open, bound and joined."""
        return self._core is not None

    def set_active(self, value: bool) -> None:
        """True: open, bind, apply options, join recorded groups, fire on_ready_to_send.
        False: leave every group and close. Re-asserting the current state is a no-op.

        Raises:
            MCastError: 114/116 (UseConnection without a remote), 121 (a recorded group of
                the wrong IP version), or a socket error (e.g. 10048 address in use).
        """
        if bool(value):
            if self._core is None:
                self._activate()
        elif self._core is not None:
            self._deactivate()

    active = property(get_active, set_active)

    # --- data_to_send (write-only, like the vendor's)
    def set_data_to_send(self, value: bytes | str) -> None:
        """Send ``value`` at once, like :meth:`send`.

        Raises:
            MCastError: as :meth:`send`.
        """
        self.send(value)

    data_to_send = property(None, set_data_to_send)

    # --- local_host
    def get_local_host(self) -> str:
        """Before activation: the value assigned. After: the address bound (the wildcard
        reads back as ``0.0.0.0`` / ``::``; a local unicast address or interface name
        reads back as that interface's address)."""
        return self._bound_host if self._core is not None else self._local_host

    def set_local_host(self, value: str) -> None:
        """Raises: MCastError 107 if changed while active."""
        v = _check_str("local_host", value)
        if self._core is not None and v != self._local_host:
            raise component_error(_codes.CANNOT_CHANGE_LOCAL_HOST,
                                  "Set active = False first.")
        self._local_host = v

    local_host = property(get_local_host, set_local_host)

    # --- local_port
    def get_local_port(self) -> int:
        """The port assigned; after activation the port actually bound (0 → the kernel's)."""
        if self._core is not None:
            try:
                return self._core.local_address[1]
            except (OSError, McastError):
                return self._local_port
        return self._local_port

    def set_local_port(self, value: int) -> None:
        """Raises: MCastError 106 if changed while active, 121 if out of 0-65535."""
        v = _check_int("local_port", value, 0, 65535)
        if self._core is not None and v != self._local_port and v != self.get_local_port():
            raise component_error(_codes.CANNOT_CHANGE_LOCAL_PORT, "Set active = False first.")
        self._local_port = v

    local_port = property(get_local_port, set_local_port)

    # --- loopback
    def get_loopback(self) -> bool:
        """Whether our sends to a group reach listeners on this host (sender-side)."""
        return self._loopback

    def set_loopback(self, value: bool) -> None:
        v = bool(value)
        if self._core is not None:
            self._call(self._core.set_loopback, v)
        self._loopback = v

    loopback = property(get_loopback, set_loopback)

    # --- multicast_group
    def get_multicast_group(self) -> str:
        """The last value assigned (joined groups: :attr:`groups`, an extension)."""
        return self._multicast_group

    def set_multicast_group(self, value: str) -> None:
        """``"GROUP"`` joins (now if active, else on activation); ``"-GROUP"`` leaves that
        group; ``""`` leaves every group this instance joined.

        Raises:
            MCastError: 121 (not a multicast address), 10049 (leaving a group not joined),
                or the socket error of the join.
        """
        v = _check_str("multicast_group", value)
        if v == "":
            self._leave_all()
        elif v.startswith("-"):
            self._leave(v[1:].strip())
        else:
            self._join(v)
        self._multicast_group = v

    multicast_group = property(get_multicast_group, set_multicast_group)

    # --- receive_interface
    def get_receive_interface(self) -> str:
        """Interface (address, name or index) on which groups are joined; "" = the
        routing table's choice (see :attr:`memberships` for the one used)."""
        return self._receive_interface

    def set_receive_interface(self, value: str) -> None:
        """Applies to joins made after the change."""
        self._receive_interface = _check_str("receive_interface", value)

    receive_interface = property(get_receive_interface, set_receive_interface)

    # --- remote_host / remote_port
    def get_remote_host(self) -> str:
        """Destination address (group, unicast or broadcast) or host name."""
        return self._remote_host

    def set_remote_host(self, value: str) -> None:
        """With UseConnection on and active, the socket is re-connected."""
        v = _check_str("remote_host", value)
        old = self._remote_host
        self._remote_host = v
        if self._core is not None and self._use_connection() and v != old:
            try:
                self._connect(self._core)
            except MCastError:
                self._remote_host = old
                raise

    remote_host = property(get_remote_host, set_remote_host)

    def get_remote_port(self) -> int:
        """Destination UDP port."""
        return self._remote_port

    def set_remote_port(self, value: int) -> None:
        v = _check_int("remote_port", value, 0, 65535)
        old = self._remote_port
        self._remote_port = v
        if self._core is not None and self._use_connection() and v != old:
            try:
                self._connect(self._core)
            except MCastError:
                self._remote_port = old
                raise

    remote_port = property(get_remote_port, set_remote_port)

    # --- send_interface
    def get_send_interface(self) -> str:
        """Interface for outgoing multicast; "" = the routing table's choice."""
        return self._send_interface

    def set_send_interface(self, value: str) -> None:
        """Applied at once when active ("" while active takes effect on the next
        activation: Linux cannot un-set the outgoing interface of an open socket)."""
        v = _check_str("send_interface", value)
        if self._core is not None and v:
            self._call(self._core.set_interface, v)
        self._send_interface = v

    send_interface = property(get_send_interface, set_send_interface)

    # --- time_to_live
    def get_time_to_live(self) -> int:
        """Multicast TTL / hop limit (default 7, the vendor's; 0 = this host only)."""
        return self._time_to_live

    def set_time_to_live(self, value: int) -> None:
        """Raises: MCastError 121 if outside 0-255."""
        v = _check_int("time_to_live", value, 0, 255)
        if self._core is not None:
            self._call(self._core.set_ttl, v)
        self._time_to_live = v

    time_to_live = property(get_time_to_live, set_time_to_live)

    # ================================================================== events

    def get_on_data_in(self) -> DataInHandler | None:
        return self._on_data_in

    def set_on_data_in(self, handler: DataInHandler | None) -> None:
        self._on_data_in = handler

    on_data_in = property(get_on_data_in, set_on_data_in)

    def get_on_error(self) -> ErrorHandler | None:
        return self._on_error

    def set_on_error(self, handler: ErrorHandler | None) -> None:
        self._on_error = handler

    on_error = property(get_on_error, set_on_error)

    def get_on_ready_to_send(self) -> ReadyToSendHandler | None:
        return self._on_ready_to_send

    def set_on_ready_to_send(self, handler: ReadyToSendHandler | None) -> None:
        self._on_ready_to_send = handler

    on_ready_to_send = property(get_on_ready_to_send, set_on_ready_to_send)

    # ================================================================== extensions

    @property
    def groups(self) -> tuple[str, ...]:
        """mcastkit extension: every group assigned and not left, in order."""
        return tuple(self._groups)

    @property
    def memberships(self) -> tuple[str, ...]:
        """mcastkit extension: the kernel memberships held, as ``"GROUP on IFNAME"``."""
        if self._core is None:
            return ()
        return tuple(f"{m.group} on {m.ifname}" for m in self._core.memberships)

    # ================================================================== methods

    def config(self, setting: str) -> str:
        """``"Name=Value"`` sets a setting and returns ""; ``"Name"`` returns its value.

        Names are case-insensitive; booleans read back as "True"/"False".

        Raises:
            MCastError: 120 unknown name, 121 bad value, 122 read-only, 123 not
                implemented, a "cannot change while active" number, or a socket error.
                Nothing changes when it raises.
        """
        if not isinstance(setting, str):
            raise component_error(_codes.BAD_VALUE, f"config() takes a str, got {setting!r}.")
        name, text = S.split_config(setting)
        row = S.lookup(name)
        if text is None:
            return self._get_setting(row)
        if row.read_only:
            raise component_error(_codes.READ_ONLY_SETTING, f"{row.name} can only be read.")
        self._set_setting(row, S.parse_value(row, text))
        return ""

    def do_events(self) -> None:
        """Process pending events once: wait up to SelectWaitMillis for the socket, fire
        ``on_ready_to_send`` if a would-block cleared, deliver waiting datagrams through
        ``on_data_in`` (unless ``accept_data`` is False), then return. Never raises
        because of a handler: handler errors go to ``on_error``. Calls from inside a
        handler return at once (events are not re-entrant)."""
        if self._in_events:
            return
        wait_s = int(self._settings[S.SELECT_WAIT_MILLIS] or 0) / 1000.0
        core, sel = self._core, self._selector
        mask = 0
        if core is not None and sel is not None:
            if self._accept_data:
                mask |= selectors.EVENT_READ
            if self._want_write:
                mask |= selectors.EVENT_WRITE
        if self._pending and self._accept_data:
            wait_s = 0.0  # datagrams already read (a batch cut short by accept_data = False)
        if core is None or sel is None or mask == 0:
            if wait_s:
                time.sleep(wait_s)  # nothing to wait on: do not spin the caller's loop
            return
        try:
            sel.modify(core.fileno(), mask)
            ready = sel.select(wait_s)
        except (OSError, ValueError, McastError) as exc:
            self._fire_error(from_core(exc) if isinstance(exc, OSError | McastError)
                             else component_error(_codes.BAD_VALUE, str(exc)))
            return
        self._in_events = True
        try:
            readable = bool(self._pending)
            for _key, events in ready:
                if events & selectors.EVENT_WRITE and self._want_write:
                    self._want_write = False
                    self._fire(self._on_ready_to_send, MCastReadyToSendEventParams())
                if events & selectors.EVENT_READ:
                    readable = True
            if readable:
                self._drain()
        finally:
            self._in_events = False

    def reset(self) -> None:
        """Deactivate (leaving every group) and restore every property and setting to its
        default. Event handlers stay attached."""
        if self._core is not None:
            self._deactivate()
        self._defaults()
        self._want_write = False
        self._bound_host = ""

    def send(self, text: bytes | str) -> None:
        """Send one datagram to ``remote_host:remote_port`` (or the connected peer with
        UseConnection). ``str`` is encoded with CodePage (UTF-8 by default).

        Raises:
            MCastError: 109 not active, 114 no remote address/port, 10035 would block
                (``on_ready_to_send`` fires once sending is possible again; nothing was
                sent), 10040 too long, or another socket error.
        """
        core = self._core
        if core is None:
            raise component_error(_codes.MUST_BE_ACTIVE, "Set active = True before sending.")
        data = self._encode(text)
        src = ""
        try:
            if self._use_connection():
                core.send(data)
                return
            host, port = self._destination()
            src = str(self._settings[S.SOURCE_IP_ADDRESS] or "")
            if src:
                core.sendto_from(data, host, port, src)
            else:
                core.sendto(data, host, port)
        except WouldBlockError as exc:
            self._want_write = True
            raise from_core(exc) from exc
        except (McastError, OSError) as exc:
            err = from_core(exc)
            if src and err.errno in (errno.EINVAL, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                err = MCastError(err.code, f"{err.message} (SourceIPAddress={src} must be an "
                                 "address of this host)", errno=err.errno)
            raise err from exc

    # ================================================================== internals

    def _call(self, fn: object, *args: object) -> object:
        """Call a core method, turning its errors into MCastError."""
        try:
            return fn(*args)  # type: ignore[operator]
        except (McastError, OSError) as exc:
            raise from_core(exc) from exc

    def _use_connection(self) -> bool:
        return bool(self._settings[S.USE_CONNECTION])

    def _family(self) -> int:
        return 6 if self._settings[S.USE_IPV6] else 4

    def _encode(self, text: bytes | str | bytearray | memoryview) -> bytes:
        if isinstance(text, str):
            codec = S.codec_for(int(self._settings[S.CODE_PAGE] or 65001))
            try:
                return text.encode(codec)
            except UnicodeEncodeError as exc:
                raise component_error(_codes.BAD_VALUE, f"cannot encode the text with "
                                      f"CodePage {self._settings[S.CODE_PAGE]}: {exc}") from None
        if isinstance(text, bytes | bytearray | memoryview):
            return bytes(text)
        raise component_error(_codes.BAD_VALUE, f"send() takes bytes or str, got {text!r}.")

    def _resolve(self, host: str) -> str:
        """An IP literal for ``host`` in this instance's family (names via getaddrinfo)."""
        bare = host.split("%", 1)[0]
        try:
            ipaddress.ip_address(bare)
            return host
        except ValueError:
            pass
        fam = socket.AF_INET6 if self._family() == 6 else socket.AF_INET
        try:
            infos = socket.getaddrinfo(host, None, fam, socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise _codes.socket_error(exc.errno or -2, f"{host!r}: {exc.strerror}") from None
        return str(infos[0][4][0])

    def _destination(self) -> tuple[str, int]:
        if not self._remote_host:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET, "Set remote_host first.")
        if self._remote_port == 0:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET,
                                  "remote_port is 0; set the destination port.")
        return self._resolve(self._remote_host), self._remote_port

    def _connect(self, core: MulticastSocket) -> None:
        if not self._remote_host:
            raise component_error(_codes.REMOTE_ADDRESS_NOT_SET,
                                  "UseConnection needs remote_host.")
        if self._remote_port == 0:
            raise component_error(_codes.REMOTE_PORT_ZERO, "Set remote_port first.")
        host = self._resolve(self._remote_host)
        self._call(core.connect, host, self._remote_port)

    def _bind_plan(self) -> tuple[str | None, Interface | None]:
        """(address to bind, default interface) for local_host.

        Linux delivers multicast only to sockets bound to the wildcard or to the group,
        so a local *unicast* address (or an interface name) binds the wildcard and makes
        that interface the default for joins and sends (Windows binds the address)."""
        h = self._local_host
        if not h:
            return None, None
        try:
            ip = ipaddress.ip_address(h.split("%", 1)[0])
        except ValueError:
            return None, self._call(resolve_interface, h)  # type: ignore[return-value]
        if ip.version != self._family():
            raise component_error(_codes.BAD_VALUE, f"local_host {h} is IPv{ip.version}; "
                                  f"set UseIPv6={'True' if ip.version == 6 else 'False'}.")
        if ip.is_multicast or ip.is_unspecified:
            return str(ip), None
        return None, self._call(resolve_interface, ip)  # type: ignore[return-value]

    def _check_group(self, text: str) -> Group:
        try:
            g = Group.parse(text)
        except McastError as exc:
            raise from_core(exc) from exc
        if g.version != self._family():
            raise component_error(
                _codes.BAD_VALUE, f"group {g} is IPv{g.version} but UseIPv6 is "
                f"{self._settings[S.USE_IPV6]}; set UseIPv6={g.version == 6} while inactive.")
        return g

    def _join_where(self) -> str | Interface | None:
        if self._receive_interface:
            return self._receive_interface
        return self._default_iface

    def _join(self, text: str) -> None:
        core = self._core
        if core is None:
            try:
                g = Group.parse(text)
            except McastError as exc:
                raise from_core(exc) from exc
        else:
            g = self._check_group(text)
            self._call(core.join, g, self._join_where())
        key = str(g)
        if key not in self._groups:
            self._groups.append(key)

    def _leave(self, text: str) -> None:
        try:
            key = str(Group.parse(text))
        except McastError as exc:
            raise from_core(exc) from exc
        if key not in self._groups:
            raise _codes.socket_error(
                errno.EADDRNOTAVAIL, f"{key} is not joined by this instance")
        if self._core is not None:
            self._leave_everywhere(self._core, key)
        self._groups.remove(key)

    def _leave_all(self) -> None:
        for key in list(self._groups):
            if self._core is not None:
                self._leave_everywhere(self._core, key)
            self._groups.remove(key)

    def _leave_everywhere(self, core: MulticastSocket, key: str) -> None:
        """Leave ``key`` on every interface this instance joined it on (receive_interface
        may have changed between two joins of the same group), by interface index so the
        core never has to guess which one is meant."""
        for m in [m for m in core.memberships if m.group == key]:
            self._call(core.leave, key, m.ifindex)

    def _effective_dscp(self) -> int | None:
        dscp = self._settings[S.QOS_DSCP_VALUE]
        if dscp is not None:
            return int(dscp)
        traffic = int(self._settings[S.QOS_TRAFFIC_TYPE] or 0)
        return S.TRAFFIC_DSCP[traffic] if traffic else None

    def _activate(self) -> None:
        fam = self._family()
        for text in self._groups:
            self._check_group(text)
        if self._use_connection():
            if not self._remote_host:
                raise component_error(_codes.REMOTE_ADDRESS_NOT_SET,
                                      "UseConnection needs remote_host.")
            if self._remote_port == 0:
                raise component_error(_codes.REMOTE_PORT_ZERO, "Set remote_port first.")
        bind_addr, default_iface = self._bind_plan()
        share = bool(self._settings[S.SHARE_LOCAL_PORT])
        inbuf, outbuf = self._settings[S.IN_BUFFER_SIZE], self._settings[S.OUT_BUFFER_SIZE]
        try:
            core = MulticastSocket(
                fam, ttl=self._time_to_live, loopback=self._loopback,
                reuse_port=share, reuse_address=share,
                metadata=bool(self._settings[S.CAPTURE_IP_PACKET_INFO]),
                rcvbuf_bytes=int(inbuf) if inbuf is not None else None,
                sndbuf_bytes=int(outbuf) if outbuf is not None else None,
                dscp=self._effective_dscp(),
                dont_fragment=bool(self._settings[S.DONT_FRAGMENT]),
                recv_size=int(self._settings[S.MAX_PACKET_SIZE] or 2048),
                blocking=False,
            )
        except (McastError, OSError) as exc:
            raise from_core(exc) from exc
        self._default_iface = default_iface
        try:
            if self._send_interface:
                self._call(core.set_interface, self._send_interface)
            elif default_iface is not None:
                self._call(core.set_interface, default_iface)
            bound: tuple[str, int] = self._call(  # type: ignore[assignment]
                core.bind, self._local_port, bind_addr)
            addr = bound[0]
            for key in self._groups:
                self._call(core.join, key, self._join_where())
            if self._use_connection():
                self._connect(core)
            sel = selectors.DefaultSelector()
            sel.register(core.fileno(), selectors.EVENT_READ)
        except BaseException:
            core.close()
            raise
        self._core, self._selector = core, sel
        if default_iface is not None:
            own = default_iface.address(fam)
            self._bound_host = str(own) if own is not None else str(addr)
            if self._local_host and _is_ip(self._local_host):
                self._bound_host = self._local_host
        else:
            self._bound_host = str(addr)
        self._want_write = False
        self._fire(self._on_ready_to_send, MCastReadyToSendEventParams())

    def _deactivate(self) -> None:
        core, sel = self._core, self._selector
        self._core = self._selector = None
        self._want_write = False
        self._pending.clear()
        if sel is not None:
            sel.close()
        if core is not None:
            core.close()  # leaves every group

    def _drain(self) -> None:
        """Deliver up to _MAX_READS_PER_CALL datagrams (read with recv_batch), re-checking
        after each handler whether it paused (accept_data) or deactivated."""
        limit = int(self._settings[S.MAX_PACKET_SIZE] or 2048)
        pending = self._pending
        settings = self._settings
        capture = S.CAPTURE_IP_PACKET_INFO
        params = MCastDataInEventParams
        left = _MAX_READS_PER_CALL
        while left > 0:
            core = self._core
            if core is None or not self._accept_data:
                return
            if not pending:
                try:
                    if hasattr(core, "recv_batch"):  # recvmmsg in the core (issue 5)
                        pending.extend(core.recv_batch(left))
                    else:  # pragma: no cover - older core
                        pending.append(core.recv())
                except BlockingIOError:
                    return
                except (McastError, OSError) as exc:
                    self._fire_error(from_core(exc))
                    return
            d = pending.popleft()
            left -= 1
            if settings[capture]:
                settings[S.DESTINATION_ADDRESS] = d.group or ""
            handler = self._on_data_in
            if handler is not None:
                try:
                    handler(params(d.data, d.source, d.port))
                except Exception as exc:
                    self._handler_failed(handler, exc)
            if d.truncated:
                self._fire_error(_codes.socket_error(
                    errno.EMSGSIZE,
                    f"a datagram from {d.source}:{d.port} was longer than MaxPacketSize="
                    f"{limit} and was cut to {len(d.data)} bytes; raise MaxPacketSize "
                    "(while inactive)"))

    def _fire(self, handler: object, params: object) -> None:
        if handler is None:
            return
        try:
            handler(params)  # type: ignore[operator]
        except Exception as exc:
            self._handler_failed(handler, exc)

    def _handler_failed(self, handler: object, exc: Exception) -> None:
        """A handler raised: report it through on_error (never raise into the caller)."""
        name = getattr(handler, "__name__", type(handler).__name__)
        if isinstance(exc, MCastError):
            err = MCastError(exc.code, f"{name} raised: {exc.message}", errno=exc.errno)
        else:
            err = component_error(_codes.HANDLER_FAILED,
                                  f"{name} raised {type(exc).__name__}: {exc}")
        if handler is self._on_error:
            _log.exception("the on_error handler raised; ignored")
        else:
            self._fire_error(err)

    def _fire_error(self, err: MCastError) -> None:
        handler = self._on_error
        if handler is None:
            _log.warning("MCast error with no on_error handler: [%d] %s", err.code, err.message)
            return
        try:
            handler(MCastErrorEventParams(err.code, err.message))
        except Exception:
            _log.exception("the on_error handler raised; ignored")

    # --- settings
    def _get_setting(self, row: S.Setting) -> str:
        name = row.name
        if name == S.LOCAL_HOST:
            return self.get_local_host()
        if name == S.LOCAL_PORT:
            return str(self.get_local_port())
        if name in (S.IN_BUFFER_SIZE, S.OUT_BUFFER_SIZE) and self._core is not None:
            core = self._core
            return str(core.rcvbuf_bytes if name == S.IN_BUFFER_SIZE else core.sndbuf_bytes)
        if name == S.BUILD_INFO:
            return f"mcastkit {__version__} (IPWorks 2020 MCast-compatible class, Linux)"
        if name == S.LICENSE_INFO:
            return "mcastkit is open source (MIT); no license key is needed"
        return S.format_value(self._settings[name])

    def _set_setting(self, row: S.Setting, value: S.Value) -> None:
        name = row.name
        if name == S.LOCAL_HOST:
            self.set_local_host(str(value))
            return
        if name == S.LOCAL_PORT:
            self.set_local_port(int(value or 0))
            return
        core = self._core
        if row.locked_code is not None and core is not None and value != self._settings[name]:
            raise component_error(row.locked_code, "Set active = False first.")
        if name == S.SOURCE_MAC_ADDRESS and value:
            raise component_error(
                _codes.NOT_IMPLEMENTED,
                "SourceMacAddress is not implemented on Linux: choosing the source MAC needs "
                "a raw AF_PACKET socket and CAP_NET_RAW, which mcastkit does not use. Leave "
                "it empty (the interface's own MAC is used).")
        if name == S.SOURCE_IP_ADDRESS and value:
            try:
                ip = ipaddress.ip_address(str(value))
            except ValueError:
                raise component_error(_codes.BAD_VALUE,
                                      f"SourceIPAddress={value!r} is not an IP address.") from None
            if ip.is_multicast or ip.is_unspecified:
                raise component_error(_codes.BAD_VALUE, f"SourceIPAddress={ip} must be a "
                                      "unicast address of this host.")
        if core is not None:
            if name == S.CAPTURE_IP_PACKET_INFO:
                self._call(core.set_metadata, bool(value))
            elif name == S.DONT_FRAGMENT:
                self._call(core.set_dont_fragment, bool(value))
            elif name in (S.QOS_DSCP_VALUE, S.QOS_TRAFFIC_TYPE):
                old = self._settings[name]
                self._settings[name] = value
                try:
                    dscp = self._effective_dscp()
                    self._call(core.set_dscp, dscp if dscp is not None else 0)
                except MCastError:
                    self._settings[name] = old
                    raise
            elif name == S.IN_BUFFER_SIZE and value is not None:
                self._call(lambda: core.set_buffer_sizes(rcvbuf_bytes=int(value)))
            elif name == S.OUT_BUFFER_SIZE and value is not None:
                self._call(lambda: core.set_buffer_sizes(sndbuf_bytes=int(value)))
        self._settings[name] = value

    _default_iface: Interface | None = None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True

