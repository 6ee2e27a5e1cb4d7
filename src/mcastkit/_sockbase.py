"""Shared state and small helpers of :class:`~mcastkit.MulticastSocket`.

Owns: the typed declarations of the socket's state (the one place that lists what a
MulticastSocket instance holds), the argument checks every part uses (``_check_range``,
``_family_of``, ``_check_family``, ``_group``, ``_source``), the cheap multicast test on
address text, and the :class:`RecvStats` counters.
Must not: make socket calls beyond reading the local address, set options, or hold any
behaviour of its own (joins, sends and receives live in ``_joins``, ``_sender``,
``_receiver``; options in ``_options``; the public class in ``_socket``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ._addr import Group, IPAddress, parse_ip
from ._errors import ClosedError, ErrorCode, McastValueError
from ._interfaces import Interface
from ._membership import MembershipBook

__all__ = ["InterfaceArg", "RecvStats"]

InterfaceArg = str | int | IPAddress | Interface


@dataclass(slots=True)
class RecvStats:
    """Counters of what this socket received, dropped or refused. Nothing is lost silently.

    ``kernel_drops`` is the last SO_RXQ_OVFL total the kernel reported (metadata on);
    :meth:`MulticastSocket.kernel_drops` reads the live counter, which also covers drops
    after the last queued datagram (field notes D1).
    """

    datagrams: int = 0
    bytes: int = 0
    truncated: int = 0
    kernel_drops: int = 0
    filtered: int = 0  # destination was a group this socket never joined (defence in depth)
    ttl_filtered: int = 0  # arrived with a TTL / hop limit below ``min_ttl`` (G4)
    send_retries: int = 0
    send_errors: int = 0


def _family_of(family: int | str) -> socket.AddressFamily:
    if family in (4, "4", "ipv4", socket.AF_INET):
        return socket.AF_INET
    if family in (6, "6", "ipv6", socket.AF_INET6):
        return socket.AF_INET6
    raise McastValueError(f"family {family!r}: use 4, 6, 'ipv4', 'ipv6' or socket.AF_INET(6)",
                          code=ErrorCode.WRONG_FAMILY)


def _check_range(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise McastValueError(f"{name} must be an integer {lo}-{hi}, got {value!r}",
                              code=ErrorCode.BAD_VALUE)
    return value


def _is_multicast_text(addr: str) -> bool:
    if ":" in addr:
        return addr[:2].lower() == "ff"
    head = addr.split(".", 1)[0]
    return head.isdigit() and 224 <= int(head) <= 239


class _SocketBase:
    """What every part of MulticastSocket shares: its state and the argument checks.

    The attributes are declared here and assigned in ``MulticastSocket.__init__``.
    """

    _sock: socket.socket
    _family: socket.AddressFamily
    _iface_spec: str | int | None  # how the default interface was named (B3 re-resolve)
    _iface: Interface | None  # the default interface, None: the route's choice
    _closed: bool
    _book: MembershipBook
    _recv_size: int
    _metadata: bool
    _timeout: float | None  # applied to the socket right now
    _default_timeout: float | None  # settimeout()'s
    _last_drops: int
    _min_ttl: int  # 0: no check
    stats: RecvStats

    @property
    def family(self) -> socket.AddressFamily:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return self._family

    @property
    def version(self) -> int:
        """4 or 6."""
        return 4 if self._family == socket.AF_INET else 6

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the socket is closed; open a new MulticastSocket")

    def _local_or_none(self) -> tuple[str, int] | None:
        try:
            a = self._sock.getsockname()
        except OSError:
            return None
        return (str(a[0]), int(a[1]))

    def _check_family(self, ip: IPAddress, what: str) -> None:
        if ip.version != self.version:
            raise McastValueError(
                f"{what} {ip} is IPv{ip.version} but this socket is IPv{self.version}; open "
                f"MulticastSocket({ip.version}) for it",
                code=ErrorCode.WRONG_FAMILY,
            )

    # ------------------------------------------------------------------ group / source args

    def _group(self, group: str | IPAddress | Group) -> Group:
        g = Group.parse(group)
        self._check_family(g.address, "group")
        return g

    def _source(self, source: str | IPAddress) -> IPAddress:
        s = parse_ip(source, what="source") if isinstance(source, str) else source
        self._check_family(s, "source")
        if s.is_multicast or s.is_unspecified:
            raise McastValueError(f"source {s} must be a unicast sender address",
                                  code=ErrorCode.BAD_ADDRESS)
        return s

