"""What a relay forwards: its interfaces, rules, tunnel and limits, as checked values.

Owns: :class:`RelayConfig`, :class:`Rule`, :class:`InterfaceSpec`, :class:`TunnelSpec`,
their validation (every error names the setting and the fix), the spelling of broadcast
ports (``255.255.255.255:PORT``, :data:`BROADCAST`) and the per-datagram questions a rule
answers (is this source allowed, which interfaces get it).
Must not: open sockets, read files (``_config`` does), or know the CLI.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mcastkit import Endpoint, ErrorCode, McastValueError, parse_endpoint

__all__ = [
    "BROADCAST",
    "IPNetwork",
    "InterfaceMode",
    "InterfaceSpec",
    "RelayConfig",
    "Rule",
    "TunnelSpec",
    "parse_network",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
InterfaceMode = Literal["both", "listen-only", "send-only"]
MODES: tuple[InterfaceMode, ...] = ("both", "listen-only", "send-only")
TUNNEL = "tunnel"  # the ingress/egress name of the tunnel in statistics
#: the group under which a rule's broadcast ports are relayed, counted and tunnelled
BROADCAST = "255.255.255.255"


def _bad(msg: str) -> McastValueError:
    return McastValueError(msg, code=ErrorCode.BAD_VALUE)


def split_groups(texts: Sequence[str]) -> tuple[tuple[Endpoint, ...], tuple[int, ...]]:
    """``[SOURCE,]GROUP:PORT`` values, where ``255.255.255.255:PORT`` names a broadcast
    port, -> (multicast endpoints, broadcast ports).

    Raises:
        McastValueError: a value that is neither (the message says which).
    """
    eps: list[Endpoint] = []
    ports: list[int] = []
    for t in texts:
        host, sep, port = str(t).strip().rpartition(":")
        if host == BROADCAST and sep:
            ports.append(broadcast_port(port))
        else:
            eps.append(parse_endpoint(t))
    return tuple(eps), tuple(ports)


def broadcast_port(text: str | int) -> int:
    """A broadcast port (1-65535) from ``6969`` or ``"6969"``.

    Raises:
        McastValueError: not a port number.
    """
    t = str(text).strip()
    if not (t.isascii() and t.isdigit() and len(t) <= 5 and 1 <= int(t) <= 65535):
        raise _bad(f"broadcast port {text!r} must be a number 1-65535 (e.g. 6969)")
    return int(t)


def parse_network(text: str, what: str = "source subnet") -> IPNetwork:
    """``198.18.1.0/24``, ``fe80::/10`` or a single address (a /32 or /128)."""
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise _bad(f"{what} {text!r} is not an address or subnet (e.g. 198.18.1.0/24)"
                   ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceSpec:
    """One local interface of the relay.

    Attributes:
        name: the interface name (joins go by name, so a re-created interface is joined
            again).
        mode: ``"both"`` (receive and send), ``"listen-only"`` (receive, never send to
            it) or ``"send-only"`` (send to it, never join or receive on it).
    """

    name: str
    mode: InterfaceMode = "both"

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 15 or any(c in self.name for c in "/ \t:"):
            raise _bad(f"interface {self.name!r} is not an interface name")
        if self.mode not in MODES:
            raise _bad(f"interface {self.name}: mode {self.mode!r}; use one of "
                       + ", ".join(MODES))

    @property
    def receives(self) -> bool:
        """The relay joins and receives on this interface."""
        return self.mode != "send-only"

    @property
    def sends(self) -> bool:
        """The relay sends to this interface."""
        return self.mode != "listen-only"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Which datagrams to relay, and where.

    Attributes:
        name: shown in statistics (``"mdns"``, ``"rule1"``...).
        endpoints: ``[SOURCE,]GROUP:PORT`` values; a SOURCE joins source-specifically.
        broadcast_ports: UDP ports whose IPv4 broadcasts (limited, or directed to the
            receiving interface's subnet) are relayed, re-sent as the limited broadcast
            255.255.255.255 out of each target interface (``BROADCAST`` in statistics).
        interfaces: restrict the rule to these relay interfaces (empty: all of them).
        allow_sources: relay only datagrams from these subnets (empty: any source).
        deny_sources: never relay datagrams from these subnets (checked first).
        targets: per-source-subnet target interfaces: a datagram whose source is in a
            listed subnet goes only to that entry's interfaces (first match wins; no
            match: every other interface), e.g. hotel rooms that see only the lobby.
        rate_limit_pps: most datagrams per second per group relayed by this rule (excess
            dropped and counted); None: the relay's default.
        tunnel: also carry this rule through the tunnel (when there is one).
    """

    name: str
    endpoints: tuple[Endpoint, ...]
    broadcast_ports: tuple[int, ...] = ()
    interfaces: tuple[str, ...] = ()
    allow_sources: tuple[IPNetwork, ...] = ()
    deny_sources: tuple[IPNetwork, ...] = ()
    targets: tuple[tuple[IPNetwork, tuple[str, ...]], ...] = ()
    rate_limit_pps: float | None = None
    tunnel: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise _bad("a rule needs a name")
        if not self.endpoints and not self.broadcast_ports:
            raise _bad(f"rule {self.name}: no group given (e.g. groups = "
                       "[\"239.255.0.1:5000\"], or broadcast_ports = [6969])")
        for p in self.broadcast_ports:
            if not (isinstance(p, int) and 1 <= p <= 65535):
                raise _bad(f"rule {self.name}: broadcast port {p!r} must be 1-65535")
        for e in self.endpoints:
            if e.port == 0:
                raise _bad(f"rule {self.name}: {e} has port 0; give the group's port")
        if self.rate_limit_pps is not None and not (
                math.isfinite(self.rate_limit_pps) and self.rate_limit_pps > 0):
            raise _bad(f"rule {self.name}: rate_limit {self.rate_limit_pps!r} must be a "
                       "positive number of datagrams per second")

    def source_allowed(self, source: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether this rule relays datagrams from ``source``.

        The deny list is checked first, then the allow list (empty: everything).

        Args:
            source: the sender's address.

        Returns:
            True when the datagram may be relayed.
        """
        if any(source in n for n in self.deny_sources if n.version == source.version):
            return False
        if not self.allow_sources:
            return True
        return any(source in n for n in self.allow_sources if n.version == source.version)

    def targets_for(self, source: ipaddress.IPv4Address | ipaddress.IPv6Address
                    ) -> tuple[str, ...] | None:
        """The target interfaces for ``source``.

        Args:
            source: the sender's address.

        Returns:
            The interface names of the first per-source entry that matches, or None.
        """
        for net, ifaces in self.targets:
            if net.version == source.version and source in net:
                return ifaces
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelSpec:
    """The encrypted unicast tunnel to another relay.

    Attributes:
        mode: ``"listen"`` (wait for the other side) or ``"connect"`` (initiate; works
            from behind NAT).
        host: address to bind (listen; empty: every address) or the peer's host (connect).
        port: UDP port.
        key_file: the pre-shared key (mode 0600; see ``mcastkit relay --make-key``).
        keepalive_s: seconds between keepalives while the link is up.
        dead_s: the link is down after this long without an authentic packet.
        max_backoff_s: longest wait between reconnect attempts (it doubles from
            ``keepalive_s``).
        mtu: the largest tunnel packet (UDP payload) to send or accept; a datagram that
            does not fit is counted as ``too_big`` and reported, never sent in pieces.
    """

    mode: Literal["listen", "connect"]
    host: str
    port: int
    key_file: str
    keepalive_s: float = 1.0
    dead_s: float = 5.0
    max_backoff_s: float = 30.0
    mtu: int = 1472

    def __post_init__(self) -> None:
        if self.mode not in ("listen", "connect"):
            raise _bad(f"tunnel mode {self.mode!r}: use 'listen' or 'connect'")
        if not 1 <= self.port <= 65535 and not (self.mode == "listen" and self.port == 0):
            raise _bad(f"tunnel port {self.port} is out of range 1-65535")
        if self.mode == "connect" and not self.host:
            raise _bad("--tunnel-connect needs HOST:PORT")
        if not self.key_file:
            raise _bad("a tunnel needs --key-file FILE (make one with 'mcastkit relay "
                       "--make-key FILE')")
        for name in ("keepalive_s", "dead_s", "max_backoff_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise _bad(f"tunnel {name} {v!r} must be a positive number of seconds")
        if self.dead_s <= self.keepalive_s:
            raise _bad(f"tunnel dead_s ({self.dead_s}) must be longer than keepalive_s "
                       f"({self.keepalive_s})")
        if not 256 <= self.mtu <= 65507:
            raise _bad(f"tunnel mtu {self.mtu} must be 256-65507 bytes (the UDP payload)")


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """Everything a :class:`~mcastkit.relay.Relay` needs.

    Attributes:
        interfaces: the local interfaces (two or more without a tunnel, one or more with).
        rules: what to relay (presets expand into rules).
        tunnel: the encrypted tunnel, or None.
        ttl: TTL / hop limit of relayed datagrams (default 1: the relay's output stays on
            the link and is never routed further, so it cannot loop through routers).
        rate_limit_pps: default per-group rate limit of every rule (None: unlimited).
        dedup_window_s: how long a relayed datagram is remembered to suppress its copies
            coming back on another interface (storm rule 2 in docs/relay.md).
        preserve_source: send with the original source address (raw path, CAP_NET_RAW).
        health: (address, port) of the HTTP health endpoint, or None.
        rcvbuf_bytes: receive buffer to request per socket (None: the kernel default).
    """

    interfaces: tuple[InterfaceSpec, ...]
    rules: tuple[Rule, ...]
    tunnel: TunnelSpec | None = None
    ttl: int = 1
    rate_limit_pps: float | None = None
    dedup_window_s: float = 5.0
    preserve_source: bool = False
    health: tuple[str, int] | None = None
    rcvbuf_bytes: int | None = None

    def __post_init__(self) -> None:
        names = [i.name for i in self.interfaces]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise _bad(f"interface {', '.join(dup)} is listed twice")
        if self.tunnel is None and len(self.interfaces) < 2:
            raise _bad("a relay between interfaces needs at least two interfaces "
                       "(mcastkit relay IFACE IFACE ...), or a tunnel "
                       "(--tunnel-listen / --tunnel-connect)")
        if self.tunnel is not None and not self.interfaces:
            raise _bad("a tunnel relay needs at least one local interface (-i IFACE)")
        if not self.rules:
            raise _bad("nothing to relay: give --group [SOURCE,]GROUP:PORT, "
                       "--broadcast-port PORT or --preset mdns|ssdp|sonos (or rules in "
                       "--config)")
        if not 0 <= self.ttl <= 255:
            raise _bad(f"ttl {self.ttl} is out of range 0-255")
        if self.rate_limit_pps is not None and not (
                math.isfinite(self.rate_limit_pps) and self.rate_limit_pps > 0):
            raise _bad(f"rate limit {self.rate_limit_pps!r} must be a positive number of "
                       "datagrams per second")
        if not (math.isfinite(self.dedup_window_s) and 0 < self.dedup_window_s <= 3600):
            raise _bad(f"dedup_window_s {self.dedup_window_s!r} must be 0-3600 seconds")
        seen: dict[tuple[str, int], str] = {}
        rnames: set[str] = set()
        for r in self.rules:
            if r.name in rnames:
                raise _bad(f"two rules are named {r.name!r}; give each rule its own name")
            rnames.add(r.name)
            for ifn in (*r.interfaces, *(i for _, t in r.targets for i in t)):
                if ifn not in names:
                    raise _bad(f"rule {r.name}: interface {ifn!r} is not one of the relay's "
                               f"interfaces ({', '.join(names) or 'none'})")
            for e in r.endpoints:
                key = (str(e.group.address), e.port)
                if key in seen:
                    raise _bad(f"{e} is in rule {seen[key]!r} and rule {r.name!r}; a group "
                               "and port can belong to one rule only")
                seen[key] = r.name
            for p in r.broadcast_ports:
                if (BROADCAST, p) in seen:
                    raise _bad(f"broadcast port {p} is in rule {seen[(BROADCAST, p)]!r} and "
                               f"rule {r.name!r}; a port can belong to one rule only")
                seen[(BROADCAST, p)] = r.name

    def interface(self, name: str) -> InterfaceSpec:
        """The spec of interface ``name``.

        Args:
            name: an interface of this configuration.

        Returns:
            Its spec.

        Raises:
            KeyError: ``name`` is not an interface of this configuration.
        """
        for i in self.interfaces:
            if i.name == name:
                return i
        raise KeyError(name)


def rules_from_groups(groups: Sequence[Endpoint], start: int = 1) -> list[Rule]:
    """One rule per ``--group`` (named ``group1``, ``group2``...)."""
    return [Rule(name=f"group{start + i}", endpoints=(e,)) for i, e in enumerate(groups)]
