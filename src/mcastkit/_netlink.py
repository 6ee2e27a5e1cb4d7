"""Link and address change notifications from the kernel (rtnetlink), as typed events.

Owns: the pure decoder of rtnetlink messages (``RTM_NEWLINK``/``DELLINK``/``NEWADDR``/
``DELADDR``) into :class:`LinkEvent` / :class:`AddrEvent` / :class:`Overrun`,
:class:`NetlinkWatcher`, a non-blocking ``NETLINK_ROUTE`` socket subscribed to
``RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`` that an event loop polls, and
:func:`dump_addresses`, a one-shot address query on a short-lived socket (filtered by
the kernel to one interface, so its cost does not grow with the number of interfaces),
and :func:`route_oif`, the kernel's answer to "which device would a datagram to this
address leave through" (``RTM_GETROUTE`` → ``RTA_OIF``).
The decoder never raises, whatever bytes it is given (property-tested): malformed
messages are skipped, a length that runs past the end stops the walk.
Must not: know about memberships, asyncio or multicast sockets (field notes B1-B3 are
handled by :mod:`mcastkit.aio`, which reacts to these events), or keep state between
queries.

Platform notes: Linux only. Elsewhere :class:`NetlinkWatcher` raises
:class:`~mcastkit.UnsupportedError`; the parser itself is portable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Final, Literal

from ._errors import ErrorCode, McastOSError, UnsupportedError

__all__ = [
    "DEFAULT_GROUPS",
    "AddrEvent",
    "LinkEvent",
    "NetlinkEvent",
    "NetlinkWatcher",
    "Overrun",
    "dump_addresses",
    "parse_messages",
    "route_oif",
]

# Message types and multicast groups (include/uapi/linux/rtnetlink.h, netlink.h).
NLMSG_NOOP: Final = 1
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLMSG_OVERRUN: Final = 4
RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
RTM_GETLINK: Final = 18
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
RTM_GETADDR: Final = 22
RTM_NEWROUTE: Final = 24
RTM_GETROUTE: Final = 26
RTA_DST: Final = 1
RTA_OIF: Final = 4
SOL_NETLINK: Final = 270
NETLINK_GET_STRICT_CHK: Final = 12
RTMGRP_LINK: Final = 0x1
RTMGRP_IPV4_IFADDR: Final = 0x10
RTMGRP_IPV6_IFADDR: Final = 0x100
DEFAULT_GROUPS: Final = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
NLM_F_REQUEST: Final = 0x1
NLM_F_DUMP: Final = 0x300
NLM_F_DUMP_INTR: Final = 0x10
_DUMP_TRIES: Final = 3
NETLINK_ROUTE: Final = 0

IFLA_IFNAME: Final = 3
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
IFA_LABEL: Final = 3
IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40

_NLMSGHDR: Final = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG: Final = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_IFADDRMSG: Final = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTATTR: Final = struct.Struct("=HH")  # len, type
_RTMSG: Final = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table,
#                                             protocol, scope, type, flags
_RECV_BYTES: Final = 65536
_MAX_MESSAGES: Final = 4096  # per buffer: a bound on work, whatever the input claims


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEvent:
    """An interface appeared, changed (``kind="new"``: RTM_NEWLINK) or was deleted.

    Attributes:
        kind: ``"new"`` (created or changed) or ``"del"`` (deleted).
        index: the interface index (a re-created interface gets a new one).
        name: the interface name, or None when the message carried none.
        flags: the ``IFF_*`` flags.
    """

    kind: Literal["new", "del"]
    index: int
    name: str | None
    flags: int

    @property
    def up(self) -> bool:
        """Administratively up (IFF_UP)."""
        return bool(self.flags & IFF_UP)

    @property
    def usable(self) -> bool:
        """Up and with carrier (IFF_UP and IFF_RUNNING): traffic can flow."""
        return bool(self.flags & IFF_UP) and bool(self.flags & IFF_RUNNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddrEvent:
    """An address was added to (``"new"``) or removed from (``"del"``) an interface."""

    kind: Literal["new", "del"]
    family: int  # 4 or 6
    index: int
    prefixlen: int
    address: str | None
    label: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrun:
    """The kernel dropped notifications (ENOBUFS on the netlink socket): state must be
    re-read, because some events were lost."""


NetlinkEvent = LinkEvent | AddrEvent | Overrun


def _attrs(buf: bytes, start: int, end: int) -> dict[int, bytes]:
    """Decode the rtattr list in ``buf[start:end]``; stops at the first malformed one."""
    out: dict[int, bytes] = {}
    pos = start
    while pos + _RTATTR.size <= end:
        alen, atype = _RTATTR.unpack_from(buf, pos)
        if alen < _RTATTR.size or pos + alen > end:
            break
        out.setdefault(atype & 0x3FFF, buf[pos + _RTATTR.size:pos + alen])  # strip NLA_F_*
        pos += (alen + 3) & ~3
    return out


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    name = raw.split(b"\0", 1)[0]
    return name.decode("utf-8", "replace") if name else None


def _ip(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return None


def _link(mtype: int, buf: bytes, body: int, end: int) -> LinkEvent | None:
    if body + _IFINFOMSG.size > end:
        return None
    _fam, _type, index, flags, _change = _IFINFOMSG.unpack_from(buf, body)
    if index <= 0:
        return None
    attrs = _attrs(buf, body + _IFINFOMSG.size, end)
    return LinkEvent(kind="new" if mtype == RTM_NEWLINK else "del", index=index,
                     name=_text(attrs.get(IFLA_IFNAME)), flags=flags)


def _addr(mtype: int, buf: bytes, body: int, end: int) -> AddrEvent | None:
    if body + _IFADDRMSG.size > end:
        return None
    fam, prefixlen, _flags, _scope, index = _IFADDRMSG.unpack_from(buf, body)
    if fam not in (socket.AF_INET, socket.AF_INET6) or index <= 0:
        return None
    attrs = _attrs(buf, body + _IFADDRMSG.size, end)
    address = _ip(attrs.get(IFA_LOCAL)) or _ip(attrs.get(IFA_ADDRESS))
    return AddrEvent(kind="new" if mtype == RTM_NEWADDR else "del",
                     family=4 if fam == socket.AF_INET else 6, index=index,
                     prefixlen=prefixlen, address=address, label=_text(attrs.get(IFA_LABEL)))


def parse_messages(buf: bytes | bytearray | memoryview) -> list[NetlinkEvent]:
    """Decode one netlink datagram (possibly several messages) into events.

    Only link and address messages become events; ``NLMSG_OVERRUN`` becomes
    :class:`Overrun`; everything else (``NLMSG_DONE``, errors, other types) is skipped.

    Never raises: a truncated or lying message ends the walk, a malformed body is
    skipped. At most 4096 messages are decoded per buffer.

    Args:
        buf: the bytes of one ``recv()`` on a ``NETLINK_ROUTE`` socket.

    Returns:
        The events, in message order.
    """
    return _decode(buf)[0]


def _decode(buf: bytes | bytearray | memoryview
            ) -> tuple[list[NetlinkEvent], int | None, bool]:
    """:func:`parse_messages`, how the buffer ends a dump: None (it does not), 0
    (NLMSG_DONE) or the errno of an NLMSG_ERROR, and whether the kernel marked a message
    NLM_F_DUMP_INTR (the table changed during the dump: its answer may be inconsistent)."""
    data = bytes(buf)
    events: list[NetlinkEvent] = []
    pos = 0
    end = len(data)
    count = 0
    done: int | None = None
    interrupted = False
    while pos + _NLMSGHDR.size <= end and count < _MAX_MESSAGES:
        count += 1
        mlen, mtype, mflags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if mlen < _NLMSGHDR.size or pos + mlen > end:
            break
        interrupted = interrupted or bool(mflags & NLM_F_DUMP_INTR)
        if mtype == NLMSG_DONE:
            done = 0
        elif mtype == NLMSG_ERROR and mlen >= _NLMSGHDR.size + 4:
            done = -struct.unpack_from("=i", data, pos + _NLMSGHDR.size)[0]
        body, mend = pos + _NLMSGHDR.size, pos + mlen
        ev: NetlinkEvent | None = None
        if mtype in (RTM_NEWLINK, RTM_DELLINK):
            ev = _link(mtype, data, body, mend)
        elif mtype in (RTM_NEWADDR, RTM_DELADDR):
            ev = _addr(mtype, data, body, mend)
        elif mtype == NLMSG_OVERRUN:
            ev = Overrun()
        if ev is not None:
            events.append(ev)
        pos += (mlen + 3) & ~3
    return events, done, interrupted


def link_dump_request(seq: int = 1) -> bytes:
    """The bytes of an ``RTM_GETLINK`` dump request (answered with RTM_NEWLINK messages)."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def dump_addresses(index: int = 0) -> list[AddrEvent]:
    """The addresses of interface ``index`` (0: of every interface), in the kernel's order
    (IPv4 first), as ``"new"`` :class:`AddrEvent` s, from one ``RTM_GETADDR`` dump on a
    short-lived socket. With an index the kernel filters (strict checking, Linux 4.20+)
    so the cost does not grow with the number of interfaces; older kernels answer with
    everything and the filter is applied here. A dump the kernel marks as interrupted
    (addresses changed meanwhile) is made again, up to three times in all.

    Raises:
        UnsupportedError: no netlink on this platform.
        OSError: the socket could not be made, or the kernel refused the dump.
    """
    fam = getattr(socket, "AF_NETLINK", None)
    if fam is None:
        raise UnsupportedError("address queries need Linux rtnetlink (AF_NETLINK)",
                               code=ErrorCode.UNSUPPORTED)
    body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, index)
    out: list[AddrEvent] = []
    with socket.socket(fam, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as sock:
        if index:
            with contextlib.suppress(OSError):  # before 4.20: unfiltered, filtered below
                sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        for seq in range(1, _DUMP_TRIES + 1):
            sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETADDR,
                                     NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            out.clear()
            done: int | None = None
            torn = False
            while done is None:
                events, done, intr = _decode(sock.recv(_RECV_BYTES))
                torn = torn or intr
                out.extend(ev for ev in events if isinstance(ev, AddrEvent)
                           and (not index or ev.index == index))
            if done or not torn:
                break
    if done:
        raise OSError(done, f"rtnetlink address dump: {os.strerror(done)}")
    return out


def route_request(dst: bytes, seq: int = 1) -> bytes:
    """The bytes of an ``RTM_GETROUTE`` request for the packed address ``dst`` (4 or 16
    bytes): the kernel answers with the one route a datagram to it would take."""
    fam = socket.AF_INET if len(dst) == 4 else socket.AF_INET6
    attr = _RTATTR.pack(_RTATTR.size + len(dst), RTA_DST) + dst
    body = _RTMSG.pack(fam, len(dst) * 8, 0, 0, 0, 0, 0, 0, 0) + attr
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETROUTE, NLM_F_REQUEST,
                          seq, 0) + body


