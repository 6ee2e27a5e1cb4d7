"""The relay's TOML configuration file, and merging it with command-line settings.

Owns: :class:`ConfigDraft` (settings gathered from a file and the command line before
they are checked together), reading a TOML file with the standard library's ``tomllib``
(the ``tomli`` backport on Python 3.10), and :class:`ConfigError`, whose message names the
file and line of the offending setting.
Must not: open sockets or start anything.

The format (every key optional except what a relay needs; docs/relay.md has the full
reference)::

    interfaces = ["eth1", "eth2"]
    presets = ["mdns"]
    ttl = 1
    rate_limit = 200            # datagrams/s per group
    health = "127.0.0.1:9101"

    [[interface]]
    name = "guest0"
    mode = "listen-only"

    [tunnel]
    connect = "relay.example.net:7777"     # or listen = "[ADDR:]PORT"
    key_file = "/etc/mcastkit/relay.key"

    [[rule]]
    name = "sensors"
    groups = ["239.255.10.1:5000"]     # "255.255.255.255:6969": a broadcast port
    broadcast_ports = [6969]           # the same, spelled as ports
    allow_sources = ["198.18.1.0/24"]
    [[rule.target]]
    sources = "198.18.5.0/24"
    interfaces = ["eth2"]
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from mcastkit import (
    Endpoint,
    ErrorCode,
    McastError,
    McastValueError,
    UnsupportedError,
)

from ._presets import preset_rules
from ._rules import (
    MODES,
    InterfaceMode,
    InterfaceSpec,
    IPNetwork,
    RelayConfig,
    Rule,
    TunnelSpec,
    broadcast_port,
    parse_network,
    split_groups,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

T = TypeVar("T")

__all__ = ["ConfigDraft", "ConfigError", "load_config", "parse_host_port", "read_config"]

_TOP = {"interfaces", "interface", "presets", "ttl", "rate_limit", "dedup_window_s",
        "preserve_source", "health", "rcvbuf", "tunnel", "rule"}
_TUNNEL = {"listen", "connect", "key_file", "keepalive_s", "dead_s", "max_backoff_s", "mtu"}
_RULE = {"name", "groups", "broadcast_ports", "interfaces", "allow_sources", "deny_sources",
         "rate_limit", "tunnel", "target"}
_TARGET = {"sources", "interfaces"}
_IFACE = {"name", "mode"}


class ConfigError(McastValueError):
    """A configuration file problem; ``path`` and ``line`` say where (line 0: unknown).

    Args:
        path: the configuration file.
        line: the line of the problem, or 0 when unknown.
        message: what is wrong and how to fix it.

    Attributes:
        path: the configuration file.
        line: the line of the problem, or 0 when unknown.
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", code=ErrorCode.BAD_VALUE)
        self.path = path
        self.line = line


