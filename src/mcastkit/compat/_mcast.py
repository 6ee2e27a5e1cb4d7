"""``MCast``: the IPWorks-compatible multicast class, a thin skin over MulticastSocket.

Owns: the public surface of the class: the 12 properties (``get_x`` / ``set_x`` / ``x``,
each a one-line delegation to its row in ``_settings``), the three event attributes,
``config`` / ``do_events`` / ``reset`` / ``send``, and the extensions (context manager,
``groups``, ``memberships``, ``stats``).
Must not: hold state (the :class:`~mcastkit.compat._session.Session` does), make socket
calls, parse or apply values (the rows do), dispatch events (``_pump`` does), start
threads, spell setting names or import the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .. import McastError, WouldBlockError
from . import _codes, _pump
from . import _settings as S
from ._codes import component_error, from_core
from ._events import DataInHandler, ErrorHandler, MCastReadyToSendEventParams, ReadyToSendHandler
from ._kinds import Value
from ._report import MCastStats
from ._session import Session

__all__ = ["MCast"]

T = TypeVar("T")


def _int(v: Value) -> int:
    return int(v or 0)


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
        self._s = Session()

    def __repr__(self) -> str:
        s = self._s
        state = f"active on {self.get_local_host()}:{self.get_local_port()}" if s.core \
            else "inactive"
        return f"<MCast {state} groups={s.groups}>"

    # mcastkit extension: a context manager that deactivates on exit
    def __enter__(self) -> MCast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.set_active(False)

    def _get(self, row: S.Row, as_type: Callable[[Value], T]) -> T:
        return as_type(self._s.read(row))

    def _set(self, row: S.Row, value: object) -> None:
        self._s.set(row, row.kind.check(row.label, value))

    # ================================================================== properties

    def get_accept_data(self) -> bool:
        """Whether arriving datagrams are delivered to ``on_data_in`` (False: reading
        pauses; datagrams wait in the kernel buffer)."""
        return self._get(S.ACCEPT_DATA, bool)

    def set_accept_data(self, value: bool) -> None:
        self._set(S.ACCEPT_DATA, value)

    accept_data = property(get_accept_data, set_accept_data)

    def get_active(self) -> bool:
        """True while the socket is open, bound and joined."""
        return self._s.core is not None

    def set_active(self, value: bool) -> None:
        """True: open, bind, apply options, join recorded groups, fire on_ready_to_send.
        False: leave every group and close. Re-asserting the current state is a no-op.

        Raises:
            MCastError: 114/116 (UseConnection without a remote), 121 (a recorded group of
                the wrong IP version), or a socket error (e.g. 10048 address in use).
        """
        s = self._s
        if bool(value) and s.core is None:
            s.open()
            _pump.fire(s, s.on_ready_to_send, MCastReadyToSendEventParams())
        elif not value and s.core is not None:
            s.close()

    active = property(get_active, set_active)

    def set_data_to_send(self, value: bytes | str) -> None:
        """Send ``value`` at once, like :meth:`send` (write-only, like the vendor's).

        Raises:
            MCastError: as :meth:`send`.
        """
        self.send(value)

    data_to_send = property(None, set_data_to_send)

    def get_local_host(self) -> str:
        """Before activation: the value assigned. After: a group or unicast address
        assigned reads back as itself; otherwise the address of the interface in use,
        never the wildcard (see docs/compat.md)."""
        return self._get(S.LOCAL_HOST, str)

    def set_local_host(self, value: str) -> None:
        """Raises: MCastError 107 if changed while active."""
        self._set(S.LOCAL_HOST, value)

    local_host = property(get_local_host, set_local_host)

    def get_local_port(self) -> int:
        """The port assigned; after activation the port actually bound (0 → the kernel's)."""
        return self._get(S.LOCAL_PORT, _int)

    def set_local_port(self, value: int) -> None:
        """Raises: MCastError 106 if changed while active, 121 if out of 0-65535."""
        self._set(S.LOCAL_PORT, value)

    local_port = property(get_local_port, set_local_port)

    def get_loopback(self) -> bool:
        """Whether our sends to a group reach listeners on this host (sender-side)."""
        return self._get(S.LOOPBACK, bool)

    def set_loopback(self, value: bool) -> None:
        self._set(S.LOOPBACK, value)

    loopback = property(get_loopback, set_loopback)

    def get_multicast_group(self) -> str:
        """The last value assigned (joined groups: :attr:`groups`, an extension)."""
        return self._get(S.MULTICAST_GROUP, str)

    def set_multicast_group(self, value: str) -> None:
        """``"GROUP"`` joins (now if active, else on activation); ``"-GROUP"`` leaves that
        group; ``""`` leaves every group this instance joined.

        Raises:
            MCastError: 121 (not a multicast address), 10049 (leaving a group not joined),
                or the socket error of the join.
        """
        self._set(S.MULTICAST_GROUP, value)

    multicast_group = property(get_multicast_group, set_multicast_group)

    def get_receive_interface(self) -> str:
        """Interface (address, name or index) on which groups are joined; "" = the
        routing table's choice (see :attr:`memberships` for the one used)."""
        return self._get(S.RECEIVE_INTERFACE, str)

    def set_receive_interface(self, value: str) -> None:
        """Applies to joins made after the change."""
        self._set(S.RECEIVE_INTERFACE, value)

    receive_interface = property(get_receive_interface, set_receive_interface)

    def get_remote_host(self) -> str:
        """Destination address (group, unicast or broadcast) or host name."""
        return self._get(S.REMOTE_HOST, str)

    def set_remote_host(self, value: str) -> None:
        """With UseConnection on and active, the socket is re-connected."""
        self._set(S.REMOTE_HOST, value)

    remote_host = property(get_remote_host, set_remote_host)

    def get_remote_port(self) -> int:
        """Destination UDP port."""
        return self._get(S.REMOTE_PORT, _int)

    def set_remote_port(self, value: int) -> None:
        self._set(S.REMOTE_PORT, value)

    remote_port = property(get_remote_port, set_remote_port)

    def get_send_interface(self) -> str:
        """Interface for outgoing multicast; "" = the routing table's choice."""
        return self._get(S.SEND_INTERFACE, str)

    def set_send_interface(self, value: str) -> None:
        """Applied at once when active ("" while active takes effect on the next
        activation: Linux cannot un-set the outgoing interface of an open socket)."""
        self._set(S.SEND_INTERFACE, value)

    send_interface = property(get_send_interface, set_send_interface)

    def get_time_to_live(self) -> int:
        """Multicast TTL / hop limit (default 7, the vendor's; 0 = this host only)."""
        return self._get(S.TIME_TO_LIVE, _int)

    def set_time_to_live(self, value: int) -> None:
        """Raises: MCastError 121 if outside 0-255."""
        self._set(S.TIME_TO_LIVE, value)

    time_to_live = property(get_time_to_live, set_time_to_live)

    # ================================================================== events

    def get_on_data_in(self) -> DataInHandler | None:
        return self._s.on_data_in

    def set_on_data_in(self, handler: DataInHandler | None) -> None:
        self._s.on_data_in = handler

    on_data_in = property(get_on_data_in, set_on_data_in)

    def get_on_error(self) -> ErrorHandler | None:
        return self._s.on_error

    def set_on_error(self, handler: ErrorHandler | None) -> None:
        self._s.on_error = handler

    on_error = property(get_on_error, set_on_error)

    def get_on_ready_to_send(self) -> ReadyToSendHandler | None:
        return self._s.on_ready_to_send

    def set_on_ready_to_send(self, handler: ReadyToSendHandler | None) -> None:
        self._s.on_ready_to_send = handler

    on_ready_to_send = property(get_on_ready_to_send, set_on_ready_to_send)

    # ================================================================== extensions

    @property
    def groups(self) -> tuple[str, ...]:
        """mcastkit extension: every group assigned and not left, in order."""
        return tuple(self._s.groups)

    @property
    def memberships(self) -> tuple[str, ...]:
        """mcastkit extension: the kernel memberships held, as ``"GROUP on IFNAME"``."""
        core = self._s.core
        return () if core is None else tuple(f"{m.group} on {m.ifname}"
                                             for m in core.memberships)

    @property
    def stats(self) -> MCastStats:
        """mcastkit extension: where every datagram went (delivered, discarded at
        deactivation, dropped by the kernel, filtered), over every activation."""
        return self._s.stats()

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
            return row.kind.fmt(self._s.read(row))
        if row.read_only:
            raise component_error(_codes.READ_ONLY_SETTING, f"{row.name} can only be read.")
        value: Value = row.kind.parse(row.name, text)
        self._s.set(row, value)
        return ""

    def do_events(self) -> None:
        """Process pending events once: wait up to SelectWaitMillis for the socket, fire
        ``on_ready_to_send`` if a would-block cleared, deliver waiting datagrams through
        ``on_data_in`` (unless ``accept_data`` is False), report kernel drops (10055),
        then return. Never raises because of a handler: handler errors go to
        ``on_error``. Calls from inside a handler return at once (not re-entrant)."""
        _pump.do_events(self._s)

    def reset(self) -> None:
        """Deactivate (leaving every group) and restore every property and setting to its
        default. Event handlers stay attached."""
        self._s.close()
        self._s.defaults()

    def send(self, text: bytes | str) -> None:
        """Send one datagram to ``remote_host:remote_port`` (or the connected peer with
        UseConnection). ``str`` is encoded with CodePage (UTF-8 by default).

        Raises:
            MCastError: 109 not active, 114 no remote address/port, 10035 would block
                (``on_ready_to_send`` fires once sending is possible again; nothing was
                sent), 10040 too long, or another socket error.
        """
        s = self._s
        core = s.core
        if core is None:
            raise component_error(_codes.MUST_BE_ACTIVE, "Set active = True before sending.")
        data = s.encode(text)
        try:
            if s.value(S.USE_CONNECTION):
                core.send(data)
            else:
                host, port = s.destination()
                s.sender(core)(data, host, port)
        except WouldBlockError as exc:
            s.want_write = True
            raise from_core(exc) from exc
        except (McastError, OSError) as exc:
            raise from_core(exc) from exc
