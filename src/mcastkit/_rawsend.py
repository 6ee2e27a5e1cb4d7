"""The raw send path: whole Ethernet frames carrying UDP, sent over ``AF_PACKET``.

Owns: :class:`RawSender`, which builds every byte of a frame with :mod:`._frames` (source
MAC, the multicast / broadcast destination MAC, the IPv4 or IPv6 header with TTL / hop
limit, DSCP, DF and any source address, the UDP checksum) and hands it to the driver of
one Ethernet-like interface; and :class:`RawDatagram`, one item of a batch. It is what
``MCast.SourceMacAddress`` and a source-preserving relay send through.
Differs from the normal path (docs/raw-send.md): no copy is looped back to this host's
own sockets; routing, the neighbour table, netfilter OUTPUT and the IP_MULTICAST_* socket
options are bypassed; the interface must be Ethernet-like (``lo`` and tun/tunnel devices
are refused); nothing is fragmented (a packet over the MTU is refused); it needs
CAP_NET_RAW.
Must not: receive (the socket is bound with protocol 0, so no frame is queued to it);
choose an interface itself; send anything when the input is bad or the privilege is
missing.
"""

from __future__ import annotations

import errno
import fcntl
import random
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from . import _platform as plat
from ._addr import IPAddress
from ._errors import (
    ClosedError,
    DatagramTooLargeError,
    ErrOp,
    ErrorCode,
    InterfaceError,
    McastError,
    McastOSError,
    McastValueError,
    UnsupportedError,
)
from ._frames import build_udp_frame, check_range
from ._interfaces import Interface, resolve_interface
from ._linklayer import ETH_HEADER, as_ip, format_mac, mac_bytes
from ._translate import translate

__all__ = ["RawDatagram", "RawSender"]

_AF_PACKET: Final = plat.AF_PACKET  # the platform table's: None where there is none
_HWADDR_REQ: Final = plat.SIOCGIFHWADDR


@dataclass(frozen=True, slots=True)
class RawDatagram:
    """One datagram of :meth:`RawSender.send_batch`; ``None`` fields take the sender's
    defaults (see :meth:`RawSender.send` for each field)."""

    payload: bytes
    group: IPAddress | str
    port: int
    sport: int
    src: IPAddress | str | None = None
    dst_mac: bytes | str | None = None
    ttl: int | None = None
    dscp: int | None = None
    ecn: int = 0


