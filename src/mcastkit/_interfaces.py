"""Network interfaces: the :class:`Interface` value, listing and lookup.

Owns: resolving a name, index or local address to one interface (always ending in an
index, because joins and leaves go by index only: field notes B4), listing interfaces
with flags and addresses, and finding the interface the routing table would use.
Everything is read in the calling thread's network namespace (netlink and ioctl on
sockets, never ``/sys``, whose view belongs to whoever mounted it).
Must not: keep caches; interfaces come and go (B3), so every call asks the kernel.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Final

import ifaddr

from ._addr import IPAddress, parse_interface_spec
from ._errors import ErrorCode, InterfaceError, InterfaceNotFoundError

__all__ = [
    "Interface",
    "InterfaceFlags",
    "list_interfaces",
    "resolve_interface",
    "route_interface",
]

_SIOCGIFFLAGS: Final = 0x8913
_SIOCGIFMTU: Final = 0x8921
IFF_UP: Final = 0x1
IFF_LOOPBACK: Final = 0x8
IFF_RUNNING: Final = 0x40
IFF_MULTICAST: Final = 0x1000


@dataclass(frozen=True, slots=True)
class InterfaceFlags:
    up: bool
    running: bool
    loopback: bool
    multicast: bool

    @classmethod
    def from_bits(cls, bits: int) -> InterfaceFlags:
        return cls(
            up=bool(bits & IFF_UP),
            running=bool(bits & IFF_RUNNING),
            loopback=bool(bits & IFF_LOOPBACK),
            multicast=bool(bits & IFF_MULTICAST),
        )

    def __str__(self) -> str:
        names = [n for n, on in (("UP", self.up), ("RUNNING", self.running),
                                 ("LOOPBACK", self.loopback), ("MULTICAST", self.multicast)) if on]
        return ",".join(names) or "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Interface:
    """A network interface as the kernel saw it when it was looked up."""

    index: int
    name: str
    flags: InterfaceFlags | None = None
    mtu: int | None = None
    addresses: tuple[IPAddress, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}(#{self.index})"

    def address(self, version: int) -> IPAddress | None:
        """The first address of that IP version (link-local last for IPv6)."""
        cands = [a for a in self.addresses if a.version == version]
        cands.sort(key=lambda a: a.is_link_local)
        return cands[0] if cands else None


def _ifreq_ioctl(name: str, request: int) -> int | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        buf = struct.pack("16s16x", name.encode()[:15])
        try:
            out = fcntl.ioctl(s.fileno(), request, buf)
        except OSError:
            return None
        if request == _SIOCGIFFLAGS:
            return int(struct.unpack_from("=H", out, 16)[0])
        return int(struct.unpack_from("=i", out, 16)[0])
    finally:
        s.close()


def _addresses_by_name() -> dict[str, tuple[IPAddress, ...]]:
    out: dict[str, list[IPAddress]] = {}
    for ad in ifaddr.get_adapters():
        for ip in ad.ips:
            raw = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                out.setdefault(ad.name, []).append(ipaddress.ip_address(raw))
            except ValueError:
                continue
    return {k: tuple(v) for k, v in out.items()}


def _describe(index: int, name: str, addrs: dict[str, tuple[IPAddress, ...]] | None) -> Interface:
    bits = _ifreq_ioctl(name, _SIOCGIFFLAGS)
    return Interface(
        index=index,
        name=name,
        flags=InterfaceFlags.from_bits(bits) if bits is not None else None,
        mtu=_ifreq_ioctl(name, _SIOCGIFMTU),
        addresses=(addrs if addrs is not None else _addresses_by_name()).get(name, ()),
    )


def list_interfaces() -> list[Interface]:
    """All interfaces of the current network namespace, by index."""
    addrs = _addresses_by_name()
    return [_describe(i, n, addrs) for i, n in sorted(socket.if_nameindex())]


def _known() -> str:
    names = [n for _, n in sorted(socket.if_nameindex())]
    return ", ".join(names) if names else "none"


def resolve_interface(spec: str | int | IPAddress | Interface) -> Interface:
    """Resolve a name (``"eth0"``), index (``2``, ``"2"``) or local address to an Interface.

    Raises:
        InterfaceNotFoundError: nothing matches; the message lists the interfaces there are.
    """
    if isinstance(spec, Interface):
        return spec
    kind = parse_interface_spec(spec) if isinstance(spec, str | int) else spec
    if isinstance(kind, int):
        try:
            name = socket.if_indextoname(kind)
        except OSError:
            raise InterfaceNotFoundError(
                errno.ENODEV, f"no interface with index {kind}; interfaces here: {_known()}",
                interface=str(kind),
            ) from None
        return _describe(kind, name, None)
    if isinstance(kind, str):
        try:
            index = socket.if_nametoindex(kind)
        except OSError:
            raise InterfaceNotFoundError(
                errno.ENODEV, f"no interface named {kind!r}; interfaces here: {_known()}",
                interface=kind,
            ) from None
        return _describe(index, kind, None)
    addrs = _addresses_by_name()
    for index, name in sorted(socket.if_nameindex()):
        if kind in addrs.get(name, ()):
            return _describe(index, name, addrs)
    raise InterfaceNotFoundError(
        errno.EADDRNOTAVAIL,
        f"no interface has the address {kind}; give a local address, a name or an index "
        f"(interfaces here: {_known()})",
        interface=str(kind),
    )


def route_interface(group: IPAddress) -> Interface:
    """The interface the routing table would send ``group`` out of (a deterministic,
    reported choice instead of the kernel's hidden "any interface": field notes A10).

    Raises:
        InterfaceError: no route to the group (typical of containers); the message says to
            pass an interface.
    """
    fam = socket.AF_INET if group.version == 4 else socket.AF_INET6
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        try:
            s.connect((str(group), 9))
            local = s.getsockname()[0]
        except OSError as exc:
            raise InterfaceError(
                exc.errno or errno.ENETUNREACH,
                f"no route to {group}, so there is no default interface for it; pass "
                f"interface= (a name, index or address; interfaces here: {_known()})",
                code=ErrorCode.NO_ROUTE, group=str(group),
            ) from None
    finally:
        s.close()
    local_ip = ipaddress.ip_address(str(local).split("%")[0])
    try:
        return resolve_interface(local_ip)
    except InterfaceNotFoundError:
        raise InterfaceError(
            errno.ENETUNREACH,
            f"the route to {group} uses {local_ip}, which no interface owns; pass interface=",
            code=ErrorCode.NO_ROUTE, group=str(group),
        ) from None
