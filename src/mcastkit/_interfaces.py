"""Network interfaces: the :class:`Interface` value, listing and lookup.

Owns: resolving a name, index or local address to one interface (always ending in an
index, because joins and leaves go by index only: field notes B4), listing interfaces
with flags and addresses, finding the interface the routing table would use, checking
interface names before they reach the kernel (a NUL or an unencodable character is a
:class:`~mcastkit.McastValueError` naming it), and the typed error for running out of
descriptors (:func:`~mcastkit._errors.descriptor_limit_error`). Everything is read in the calling
thread's network namespace (netlink and ioctl on sockets, never ``/sys``, whose view
belongs to whoever mounted it). One lookup costs the same with 1 or 1000 interfaces:
it asks the kernel about that interface only (an index lookup, two ioctls and an
address dump the kernel filters to it); only an address lookup reads every address.
Must not: keep caches; interfaces come and go and are re-addressed (B3), so every call
asks the kernel and a result is never stale when it is returned (a cache would need a
netlink socket per namespace, kept open, which keeps a deleted namespace alive).
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from typing import Final

import ifaddr

from ._addr import IPAddress, parse_interface_spec
from ._errors import ErrorCode, InterfaceError, InterfaceNotFoundError, McastError, McastValueError
from ._netlink import dump_addresses, route_oif
from ._translate import descriptor_limit_error

__all__ = [
    "Interface",
    "InterfaceFlags",
    "check_interface_name",
    "is_broadcast_address",
    "list_interfaces",
    "resolve_interface",
    "route_interface",
]

_SIOCGIFFLAGS: Final = 0x8913
_SIOCGIFMTU: Final = 0x8921
_SIOCGIFNAME: Final = 0x8910
_SIOCGIFINDEX: Final = 0x8933
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
    """A network interface as the kernel saw it when it was looked up.

    Attributes:
        index: the kernel's interface index (joins and leaves go by it).
        name: the interface name (``"eth0"``).
        flags: up / running / loopback / multicast, or None where the kernel did not say.
        mtu: the MTU in bytes, or None where the kernel did not say.
        addresses: its IPv4 and IPv6 addresses.
    """

    index: int
    name: str
    flags: InterfaceFlags | None = None
    mtu: int | None = None
    addresses: tuple[IPAddress, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}(#{self.index})"

    def address(self, version: int) -> IPAddress | None:
        """The first address of that IP version (link-local last for IPv6).

        Args:
            version: 4 or 6.

        Returns:
            The address, or None when the interface has none of that version.
        """
        cands = [a for a in self.addresses if a.version == version]
        cands.sort(key=lambda a: a.is_link_local)
        return cands[0] if cands else None


def _out_of_descriptors(exc: OSError) -> None:
    """Raise the typed error if ``exc`` is EMFILE/ENFILE (else return: the caller decides)."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        raise descriptor_limit_error(exc, "look up a network interface") from exc


def _lookup_socket(family: int) -> _socket.socket:
    """A datagram socket for a lookup. The C-level type: it is not a socket of the
    caller's (nor does it go through a patched ``socket.socket``)."""
    try:
        return _socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        _out_of_descriptors(exc)
        raise


def check_interface_name(name: str) -> bytes:
    """``name`` as the kernel's bytes (a name listed by the kernel round-trips: bytes that
    are not UTF-8 come back as lone surrogates U+DC80-U+DCFF).

    Raises:
        McastValueError: a NUL, a character that cannot be encoded (another lone
            surrogate), or more than 15 bytes; the message shows the name escaped.
    """
    raw = _check_text(name)
    if len(raw) > 15:
        raise McastValueError(f"interface name {name!a} is {len(raw)} bytes long; "
                              f"the kernel allows 15; {_FIX}", code=ErrorCode.BAD_VALUE,
                              interface=ascii(name))
    return raw


_FIX: Final = "give the name as `ip link` shows it, an index or a local address"


def _check_text(text: str) -> bytes:
    """An interface given as text, as bytes: no NUL, no unencodable character."""
    if "\0" in text:
        raise McastValueError(f"interface {text!a} contains a NUL character; {_FIX}",
                              code=ErrorCode.BAD_VALUE, interface=ascii(text))
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        raise McastValueError(f"interface {text!a} contains a character that cannot "
                              f"be encoded (a lone surrogate); {_FIX}",
                              code=ErrorCode.BAD_VALUE, interface=ascii(text)) from None


