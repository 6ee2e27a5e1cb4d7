"""Group, source and endpoint values, the ``[SOURCE,]GROUP:PORT`` parser and scope rules.

Owns: validation of multicast addresses before any syscall, IPv4/IPv6 scopes
(RFC 2365, RFC 4291 §2.7, RFC 4607) and the compact endpoint syntax used by the CLI.
Must not: make syscalls or resolve names; interface names stay strings here.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._errors import ErrorCode, McastValueError

__all__ = [
    "LIMITED_BROADCAST",
    "Endpoint",
    "Group",
    "IPAddress",
    "Scope",
    "is_multicast_text",
    "parse_destination",
    "parse_endpoint",
    "parse_interface_spec",
    "parse_ip",
    "scope_ttl_warning",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
LIMITED_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")

_SSM_V4: Final = ipaddress.ip_network("232.0.0.0/8")
_LINK_V4: Final = ipaddress.ip_network("224.0.0.0/24")
_LOCAL_V4: Final = ipaddress.ip_network("239.255.0.0/16")
_ORG_V4: Final = ipaddress.ip_network("239.192.0.0/14")
_ADMIN_V4: Final = ipaddress.ip_network("239.0.0.0/8")


class Scope(enum.Enum):
    """How far a group is meant to travel."""

    INTERFACE = "interface"  # ff01::/16: never leaves the host
    LINK = "link"  # 224.0.0.0/24, ff02::/16: never routed
    ADMIN = "admin"  # ff04::/16, 239.0.0.0/8 outside the ranges below
    SITE = "site"  # ff05::/16, 239.255.0.0/16 (IPv4 Local Scope, RFC 2365)
    ORGANIZATION = "organization"  # ff08::/16, 239.192.0.0/14
    GLOBAL = "global"
    RESERVED = "reserved"  # ff00::/16, ff0f::/16 and unassigned IPv6 scope nibbles


_V6_SCOPES: Final[dict[int, Scope]] = {
    0x1: Scope.INTERFACE, 0x2: Scope.LINK, 0x4: Scope.ADMIN, 0x5: Scope.SITE,
    0x8: Scope.ORGANIZATION, 0xE: Scope.GLOBAL,
}


def parse_ip(text: str, *, what: str = "address") -> IPAddress:
    """Parse a numeric IPv4/IPv6 address (no names, no brackets); raise McastValueError."""
    raw = text.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise McastValueError(
            f"{what} {text!r} is not a numeric IPv4 or IPv6 address "
            "(examples: 239.255.0.1, ff15::1)",
            code=ErrorCode.BAD_ADDRESS,
        ) from None


@dataclass(frozen=True, slots=True)
class Group:
    """A multicast group address. Construction fails for non-multicast addresses.

    Attributes:
        address: the group, an ``ipaddress.IPv4Address`` or ``IPv6Address`` in
            224.0.0.0/4 or ff00::/8.

    Raises:
        McastValueError: ``address`` is not an ip_address (``BAD_ADDRESS``) or not a
            multicast address (``NOT_MULTICAST``).
    """

    address: IPAddress

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise McastValueError(
                f"group must be an ip_address, got {type(self.address).__name__}",
                code=ErrorCode.BAD_ADDRESS,
            )
        if not self.address.is_multicast:
            hint = "224.0.0.0/4" if self.address.version == 4 else "ff00::/8"
            bcast = ("; broadcasts need no join: open the socket with broadcast=True and "
                     "bind the port" if self.address.version == 4 else "")
            what = ("the limited broadcast address, not a multicast group"
                    if self.address == LIMITED_BROADCAST else "not a multicast address")
            raise McastValueError(
                f"{self.address} is {what}; groups are in {hint} "
                f"(for example 239.255.0.1 or ff15::1){bcast}",
                code=ErrorCode.NOT_MULTICAST,
                group=str(self.address),
            )

    @classmethod
    def parse(cls, value: str | IPAddress | Group) -> Group:
        """Build a Group from text, an ip_address or a Group.

        Args:
            value: ``"239.255.0.1"``, ``"ff15::1"``, an ip_address or a Group (returned
                as is).

        Returns:
            The group.

        Raises:
            McastValueError: not an address (``BAD_ADDRESS``) or not multicast
                (``NOT_MULTICAST``).
        """
        if isinstance(value, Group):
            return value
        if isinstance(value, str):
            return cls(parse_ip(value, what="group"))
        return cls(value)

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.address.version

    @property
    def family(self) -> socket.AddressFamily:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return socket.AF_INET if self.address.version == 4 else socket.AF_INET6

    @property
    def is_ssm(self) -> bool:
        """True for the source-specific ranges 232/8 and ff3x::/32 (RFC 4607)."""
        a = self.address
        if a.version == 4:
            return a in _SSM_V4
        p = a.packed  # FF3x::/32: flags 3, any scope, prefix length and prefix zero
        return p[0] == 0xFF and p[1] >> 4 == 3 and p[2] == 0 and p[3] == 0

    @property
    def scope(self) -> Scope:
        """The group's scope (RFC 2365 ranges for IPv4, the scope nibble for IPv6)."""
        a = self.address
        if isinstance(a, ipaddress.IPv6Address):
            return _V6_SCOPES.get(a.packed[1] & 0x0F, Scope.RESERVED)
        if a in _LINK_V4:
            return Scope.LINK
        if a in _LOCAL_V4:
            return Scope.SITE
        if a in _ORG_V4:
            return Scope.ORGANIZATION
        if a in _ADMIN_V4:
            return Scope.ADMIN
        return Scope.GLOBAL

    def __str__(self) -> str:
        return str(self.address)