def _hw_address(name: str) -> tuple[int, bytes]:
    """(ARPHRD link type, hardware address) of ``name`` via SIOCGIFHWADDR."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with translate(ErrOp.RAW_OPEN, interface=name):
            out = fcntl.ioctl(s.fileno(), _HWADDR_REQ, struct.pack("16s16x", name.encode()))
    finally:
        s.close()
    family = int(struct.unpack_from("=H", out, 16)[0])
    return family, bytes(out[18:24])


class RawSender:
    """Sends UDP datagrams as whole Ethernet frames out of one interface (AF_PACKET).

    Every header field is built here, so a datagram can carry any source MAC and any
    source address (a relay preserving the original sender), with the TTL / hop limit,
    DSCP and DF chosen per datagram. Multicast groups go to their mapped MAC, the IPv4
    limited broadcast 255.255.255.255 to ff:ff:ff:ff:ff:ff; for a directed broadcast
    (e.g. 198.18.9.255) pass ``dst_mac=BROADCAST_MAC``.

    Args:
        interface: the interface (name, index, local address or :class:`Interface`).
            Must be Ethernet-like (Ethernet, veth, bridge, VLAN, macvlan, bond...).
        src_mac: source MAC (6 bytes or ``"aa:bb:cc:dd:ee:ff"``); default: the
            interface's own.
        ttl: default TTL / hop limit, 0..255 (default 1, as the normal path).
        dscp: default DSCP, 0..63.
        dont_fragment: set DF on IPv4 packets (IPv6 routers never fragment anyway).

    Raises:
        McastValueError: a malformed MAC or field (nothing opened).
        InterfaceNotFoundError: no such interface; the message lists those there are.
        InterfaceError: ``lo``, a tun or tunnel device, or an interface that is down.
        McastOSError: ``code`` PERMISSION: the process lacks CAP_NET_RAW.
        UnsupportedError: not Linux (no AF_PACKET).
    """

    def __init__(self, interface: str | int | IPAddress | Interface, *,
                 src_mac: bytes | str | None = None, ttl: int = 1, dscp: int = 0,
                 dont_fragment: bool = False) -> None:
        mac = mac_bytes(src_mac, "src_mac", source=True) if src_mac is not None else None
        check_range("ttl", ttl, 0, 255)
        check_range("dscp", dscp, 0, 63)
        if _AF_PACKET is None:
            raise UnsupportedError("the raw send path needs AF_PACKET, which only Linux has; "
                                   "use the normal send path (no chosen source MAC, no "
                                   "preserved source address)")
        iface = resolve_interface(interface)
        hatype, own_mac = _hw_address(iface.name)
        if hatype != plat.ARPHRD_ETHER:
            kind = plat.LINK_TYPES.get(hatype, f"link type {hatype}")
            raise InterfaceError(
                errno.EOPNOTSUPP,
                f"{iface.name} is not Ethernet-like ({kind}): the raw send path builds "
                "Ethernet frames, so it needs an Ethernet, veth, bridge or VLAN interface"
                + ("; a raw frame on lo re-enters this host, which drops it as a martian, "
                   "while the normal send path already loops datagrams back on lo"
                   if hatype == plat.ARPHRD_LOOPBACK
                   else "; use the normal send path on this interface"),
                code=ErrorCode.UNSUPPORTED, interface=iface.name)
        if iface.flags is not None and not iface.flags.up:
            raise InterfaceError(errno.ENETDOWN, f"{iface.name} is down; bring it up "
                                 f"(ip link set {iface.name} up)", interface=iface.name)
        try:
            sock = socket.socket(_AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise McastOSError(
                errno.EPERM,
                f"raw send on {iface.name}: opening an AF_PACKET socket needs CAP_NET_RAW; "
                "run as root or grant the capability (setcap cap_net_raw+ep on the "
                "interpreter), or use the normal send path (no chosen source MAC, no "
                "preserved source address); nothing was sent",
                code=ErrorCode.PERMISSION, op="raw_open", interface=iface.name) from None
        try:
            with translate(ErrOp.RAW_OPEN, interface=iface.name):
                sock.bind((iface.name, 0))  # protocol 0: send only, nothing is queued to us
        except BaseException:
            sock.close()
            raise
        self._sock: socket.socket | None = sock
        self._iface = iface
        self._src_mac = mac if mac is not None else own_mac
        self._ttl, self._dscp, self._df = ttl, dscp, dont_fragment
        self._next_ident = random.randrange(0x10000)  # IPv4 identification, per packet
        self.frames_sent = 0
        # default source per (IP version, link scope), from the interface's addresses as
        # they were when first needed (pass src= to follow an address change)
        self._sources: dict[tuple[int, bool], IPAddress] = {}

    # ------------------------------------------------------------------ properties

    @property
    def interface(self) -> Interface:
        """The interface frames leave through (as resolved when the sender was made)."""
        return self._iface

    @property
    def src_mac(self) -> str:
        """The source MAC every frame carries, as ``aa:bb:cc:dd:ee:ff``."""
        return format_mac(self._src_mac)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._sock is None

    # ------------------------------------------------------------------ building

    def _pick(self, group: IPAddress) -> IPAddress | None:
        if group.version == 6 and group.packed[1] & 0x0F <= 2:  # link scope: link-local
            lls = [a for a in self._iface.addresses if a.version == 6 and a.is_link_local]
            if lls:
                return lls[0]
        return self._iface.address(group.version)

    def _source(self, group: IPAddress) -> IPAddress:
        key = (group.version, group.version == 6 and group.packed[1] & 0x0F <= 2)
        addr = self._sources.get(key)
        if addr is not None:
            return addr
        addr = self._pick(group)
        if addr is None:  # addresses come and go: look again before giving up
            self._iface = resolve_interface(self._iface.index)
            addr = self._pick(group)
        if addr is None:
            raise McastValueError(
                f"{self._iface.name} has no IPv{group.version} address to send from; add "
                "one or pass src=", code=ErrorCode.BAD_ADDRESS, interface=self._iface.name)
        self._sources[key] = addr
        return addr

    def _build(self, d: RawDatagram, ident: int) -> bytes:
        group = as_ip(d.group, "group")
        src = as_ip(d.src, "src") if d.src is not None else self._source(group)
        dst_mac = mac_bytes(d.dst_mac, "dst_mac") if d.dst_mac is not None else None
        frame = build_udp_frame(
            self._src_mac, src, group, d.sport, d.port, d.payload, dst_mac=dst_mac,
            ttl=self._ttl if d.ttl is None else d.ttl,
            dscp=self._dscp if d.dscp is None else d.dscp, ecn=d.ecn,
            dont_fragment=self._df and group.version == 4,
            ident=ident if group.version == 4 else 0)
        mtu = self._iface.mtu
        if mtu is not None and len(frame) - ETH_HEADER.size > mtu:
            room = mtu - (len(frame) - ETH_HEADER.size - len(d.payload))
            raise DatagramTooLargeError(
                errno.EMSGSIZE,
                f"send {len(d.payload)} bytes to {group} on {self._iface.name}: the IP "
                f"packet would be {len(frame) - ETH_HEADER.size} bytes, over the MTU of "
                f"{mtu}, and the raw path never fragments; send at most {room} bytes",
                op="send", group=str(group), interface=self._iface.name)
        return frame

    def build(self, datagram: RawDatagram) -> bytes:
        """The frame :meth:`send_batch` would send for ``datagram`` (nothing is sent).

        Raises:
            McastValueError / DatagramTooLargeError: as :meth:`send`.
        """
        return self._build(datagram, 0)

    # ------------------------------------------------------------------ sending

    def _live(self) -> socket.socket:
        if self._sock is None:
            raise ClosedError("this RawSender was closed; create a new one")
        return self._sock

    def send(self, payload: bytes, group: IPAddress | str, port: int, *, sport: int,
             src: IPAddress | str | None = None, dst_mac: bytes | str | None = None,
             ttl: int | None = None, dscp: int | None = None, ecn: int = 0) -> int:
        """Send one UDP datagram as one frame.

        Args:
            payload: the UDP payload.
            group: destination: a multicast group, 255.255.255.255, or (with ``dst_mac``)
                any address such as a directed broadcast.
            port: UDP destination port.
            sport: UDP source port (no socket is bound, so nothing picks one).
            src: source address; default the interface's address of the group's IP
                version (link-local for a link-scope IPv6 group such as ff02::1, else
                global before link-local). Any address is accepted.
            dst_mac: destination MAC; default the group's multicast MAC, or
                ff:ff:ff:ff:ff:ff for 255.255.255.255.
            ttl: TTL / hop limit; default the sender's. dscp: DSCP; default the sender's.
            ecn: ECN bits, 0..3.

        Returns:
            The frame's length in bytes.

        Raises:
            McastValueError: a bad field, address, MAC, or an IPv6 broadcast (nothing sent).
            DatagramTooLargeError: the packet would exceed the interface MTU (nothing sent).
            SendError: the kernel refused (interface gone or down, ENOBUFS...).
            ClosedError: the sender was closed.
        """
        return self.send_batch([RawDatagram(payload, group, port, sport, src, dst_mac, ttl,
                                            dscp, ecn)])

    def send_batch(self, datagrams: Iterable[RawDatagram]) -> int:
        """Send several datagrams in order, one frame each.

        Every frame is built and checked before the first is sent, so bad input in any
        item sends nothing and leaves the sender unchanged.

        Returns:
            The total number of frame bytes sent.

        Raises:
            As :meth:`send`. A kernel error part-way through carries ``datagrams_sent``
            (how many frames of this batch went out before it).
        """
        sock = self._live()
        items = list(datagrams)
        first = self._next_ident
        frames = [self._build(d, (first + i) & 0xFFFF) for i, d in enumerate(items)]
        self._next_ident = (first + len(items)) & 0xFFFF
        total = 0
        for i, (d, frame) in enumerate(zip(items, frames, strict=True)):
            try:
                with translate(ErrOp.SEND, group=str(d.group), interface=self._iface.name):
                    total += sock.send(frame)
            except McastError as exc:
                exc.datagrams_sent = i
                raise
            self.frames_sent += 1
        return total

    def send_frame(self, frame: bytes) -> int:
        """Send one frame built elsewhere (e.g. with :func:`._frames.build_udp_frame`)
        as is. Only its length is checked against the MTU.

        Raises:
            DatagramTooLargeError: over the MTU. SendError / ClosedError: as :meth:`send`.
        """
        sock = self._live()
        mtu = self._iface.mtu
        if mtu is not None and len(frame) - ETH_HEADER.size > mtu:
            raise DatagramTooLargeError(
                errno.EMSGSIZE, f"a frame of {len(frame)} bytes is over the MTU of {mtu} "
                f"(+{ETH_HEADER.size} header bytes) of {self._iface.name}; the raw path "
                "never fragments", op="send", interface=self._iface.name)
        with translate(ErrOp.SEND, interface=self._iface.name):
            n = sock.send(frame)
        self.frames_sent += 1
        return n

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> RawSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else f"{self.frames_sent} frames sent"
        return f"<RawSender {self._iface} src_mac={self.src_mac} {state}>"