def parse_host_port(text: str, what: str, *, port_only_ok: bool) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or (``port_only_ok``) ``PORT`` -> (host, port)."""
    t = str(text).strip()
    host, port_s = "", t
    if t.startswith("["):
        end = t.find("]")
        if end < 0 or not t[end + 1:].startswith(":"):
            raise McastValueError(f"{what} {text!r}: expected [ADDRESS]:PORT")
        host, port_s = t[1:end], t[end + 2:]
    elif ":" in t:
        host, port_s = t.rsplit(":", 1)
    elif not port_only_ok:
        raise McastValueError(f"{what} {text!r}: expected HOST:PORT")
    if not (port_s.isascii() and port_s.isdigit() and len(port_s) <= 5) or (
            int(port_s) > 65535):
        raise McastValueError(f"{what} {text!r}: the port must be a number 0-65535")
    return host, int(port_s)


@dataclass
class ConfigDraft:
    """Settings before they are checked together (file first, command line on top).

    Attributes:
        interfaces: the interfaces to relay between.
        rules: the rules (groups and presets) to relay.
        tunnel: the encrypted tunnel to another relay, or None.
        ttl: the TTL / hop limit of relayed datagrams.
        rate_limit_pps: a rate limit per rule in datagrams per second, or None.
        dedup_window_s: how long a relayed datagram is remembered (storm rule).
        preserve_source: send from the original source address where possible.
        health: (host, port) of the health endpoint, or None.
        rcvbuf_bytes: the receive buffer request, or None.
        source: the file the settings came from, for messages ("" for none).
    """

    interfaces: list[InterfaceSpec] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    tunnel: TunnelSpec | None = None
    ttl: int = 1
    rate_limit_pps: float | None = None
    dedup_window_s: float = 5.0
    preserve_source: bool = False
    health: tuple[str, int] | None = None
    rcvbuf_bytes: int | None = None
    source: str = ""  # the file it came from, for messages

    def add_interface(self, name: str, mode: InterfaceMode = "both") -> None:
        """Add (or change the mode of) an interface.

        Args:
            name: the interface name.
            mode: ``"both"``, ``"listen-only"`` or ``"send-only"``.
        """
        self.interfaces = [i for i in self.interfaces if i.name != name]
        self.interfaces.append(InterfaceSpec(name=name, mode=mode))

    def add_groups(self, endpoints: list[Endpoint]) -> None:
        """One rule per endpoint (``--group``), named group1, group2...

        Args:
            endpoints: the groups to relay.
        """
        n = sum(1 for r in self.rules if r.name.startswith("group")) + 1
        for i, e in enumerate(endpoints):
            self.rules.append(Rule(name=f"group{n + i}", endpoints=(e,)))

    def add_broadcast_ports(self, ports: list[int]) -> None:
        """One rule per broadcast port (``--broadcast-port``), named bcast6969...

        Args:
            ports: the UDP ports whose IPv4 broadcasts to relay.
        """
        have = {p for r in self.rules for p in r.broadcast_ports}
        for p in dict.fromkeys(ports):
            if p not in have:
                self.rules.append(Rule(name=f"bcast{p}", endpoints=(), broadcast_ports=(p,)))

    def add_preset(self, name: str) -> None:
        """Add the rules of preset ``name`` (see :data:`PRESETS`). Groups and broadcast
        ports that an earlier rule has already (presets overlap: ``sonos`` holds SSDP's
        IPv4 group) stay with that rule.

        Args:
            name: a preset name (``"mdns"``, ``"ssdp"``...).

        Raises:
            McastValueError: no such preset (see :func:`preset_rules`).
        """
        have = {(str(e.group.address), e.port) for r in self.rules for e in r.endpoints}
        ports = {p for r in self.rules for p in r.broadcast_ports}
        for r in preset_rules(name):
            if any(x.name == r.name for x in self.rules):
                continue  # the same preset twice
            eps = tuple(e for e in r.endpoints if (str(e.group.address), e.port) not in have)
            bps = tuple(p for p in r.broadcast_ports if p not in ports)
            if eps or bps:
                self.rules.append(dataclasses.replace(r, endpoints=eps, broadcast_ports=bps))

    def build(self) -> RelayConfig:
        """The checked :class:`RelayConfig`.

        Returns:
            The configuration, every setting checked against the others.

        Raises:
            McastValueError: the settings do not make a relay (names the setting; with
                the file's name when one was read).
        """
        try:
            return RelayConfig(
                interfaces=tuple(self.interfaces), rules=tuple(self.rules), tunnel=self.tunnel,
                ttl=self.ttl, rate_limit_pps=self.rate_limit_pps,
                dedup_window_s=self.dedup_window_s, preserve_source=self.preserve_source,
                health=self.health, rcvbuf_bytes=self.rcvbuf_bytes)
        except McastValueError as exc:
            if self.source:
                raise ConfigError(self.source, 0, exc.message) from None
            raise


class _Reader:
    """Walks the parsed TOML, checking types; errors carry the line of the key."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, table: str | None, index: int, key: str | None) -> int:
        """The line of ``key`` in the ``index``-th ``[table]`` / ``[[table]]`` (None: the
        top level), else the table's header line, else 0."""
        start, end = 0, len(self.lines)
        if table is not None:
            hdr = re.compile(r"^\s*\[\[?\s*" + re.escape(table) + r"\s*\]\]?\s*(#.*)?$")
            hits = [n for n, ln in enumerate(self.lines) if hdr.match(ln)]
            if index >= len(hits):
                return 0
            start = hits[index] + 1
            if key is None:
                return start
        for n in range(start, end):
            ln = self.lines[n]
            if n > start and re.match(r"^\s*\[", ln) and not (
                    table and re.match(r"^\s*\[\[?\s*" + re.escape(table) + r"\.", ln)):
                break
            if n == start - 1:
                continue
            if key is not None and re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", ln):
                return n + 1
            if table is None and re.match(r"^\s*\[", ln):
                break
        return start if table is not None else 0

    def fail(self, table: str | None, index: int, key: str | None, msg: str) -> ConfigError:
        return ConfigError(self.path, self.line_of(table, index, key), msg)

    def keys(self, obj: dict[str, Any], allowed: set[str], table: str | None, index: int
             ) -> None:
        for k in obj:
            if k not in allowed:
                raise self.fail(table, index, k, f"unknown setting {k!r}"
                                + (f" in [{table}]" if table else "")
                                + "; valid: " + ", ".join(sorted(allowed)))

    def get(self, obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str,
            table: str | None, index: int) -> Any:
        v = obj.get(key)
        if v is None:
            return None
        ok = isinstance(v, kind) and not (isinstance(v, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)))
        if not ok:
            raise self.fail(table, index, key, f"{key} must be {what}, got {v!r}")
        return v

    def strings(self, obj: dict[str, Any], key: str, table: str | None, index: int
                ) -> list[str]:
        v = obj.get(key)
        if v is None:
            return []
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(table, index, key, f"{key} must be a string or a list of strings")
        return list(v)

    def wrap(self, table: str | None, index: int, key: str | None, fn: Callable[..., T],
             *args: Any, **kw: Any) -> T:
        try:
            return fn(*args, **kw)
        except McastError as exc:
            raise self.fail(table, index, key, exc.message) from None