def is_multicast_text(addr: str) -> bool:
    """Cheap test of address *text* as the kernel reports it (per datagram: no parsing)."""
    if ":" in addr:
        return addr[:2].lower() == "ff"
    head = addr.split(".", 1)[0]
    return head.isdigit() and 224 <= int(head) <= 239


def scope_ttl_warning(group: Group, ttl: int) -> str | None:
    """Return a warning when ``ttl`` contradicts the group's scope (field notes G3)."""
    scope = group.scope
    if scope in (Scope.INTERFACE, Scope.LINK) and ttl > 1:
        return f"TTL {ttl} is useless for {scope.value}-scope group {group}: it is never routed"
    if scope is Scope.RESERVED:
        return f"group {group} has a reserved IPv6 scope nibble; use ff15::/16 for site scope"
    return None


def parse_interface_spec(text: str | int) -> str | int | IPAddress:
    """Classify an interface given on a command line: index, address or name."""
    if isinstance(text, int):
        if text < 0:
            raise McastValueError(f"interface index {text} is negative", code=ErrorCode.BAD_VALUE)
        return text
    t = text.strip()
    if not t:
        raise McastValueError("empty interface name; give a name (eth0), index or address")
    if t.isascii() and t.isdigit() and len(t) < 16:  # "²" is a digit int() refuses
        return int(t)
    try:
        return ipaddress.ip_address(t)
    except ValueError:
        pass
    if len(t) >= 16 or any(c in t for c in "/ \t:"):
        raise McastValueError(
            f"{text!r} is not a valid interface name, index or address", code=ErrorCode.BAD_VALUE
        )
    return t


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A parsed ``[SOURCE,]GROUP[:PORT]`` with an optional ``%zone`` interface.

    Built by :func:`parse_endpoint`, or with keyword arguments. ``str()`` gives the text
    form back (IPv6 in brackets).

    Attributes:
        group: the multicast group.
        port: the UDP port, 0-65535.
        source: the sender of a source-specific endpoint (``SOURCE,GROUP:PORT``), or
            None for any source.
        interface: the ``%zone`` of an IPv6 group (an interface name), or None.

    Raises:
        McastValueError: a port outside 0-65535 (``BAD_VALUE``), a source of the other
            IP version (``WRONG_FAMILY``) or a source that is not a unicast address
            (``BAD_ADDRESS``).
    """

    group: Group
    port: int
    source: IPAddress | None = None
    interface: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise McastValueError(
                f"port {self.port} is out of range 0-65535", code=ErrorCode.BAD_VALUE
            )
        if self.source is not None:
            if self.source.version != self.group.version:
                raise McastValueError(
                    f"source {self.source} and group {self.group} are of different IP versions",
                    code=ErrorCode.WRONG_FAMILY,
                )
            if self.source.is_multicast or self.source.is_unspecified:
                raise McastValueError(
                    f"source {self.source} must be a unicast sender address",
                    code=ErrorCode.BAD_ADDRESS,
                )

    def __str__(self) -> str:
        g = f"[{self.group}" + (f"%{self.interface}" if self.interface else "") + "]" \
            if self.group.version == 6 else str(self.group)
        src = ""
        if self.source is not None:
            src = (f"{self.source}" if self.source.version == 4 else f"[{self.source}]") + ","
        return f"{src}{g}:{self.port}"


def _split_host_port(text: str, default_port: int | None) -> tuple[str, int]:
    t = text.strip()
    port_s: str | None = None
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise McastValueError(f"{text!r}: missing ']' after an IPv6 address")
        host, rest = t[1:end], t[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise McastValueError(f"{text!r}: expected ':PORT' after ']'")
            port_s = rest[1:]
    elif t.count(":") == 1:
        host, port_s = t.split(":")
    elif t.count(":") > 1:
        raise McastValueError(
            f"{text!r}: put an IPv6 group in brackets, e.g. [ff15::1]:5000",
            code=ErrorCode.BAD_ADDRESS,
        )
    else:
        host = t
    if port_s is None:
        if default_port is None:
            raise McastValueError(f"{text!r}: missing ':PORT' (e.g. 239.255.0.1:5000)")
        return host, default_port
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses, and int() refuses
    # more than 4300 digits, so long strings are cut before converting.
    digits = port_s.lstrip("0") or "0"
    if not (port_s.isascii() and port_s.isdigit()) or len(digits) > 5 or int(digits) > 65535:
        raise McastValueError(f"{text!r}: port {port_s!r} is not a number in 0-65535")
    return host, int(digits)


def parse_endpoint(text: str, *, default_port: int | None = None) -> Endpoint:
    """Parse ``GROUP:PORT``, ``[ff15::1]:PORT``, ``[ff02::1%eth0]:PORT`` or
    ``SOURCE,GROUP:PORT`` (source-specific).

    Args:
        text: the endpoint text.
        default_port: the port when ``text`` has none; None: a port is required.

    Returns:
        The endpoint.

    Raises:
        McastValueError: the message names the problem: empty text, a missing or bad
            port, an IPv6 group without brackets, a zone on an IPv4 group, a group that
            is not multicast (``NOT_MULTICAST``), a bad source (``BAD_ADDRESS``).
    """
    if not isinstance(text, str) or not text.strip():
        raise McastValueError("empty endpoint; expected [SOURCE,]GROUP:PORT")
    src_text: str | None = None
    body = text.strip()
    if "," in body:
        src_text, body = body.split(",", 1)
        if "," in body:
            raise McastValueError(f"{text!r}: only one SOURCE, is allowed")
    host, port = _split_host_port(body, default_port)
    zone: str | None = None
    if "%" in host:
        host, zone = host.split("%", 1)
        if not zone:
            raise McastValueError(f"{text!r}: empty zone after '%'")
    group = Group(parse_ip(host, what="group"))
    if zone is not None and group.version != 6:
        raise McastValueError(f"{text!r}: a %zone is only valid on IPv6 groups")
    source = parse_ip(src_text, what="source") if src_text is not None else None
    return Endpoint(group=group, port=port, source=source, interface=zone)


def parse_destination(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` or ``[HOST%zone]:PORT`` for a send to any address (a group,
    a broadcast or unicast address), where :func:`parse_endpoint` takes groups only.

    Returns:
        (the address as text, with its ``%zone`` if any, port).

    Raises:
        McastValueError: not a numeric address, or a missing or bad port.
    """
    if not isinstance(text, str) or not text.strip():
        raise McastValueError("empty destination; expected HOST:PORT")
    host, port = _split_host_port(text, None)
    bare, sep, zone = host.partition("%")
    ip = parse_ip(bare, what="destination")
    return (f"{ip}%{zone}" if sep and zone else str(ip)), port