def parse_route_oif(buf: bytes | bytearray | memoryview) -> int | None:
    """The ``RTA_OIF`` of the first ``RTM_NEWROUTE`` in ``buf`` (None: no such message,
    no device named, or malformed bytes). Raises OSError for an NLMSG_ERROR answer (no
    route: ENETUNREACH). Never raises anything else, whatever the bytes."""
    data = bytes(buf)
    pos, end = 0, len(data)
    while pos + _NLMSGHDR.size <= end:
        mlen, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, pos)
        if mlen < _NLMSGHDR.size or pos + mlen > end:
            return None
        body = pos + _NLMSGHDR.size
        if mtype == NLMSG_ERROR and mlen >= _NLMSGHDR.size + 4:
            err = -struct.unpack_from("=i", data, body)[0]
            if err > 0:
                raise OSError(err, f"rtnetlink route lookup: {os.strerror(err)}")
        elif mtype == RTM_NEWROUTE and body + _RTMSG.size <= pos + mlen:
            raw = _attrs(data, body + _RTMSG.size, pos + mlen).get(RTA_OIF)
            if raw is not None and len(raw) >= 4:
                oif = int(struct.unpack_from("=i", raw)[0])
                return oif if oif > 0 else None
            return None
        pos += (mlen + 3) & ~3
    return None