def _ifreq(spec: str | int) -> tuple[int, str, int | None, int | None] | None:
    """(index, name, flags, mtu) of one interface, by name or index, with ioctls on one
    socket (SIOCGIFINDEX or SIOCGIFNAME, then SIOCGIFFLAGS and SIOCGIFMTU), or None when
    there is no such interface. Flags or MTU are None where the kernel refused them."""
    s = _lookup_socket(socket.AF_INET)
    try:
        fd = s.fileno()
        try:
            if isinstance(spec, int):
                out = fcntl.ioctl(fd, _SIOCGIFNAME, struct.pack("16si20x", b"", spec))
                raw = out[:16].split(b"\0", 1)[0]
                index, name = spec, os.fsdecode(raw)
            else:
                raw = check_interface_name(spec)
                out = fcntl.ioctl(fd, _SIOCGIFINDEX, struct.pack("16s24x", raw))
                index, name = int(struct.unpack_from("=i", out, 16)[0]), spec
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                return None
            found = _by_libc(spec)  # these ioctl numbers are Linux's: ask libc instead
            if found is None:
                return None
            index, name = found
            raw = os.fsencode(name)
        buf = struct.pack("16s24x", raw)
        got: list[int | None] = []
        for request, fmt in ((_SIOCGIFFLAGS, "=H"), (_SIOCGIFMTU, "=i")):
            try:
                got.append(int(struct.unpack_from(fmt, fcntl.ioctl(fd, request, buf), 16)[0]))
            except OSError:
                got.append(None)
    finally:
        s.close()
    return index, name, got[0], got[1]


def _by_libc(spec: str | int) -> tuple[int, str] | None:
    """(index, name) through if_nametoindex / if_indextoname, or None (not found)."""
    try:
        if isinstance(spec, int):
            return spec, socket.if_indextoname(spec)
        return socket.if_nametoindex(spec), spec
    except OSError:
        return None


def _addresses_by_name() -> dict[str, tuple[IPAddress, ...]]:
    """Every interface's addresses through getifaddrs (where netlink is unavailable)."""
    out: dict[str, list[IPAddress]] = {}
    for ad in ifaddr.get_adapters():
        for ip in ad.ips:
            raw = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                out.setdefault(ad.name, []).append(ipaddress.ip_address(raw))
            except ValueError:
                continue
    return {k: tuple(v) for k, v in out.items()}


def _addresses(index: int) -> dict[int, tuple[IPAddress, ...]] | None:
    """Addresses by interface index from one netlink dump (``index`` 0: every
    interface), or None where netlink cannot answer (then getifaddrs is used)."""
    try:
        events = dump_addresses(index)
    except McastError:
        return None
    except OSError as exc:
        _out_of_descriptors(exc)
        return None
    out: dict[int, list[IPAddress]] = {}
    for ev in events:
        a = ev.address
        if a is not None:  # from the packed form: faster than parsing the text
            out.setdefault(ev.index, []).append(
                ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, a)) if ev.family == 6
                else ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, a)))
    return {k: tuple(v) for k, v in out.items()}


def _describe(spec: str | int,
              addrs: dict[int, tuple[IPAddress, ...]] | None = None) -> Interface | None:
    """The Interface named or numbered ``spec`` (None: no such interface); ``addrs`` from
    a dump already made, if any."""
    found = _ifreq(spec)
    if found is None:
        return None
    index, name, bits, mtu = found
    if addrs is None:
        addrs = _addresses(index)
    mine = addrs.get(index, ()) if addrs is not None else _addresses_by_name().get(name, ())
    return Interface(index=index, name=name,
                     flags=InterfaceFlags.from_bits(bits) if bits is not None else None,
                     mtu=mtu, addresses=mine)