def read_config(path: str) -> ConfigDraft:
    """Read a TOML configuration file into a draft (check it with ``.build()``).

    Args:
        path: the TOML file.

    Returns:
        The draft, for command-line settings to go on top.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown setting or bad value;
            the message starts with ``FILE:LINE:``.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(path, 0, f"cannot read it: {exc.strerror}") from None
    if tomllib is None:  # pragma: no cover - Python 3.10 without the extra
        raise UnsupportedError("reading --config needs the 'tomli' package on Python 3.10; "
                               "install it with pip install 'mcastkit[relay]'")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(path, 0, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        line = int(m.group(1)) if m else 0
        if "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise ConfigError(path, line, f"TOML syntax: {msg}") from None
    rd = _Reader(path, text)
    d = ConfigDraft(source=path)
    rd.keys(data, _TOP, None, 0)
    for name in rd.strings(data, "interfaces", None, 0):
        rd.wrap(None, 0, "interfaces", d.add_interface, name)
    ifaces = data.get("interface", [])
    if not isinstance(ifaces, list):
        raise rd.fail(None, 0, "interface", "use [[interface]] tables (one per interface)")
    for n, t in enumerate(ifaces):
        rd.keys(t, _IFACE, "interface", n)
        name = rd.get(t, "name", str, "a string", "interface", n)
        if name is None:
            raise rd.fail("interface", n, None, "an [[interface]] needs name = \"IFACE\"")
        mode = rd.get(t, "mode", str, "a string", "interface", n) or "both"
        if mode not in MODES:
            raise rd.fail("interface", n, "mode", f"mode {mode!r}; use one of "
                          + ", ".join(MODES))
        rd.wrap("interface", n, "name", d.add_interface, name, mode)
    for p in rd.strings(data, "presets", None, 0):
        rd.wrap(None, 0, "presets", d.add_preset, p)
    ttl = rd.get(data, "ttl", int, "a whole number 0-255", None, 0)
    if ttl is not None:
        if not 0 <= ttl <= 255:
            raise rd.fail(None, 0, "ttl", f"ttl {ttl} is out of range 0-255")
        d.ttl = ttl
    rl = rd.get(data, "rate_limit", (int, float), "datagrams per second", None, 0)
    if rl is not None:
        if rl <= 0:
            raise rd.fail(None, 0, "rate_limit", "rate_limit must be more than 0")
        d.rate_limit_pps = float(rl)
    dw = rd.get(data, "dedup_window_s", (int, float), "seconds", None, 0)
    if dw is not None:
        if not 0 < dw <= 3600:
            raise rd.fail(None, 0, "dedup_window_s", "dedup_window_s must be 0-3600 s")
        d.dedup_window_s = float(dw)
    d.preserve_source = bool(rd.get(data, "preserve_source", bool, "true or false", None, 0))
    h = rd.get(data, "health", str, "\"ADDRESS:PORT\"", None, 0)
    if h is not None:
        d.health = rd.wrap(None, 0, "health", parse_host_port, h, "health", port_only_ok=False)
    rb = rd.get(data, "rcvbuf", int, "a number of bytes", None, 0)
    if rb is not None:
        if rb < 1:
            raise rd.fail(None, 0, "rcvbuf", "rcvbuf must be at least 1 byte")
        d.rcvbuf_bytes = rb
    if "tunnel" in data:
        d.tunnel = _tunnel(rd, data["tunnel"])
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise rd.fail(None, 0, "rule", "use [[rule]] tables (one per rule)")
    for n, r in enumerate(rules):
        d.rules.append(_rule(rd, r, n))
    return d


def _tunnel(rd: _Reader, t: Any) -> TunnelSpec:
    if not isinstance(t, dict):
        raise rd.fail(None, 0, "tunnel", "use a [tunnel] table")
    rd.keys(t, _TUNNEL, "tunnel", 0)
    listen = rd.get(t, "listen", (str, int), "\"[ADDRESS:]PORT\"", "tunnel", 0)
    connect = rd.get(t, "connect", str, "\"HOST:PORT\"", "tunnel", 0)
    if (listen is None) == (connect is None):
        raise rd.fail("tunnel", 0, None, "[tunnel] needs exactly one of listen = "
                      "\"[ADDRESS:]PORT\" or connect = \"HOST:PORT\"")
    if listen is not None:
        mode, (host, port) = "listen", rd.wrap("tunnel", 0, "listen", parse_host_port,
                                               str(listen), "listen", port_only_ok=True)
    else:
        mode, (host, port) = "connect", rd.wrap("tunnel", 0, "connect", parse_host_port,
                                                connect, "connect", port_only_ok=False)
    kw: dict[str, Any] = {}
    for k in ("keepalive_s", "dead_s", "max_backoff_s"):
        v = rd.get(t, k, (int, float), "seconds", "tunnel", 0)
        if v is not None:
            kw[k] = float(v)
    mtu = rd.get(t, "mtu", int, "a number of bytes", "tunnel", 0)
    if mtu is not None:
        kw["mtu"] = mtu
    key = rd.get(t, "key_file", str, "a path", "tunnel", 0) or ""
    m = cast(Literal["listen", "connect"], mode)
    return rd.wrap("tunnel", 0, None, lambda: TunnelSpec(mode=m, host=host, port=port,
                                                         key_file=key, **kw))


def _rule(rd: _Reader, r: Any, n: int) -> Rule:
    if not isinstance(r, dict):
        raise rd.fail(None, 0, "rule", "use [[rule]] tables")
    rd.keys(r, _RULE, "rule", n)
    name = rd.get(r, "name", str, "a string", "rule", n) or f"rule{n + 1}"
    groups = rd.strings(r, "groups", "rule", n)
    eps, bps = rd.wrap("rule", n, "groups", split_groups, groups)
    bl = r.get("broadcast_ports", [])
    if not isinstance(bl, list):
        bl = [bl]
    bps += tuple(rd.wrap("rule", n, "broadcast_ports", broadcast_port, p) for p in bl)
    bps = tuple(dict.fromkeys(bps))  # a port named twice in one rule is one port
    if not eps and not bps:
        raise rd.fail("rule", n, None, f"rule {name}: needs groups = [\"GROUP:PORT\", ...] "
                      "or broadcast_ports = [PORT, ...]")
    allow: tuple[IPNetwork, ...] = tuple(
        rd.wrap("rule", n, "allow_sources", parse_network, s)
        for s in rd.strings(r, "allow_sources", "rule", n))
    deny: tuple[IPNetwork, ...] = tuple(
        rd.wrap("rule", n, "deny_sources", parse_network, s)
        for s in rd.strings(r, "deny_sources", "rule", n))
    targets: list[tuple[IPNetwork, tuple[str, ...]]] = []
    tl = r.get("target", [])
    if not isinstance(tl, list):
        raise rd.fail("rule", n, "target", "use [[rule.target]] tables")
    for tn, t in enumerate(tl):
        tab = "rule.target"
        idx = _nested_index(rd, n, tn)
        rd.keys(t, _TARGET, tab, idx)
        ifs = rd.strings(t, "interfaces", tab, idx)
        for s in rd.strings(t, "sources", tab, idx):
            targets.append((rd.wrap(tab, idx, "sources", parse_network, s), tuple(ifs)))
    rl = rd.get(r, "rate_limit", (int, float), "datagrams per second", "rule", n)
    tunnel = rd.get(r, "tunnel", bool, "true or false", "rule", n)
    return rd.wrap("rule", n, None, lambda: Rule(
        name=name, endpoints=eps, broadcast_ports=bps,
        interfaces=tuple(rd.strings(r, "interfaces", "rule", n)),
        allow_sources=allow, deny_sources=deny, targets=tuple(targets),
        rate_limit_pps=float(rl) if rl is not None else None,
        tunnel=True if tunnel is None else tunnel))


def _nested_index(rd: _Reader, rule_n: int, target_n: int) -> int:
    """Which ``[[rule.target]]`` header (counted over the file) is target ``target_n`` of
    rule ``rule_n``."""
    count = seen_rules = 0
    rule_hdr = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
    tgt_hdr = re.compile(r"^\s*\[\[\s*rule\.target\s*\]\]")
    before = 0
    for ln in rd.lines:
        if rule_hdr.match(ln):
            seen_rules += 1
            if seen_rules == rule_n + 1:
                before = count
        elif tgt_hdr.match(ln):
            count += 1
    return before + target_n


def load_config(path: str) -> RelayConfig:
    """Read and check a TOML configuration file.

    Args:
        path: the TOML file.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: see :func:`read_config`; settings that contradict each other name
            the file.
    """
    return read_config(path).build()