def route_oif(dst: str) -> int | None:
    """The index of the device the kernel's route for ``dst`` (an IPv4 or IPv6 address,
    multicast groups included) names, from one ``RTM_GETROUTE`` on a short-lived socket.
    A route without a source address (``224.0.0.0/4 dev eth1`` on a device without
    IPv4 address) is found too. None when the route names no device.

    Raises:
        UnsupportedError: no netlink on this platform.
        OSError: no route (ENETUNREACH), or the socket could not be made.
        ValueError: ``dst`` is not an address.
    """
    fam = getattr(socket, "AF_NETLINK", None)
    if fam is None:
        raise UnsupportedError("route lookups need Linux rtnetlink (AF_NETLINK)",
                               code=ErrorCode.UNSUPPORTED)
    packed = socket.inet_pton(socket.AF_INET6 if ":" in dst else socket.AF_INET, dst)
    with socket.socket(fam, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as sock:
        sock.send(route_request(packed))
        return parse_route_oif(sock.recv(_RECV_BYTES))


class NetlinkWatcher:
    """A non-blocking rtnetlink socket in the calling thread's network namespace.

    Poll :meth:`fileno` for readability, then call :meth:`read`. It never blocks.

    Args:
        groups: the ``RTMGRP_*`` bit mask to subscribe to (default: links and IPv4/IPv6
            addresses).

    Raises:
        UnsupportedError: no netlink on this platform.
        McastOSError: the kernel refused the socket (the message names the errno).
    """

    def __init__(self, groups: int = DEFAULT_GROUPS) -> None:
        fam = getattr(socket, "AF_NETLINK", None)
        if fam is None:
            raise UnsupportedError("interface watching needs Linux rtnetlink (AF_NETLINK)",
                                   code=ErrorCode.UNSUPPORTED)
        try:
            sock = socket.socket(fam, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                                 | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        except OSError as exc:
            raise McastOSError(exc.errno or 0, f"open rtnetlink socket: {exc.strerror}; "
                               "interface watching is not available here",
                               op="netlink") from exc
        try:
            sock.bind((0, groups))
        except OSError as exc:
            sock.close()
            raise McastOSError(exc.errno or 0, f"subscribe to rtnetlink groups {groups:#x}: "
                               f"{exc.strerror}", op="netlink") from exc
        self._sock: socket.socket | None = sock
        self._seq = 0
        self.overruns = 0

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self._sock.fileno() if self._sock is not None else -1

    @property
    def closed(self) -> bool:
        return self._sock is None

    def request_links(self) -> None:
        """Ask for every current link; the answers arrive through :meth:`read` as ``"new"``
        :class:`LinkEvent` s (use them to learn the initial state). Never blocks: if the
        request cannot be queued it is dropped."""
        if self._sock is None:
            return
        self._seq += 1
        with contextlib.suppress(OSError):  # best effort: changes are still reported
            self._sock.sendto(link_dump_request(self._seq), (0, 0))

    def read(self, max_datagrams: int = 64) -> list[NetlinkEvent]:
        """Take what is queued, without waiting: up to ``max_datagrams`` netlink
        datagrams, decoded. A kernel overrun (ENOBUFS) is reported as :class:`Overrun`."""
        events: list[NetlinkEvent] = []
        sock = self._sock
        if sock is None:
            return events
        for _ in range(max_datagrams):
            try:
                data = sock.recv(_RECV_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    events.append(Overrun())
                    continue
                break
            if not data:
                break
            events.extend(parse_messages(data))
        return events

    def close(self) -> None:
        """Close the socket. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