def list_interfaces() -> list[Interface]:
    """All interfaces of the current network namespace, by index.

    Returns:
        The interfaces with their flags, MTU and addresses, sorted by index.
    """
    pairs = sorted(socket.if_nameindex())
    addrs = _addresses(0)
    if addrs is None:
        by_name = _addresses_by_name()
        addrs = {i: by_name.get(n, ()) for i, n in pairs}
    found = (_describe(i, addrs) for i, _ in pairs)
    return [itf for itf in found if itf is not None]  # none deleted since the listing


def _known() -> str:
    names = [n for _, n in sorted(socket.if_nameindex())]
    return ", ".join(names) if names else "none"


def resolve_interface(spec: str | int | IPAddress | Interface) -> Interface:
    """Resolve a name (``"eth0"``), index (``2``, ``"2"``) or local address to an Interface.

    Args:
        spec: a name, an index (int or digits), a local address (text or ip_address),
            or an Interface (returned as is).

    Returns:
        The interface as the kernel sees it now.

    Raises:
        InterfaceNotFoundError: nothing matches; the message lists the interfaces there
            are (``INTERFACE_NOT_FOUND``).
        McastValueError: a malformed name (a NUL, an unencodable character, too long).
        McastOSError: the process is out of descriptors (the message names the limit).
    """
    if isinstance(spec, Interface):
        return spec
    if isinstance(spec, str):
        _check_text(spec)
    kind = parse_interface_spec(spec) if isinstance(spec, str | int) else spec
    if isinstance(kind, int):
        itf = _describe(kind)
        if itf is None:
            raise InterfaceNotFoundError(
                errno.ENODEV, f"no interface with index {kind}; interfaces here: {_known()}",
                interface=str(kind),
            )
        return itf
    if isinstance(kind, str):
        itf = _describe(kind)
        if itf is None:
            raise InterfaceNotFoundError(
                errno.ENODEV, f"no interface named {kind!r}; interfaces here: {_known()}",
                interface=kind,
            )
        return itf
    addrs = _addresses(0)
    if addrs is not None:
        for index in sorted(i for i, have in addrs.items() if kind in have):
            itf = _describe(index, addrs)
            if itf is not None:  # else deleted since the dump
                return itf
    else:
        by_name = _addresses_by_name()
        for index, name in sorted(socket.if_nameindex()):
            if kind in by_name.get(name, ()) and (itf := _describe(index)) is not None:
                return itf
    raise InterfaceNotFoundError(
        errno.EADDRNOTAVAIL,
        f"no interface has the address {kind}; give a local address, a name or an index "
        f"(interfaces here: {_known()})",
        interface=str(kind),
    )


def is_broadcast_address(addr: str) -> bool:
    """True for the limited broadcast 255.255.255.255 and for the broadcast address of a
    subnet of this host (its IPv4 addresses with a prefix shorter than /31), read from
    one rtnetlink address dump; False for anything else, IPv6, or where netlink cannot
    answer."""
    if addr == "255.255.255.255":
        return True
    try:
        target = int(ipaddress.IPv4Address(addr))
        events = dump_addresses(0)
    except (ValueError, McastError, OSError):
        return False
    for ev in events:
        if ev.family == 4 and ev.address is not None and ev.prefixlen < 31:
            host_bits = (1 << (32 - ev.prefixlen)) - 1
            if int(ipaddress.IPv4Address(ev.address)) | host_bits == target:
                return True
    return False


def route_interface(group: IPAddress) -> Interface:
    """The interface the routing table would send ``group`` out of (a deterministic,
    reported choice instead of the kernel's hidden "any interface": field notes A10).

    Asks the kernel for the route's device (rtnetlink ``RTM_GETROUTE`` → ``RTA_OIF``), so
    a route without a source address (``224.0.0.0/4 dev eth1`` on an interface without
    an IPv4 address) is found too; where netlink cannot answer, the source address a
    connected probe socket gets is looked up instead.

    Raises:
        InterfaceError: no route to the group (typical of containers); the message says to
            pass an interface.
    """
    try:
        oif = route_oif(str(group))
    except (McastError, OSError, ValueError):
        oif = None  # no route, or no netlink: the probe below says which
    if oif is not None:
        with contextlib.suppress(InterfaceNotFoundError):  # deleted since: probe
            return resolve_interface(oif)
    fam = socket.AF_INET if group.version == 4 else socket.AF_INET6
    s = _lookup_socket(fam)
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
