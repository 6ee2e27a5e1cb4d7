"""The relay engine: receive on some interfaces (and the tunnel), decide, hand over.

Owns: :class:`Relay` (start, run, stop, stats, failure), its receiving sockets (one per IP
version and port, joined on every receiving interface by *name*, so the asyncio layer
re-joins a re-created interface; SO_BROADCAST on broadcast ports, whose directed and
limited broadcasts it takes as 255.255.255.255), the per-datagram decision (rule,
direction, source filter, storm rules, rate limit, targets) with its counting, retrying
joins on missing interfaces, the tunnel's ingress queue, and the relay's tasks.
Must not: send to interfaces itself (``_egress`` does), parse configuration files or
arguments, print, or make socket calls other than through :mod:`mcastkit` and
:mod:`mcastkit.aio`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Coroutine
from typing import Any, NamedTuple

from mcastkit import (
    Datagram,
    Endpoint,
    InterfaceError,
    McastError,
    MulticastSocket,
    list_interfaces,
)
from mcastkit._interfaces import is_broadcast_address
from mcastkit.aio import AsyncMulticastSocket, InterfaceEvent

from ._egress import Egress
from ._health import HealthServer
from ._ratelimit import RateLimiter
from ._rules import BROADCAST, TUNNEL, RelayConfig, Rule
from ._stats import (
    O_RELAYED,
    O_SEND_ERR,
    O_TOO_BIG,
    R_FILTERED,
    R_LOOP,
    R_NOTARGET,
    R_RATE,
    R_RECEIVED,
    Counters,
    RelayStats,
)
from ._suppress import LoopGuard
from ._tunnel import Tunnel
from ._wire import Inner, inner_overhead, load_key_file

__all__ = ["Relay"]


class _Plan(NamedTuple):
    """The per-(group, port, ingress) part of the decision, worked out once."""

    rule: Rule | None
    row: list[int]
    targets: tuple[str, ...]
    blocked: bool  # the rule does not take this ingress
    limiter: RateLimiter | None


_log = logging.getLogger("mcastkit.relay")
MAINTENANCE_S = 2.0  # how often missing interfaces are retried and own addresses re-read
_BATCH = 512


class Relay:
    """A multicast relay, between interfaces and/or through an encrypted tunnel.

    Use from asyncio:

    ```python
    async with Relay(config) as relay:   # started; stopped (groups left) on exit
        await relay.wait_closed()         # until relay.close() or cancellation
    ```

    With ``preserve_source`` the relay sends through mcastkit's raw path (whole Ethernet
    frames over AF_PACKET, needing CAP_NET_RAW): relayed datagrams keep their original
    source address and port, so unicast replies go straight to the original sender.

    Args:
        config: a validated :class:`RelayConfig` (see :func:`load_config`).

    Attributes:
        config: the configuration it runs.
        counters: the live counters (:meth:`stats` takes a snapshot).
        guard: the loop guard (storm rules: own addresses, recent datagrams).
        egress: the sending side (one socket per output interface).
        failure: why the relay stopped by itself (a task failed), or None.
    """

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.guard = LoopGuard(config.dedup_window_s)
        self._rule_of: dict[tuple[str, int], Rule] = {}
        for r in config.rules:
            for e in r.endpoints:
                self._rule_of[(str(e.group.address), e.port)] = r
            for p in r.broadcast_ports:
                self._rule_of[(BROADCAST, p)] = r
        self._rx_names = frozenset(i.name for i in config.interfaces if i.receives)
        self._limiters: dict[str, RateLimiter] = {}
        for r in config.rules:
            pps = r.rate_limit_pps or config.rate_limit_pps
            if pps is not None:
                self._limiters[r.name] = RateLimiter(pps)
        self._rx: dict[tuple[int, int], AsyncMulticastSocket] = {}
        self._pending_joins: set[tuple[int, int, Endpoint, str]] = set()
        self._plans: dict[tuple[str, int, str], _Plan] = {}
        self._ifnames: dict[int, str] = {}
        self._bcast_dst: dict[str, bool] = {}  # destination -> is a broadcast address
        self.egress = Egress(self.counters, self._rx, ttl=config.ttl,
                             preserve_source=config.preserve_source)
        self._tunnel: Tunnel | None = None
        self._tunnel_in: collections.deque[Inner] = collections.deque()
        self._tunnel_wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health: HealthServer | None = None
        self._closed: asyncio.Event | None = None
        self._started = 0.0
        self._stopping = False
        self._running = False
        #: why the relay stopped by itself (a task failed), or None
        self.failure: str | None = None
        self._final_kernel_drops = 0

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open every socket, join every group, start the tunnel and the health endpoint.
        An interface that does not exist yet is waited for (``stats().pending``).

        Raises:
            McastError: a join or bind the kernel refuses (nothing stays open).
            McastValueError: the key file is unusable.
        """
        asyncio.get_running_loop()  # raises RuntimeError outside a running loop
        self._closed = asyncio.Event()
        self._started = time.monotonic()
        try:
            self.refresh_own_addresses()
            if self.config.preserve_source:  # fail now (CAP_NET_RAW...), not per datagram
                self.egress.open_raw([i.name for i in self.config.interfaces if i.sends])
            self._open_receivers()
            if self.config.tunnel is not None:
                key = load_key_file(self.config.tunnel.key_file)
                self._tunnel_wake = asyncio.Event()
                self._tunnel = Tunnel(self.config.tunnel, key, self.counters, self._from_tunnel,
                                      self._wake_tunnel, self.config.rcvbuf_bytes)
                await self._tunnel.start()
                for t in self._tunnel.tasks:  # a tunnel task that fails stops the relay
                    t.add_done_callback(self._task_done)
                self._spawn(self._tunnel_loop(), "relay-tunnel-ingress")
            if self.config.health is not None:
                self._health = HealthServer(self)
                await self._health.start(*self.config.health)
        except BaseException:
            await self.close()
            raise
        for (ver, port), ep in self._rx.items():
            self._spawn(self._rx_loop(ep), f"relay-rx-v{ver}-{port}")
        self._spawn(self._maintenance(), "relay-maintenance")
        self._running = True
        _log.info("relay started: %d rule(s), interfaces %s%s", len(self.config.rules),
                  ", ".join(f"{i.name}({i.mode})" for i in self.config.interfaces),
                  f", tunnel {self.config.tunnel.mode}" if self.config.tunnel else "")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        t.add_done_callback(self._task_done)
        self._tasks.append(t)

    def _task_done(self, t: asyncio.Task[None]) -> None:
        """A task of the relay ended by itself: a bug or a lost socket. Stop the whole
        relay (a service manager restarts it) rather than go on relaying half of it."""
        if t.cancelled() or self._stopping:
            return
        exc = t.exception()
        self.failure = f"{t.get_name()} stopped: {exc!r}" if exc else f"{t.get_name()} ended"
        _log.error("relay: %s; stopping", self.failure, exc_info=exc)
        asyncio.get_running_loop().create_task(self.close())

    async def close(self) -> None:
        """Stop: leave every group, close every socket, say goodbye on the tunnel.
        Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        for t in self._tasks:
            if t is not me:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if self._health is not None:
            await self._health.close()
        if self._tunnel is not None:
            await self._tunnel.close()
            with contextlib.suppress(McastError, OSError):  # what it handed over last
                await self._drain_tunnel_ingress()
        self._final_kernel_drops = self._kernel_drops()
        for ep in self._rx.values():
            ep.close()
        self.egress.close()
        if self._closed is not None:
            self._closed.set()
        if self._running:  # a start that failed has said why already
            _log.info("relay stopped: %s", self.stats().line())

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (also after a failure: see :attr:`failure`)."""
        return self._stopping

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has run.

        Raises:
            RuntimeError: the relay was not started (use ``async with``).
        """
        if self._closed is None:
            raise RuntimeError("the relay was not started")
        await self._closed.wait()

    @property
    def tunnel(self) -> Tunnel | None:
        """The tunnel end, if the relay has one."""
        return self._tunnel

    @property
    def memberships(self) -> list[tuple[str, str]]:
        """(interface, group) pairs the relay holds now."""
        return [(m.ifname, m.group) for ep in self._rx.values() for m in ep.memberships]

    @property
    def ready(self) -> bool:
        """Every interface present, and the tunnel (if any) up."""
        return (not self._pending_joins and not self._missing_senders() and
                (self._tunnel is None or self._tunnel.up))

    def _missing_senders(self) -> list[str]:
        return [i.name for i in self.config.interfaces
                if i.sends and self.egress.interface(i.name) is None]

    def stats(self) -> RelayStats:
        """A snapshot of every counter (see docs/relay.md for their meaning).

        Returns:
            The counters, per rule and direction, with totals.
        """
        pend = sorted({f"{ifn} (join {ep})" for _, _, ep, ifn in self._pending_joins} |
                      {f"{ifn} (send)" for ifn in self._missing_senders()})
        kd = self._final_kernel_drops if self._stopping else self._kernel_drops()
        return RelayStats.build(
            self.counters, kernel_drops=kd,
            tunnel=self._tunnel.describe() if self._tunnel is not None else None,
            pending=tuple(pend), uptime_s=time.monotonic() - self._started)

    def _kernel_drops(self) -> int:
        n = 0  # the tunnel socket's drops are the tunnel's own (tunnel.kernel_drops, lost)
        for ep in self._rx.values():
            with contextlib.suppress(McastError, OSError):
                st = ep.stats
                n += max(0, st.kernel_drops) + st.queue_drops + st.discarded
        return n

    # ------------------------------------------------------------------ sockets

    def _open_receivers(self) -> None:
        cfg = self.config
        rx_ifaces = [i.name for i in cfg.interfaces if i.receives]
        bcast = {p for r in cfg.rules for p in r.broadcast_ports}
        for port in sorted(bcast):  # bound to the port, broadcasts need no join
            self._open_socket(4, port, True)
        for r in cfg.rules:
            for e in r.endpoints:
                ver, port = e.group.version, e.port
                if (ver, port) not in self._rx:
                    self._open_socket(ver, port, False)
                for ifn in rx_ifaces:
                    if not r.interfaces or ifn in r.interfaces:
                        self._pending_joins.add((ver, port, e, ifn))
        self._retry_joins()

    def _open_socket(self, ver: int, port: int, broadcast: bool) -> None:
        """One socket per version and port receives *and* sends (with the sending
        interface chosen per batch): relayed datagrams leave from the protocol's port (mDNS
        needs 5353), and no second socket shares the port (a SO_REUSEPORT sibling can take
        multicast meant for this one). ``broadcast``: SO_BROADCAST, for broadcast ports
        (the limited broadcast then leaves through the interface chosen per batch)."""
        core = MulticastSocket(ver, metadata=True, reuse_port=True, reuse_address=True,
                               blocking=False, rcvbuf_bytes=self.config.rcvbuf_bytes,
                               ttl=self.config.ttl, loopback=False, broadcast=broadcast)
        try:
            core.bind(port)
        except BaseException:
            core.close()
            raise
        self._rx[(ver, port)] = AsyncMulticastSocket(
            core, queue_size=8192, max_per_wakeup=_BATCH, on_event=self._on_event)

    def _retry_joins(self) -> None:
        for item in sorted(self._pending_joins, key=str):
            ver, port, e, ifn = item
            ep = self._rx[(ver, port)]
            try:
                if e.source is not None:
                    ep.join_source(e.source, e.group, ifn)
                else:
                    ep.join(e.group, ifn)
            except InterfaceError as exc:  # not there yet: retried, listed as pending
                _log.debug("join %s on %s waits: %s", e, ifn, exc.message)
                continue
            self._pending_joins.discard(item)
            _log.info("joined %s on %s", e, ifn)

    def refresh_own_addresses(self) -> None:
        """Re-read this host's addresses (own-address storm rule, broadcast addresses)."""
        self._bcast_dst.clear()
        with contextlib.suppress(McastError, OSError):
            self.guard.set_own_addresses(
                (str(a), i.name) for i in list_interfaces() for a in i.addresses)

    def _on_event(self, ev: InterfaceEvent) -> None:
        self._ifnames.clear()
        self.egress.forget_interfaces()
        self.refresh_own_addresses()
        if ev.kind == "rejoin_failed":
            _log.warning("interface %s re-created but joining failed: %s", ev.name, ev.error)
        else:
            _log.info("interface %s %s (index %d)", ev.name, ev.kind, ev.index)

    async def _maintenance(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_S)
            if self._pending_joins:
                self._retry_joins()
            self.refresh_own_addresses()

    def _ifname(self, index: int | None) -> str:
        if index is None:
            return "?"
        name = self._ifnames.get(index)
        if name is None:
            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = f"#{index}"
            self._ifnames[index] = name
        return name

    # ------------------------------------------------------------------ the hot path

    async def _rx_loop(self, ep: AsyncMulticastSocket) -> None:
        ingest = self._ingest
        ifname = self._ifname
        port = ep.local_address[1]
        bcast = ep.socket.broadcast
        while True:
            batch: list[Datagram] = await ep.recv_many(_BATCH)
            for d in batch:
                g = d.group
                if g is None:
                    continue
                if bcast and not 224 <= int(g.split(".", 1)[0]) <= 239 and self._is_bcast(g):
                    g = BROADCAST  # limited or directed: relayed as the limited broadcast
                ingest(ifname(d.interface), g, port, d.source, d.port, d.ttl, d.data)
            await self._flush()

    def _is_bcast(self, dst: str) -> bool:
        """A broadcast, not unicast to us (counted under "(no rule)"); remembered."""
        known = self._bcast_dst.get(dst)
        if known is None:
            known = self._bcast_dst[dst] = is_broadcast_address(dst)
        return known

    def _from_tunnel(self, inner: Inner) -> None:
        self._tunnel_in.append(inner)

    def _wake_tunnel(self) -> None:
        if self._tunnel_in and self._tunnel_wake is not None:
            self._tunnel_wake.set()

    async def _tunnel_loop(self) -> None:
        assert self._tunnel_wake is not None
        while True:
            await self._tunnel_wake.wait()
            self._tunnel_wake.clear()
            await self._drain_tunnel_ingress()

    async def _drain_tunnel_ingress(self) -> None:
        q = self._tunnel_in
        while q:
            for _ in range(min(len(q), _BATCH)):
                i = q.popleft()
                self._ingest(TUNNEL, i.group, i.port, i.source, i.source_port, i.ttl, i.data)
            await self._flush()

    def _plan(self, group: str, port: int, ingress: str) -> _Plan:
        """What to do with datagrams of (group, port) arriving on ``ingress`` (made once:
        rule, counter row, targets, which checks apply). Broadcasts arrive on every
        interface (no join): only the relay's receiving interfaces are taken."""
        rule = self._rule_of.get((group, port))
        if rule is None:  # not cached: a tunnel peer may name any group and port
            return _Plan(None, self.counters.ingress("(no rule)", ingress), (), True, None)
        names = [i.name for i in self.config.interfaces if i.sends and i.name != ingress
                 and (not rule.interfaces or i.name in rule.interfaces)]
        if self._tunnel is not None and rule.tunnel and ingress != TUNNEL:
            names.append(TUNNEL)
        blocked = ingress != TUNNEL and (ingress not in self._rx_names or (
            bool(rule.interfaces) and ingress not in rule.interfaces))
        plan = _Plan(rule, self.counters.ingress(rule.name, ingress), tuple(names), blocked,
                     self._limiters.get(rule.name))
        self._plans[(group, port, ingress)] = plan
        return plan

    def _ingest(self, ingress: str, group: str, port: int, source: str, sport: int,
                ttl: int | None, data: bytes) -> None:
        """Decide one datagram's fate, count it, and queue its copies."""
        plan = self._plans.get((group, port, ingress)) or self._plan(group, port, ingress)
        row = plan.row
        row[R_RECEIVED] += 1
        rule = plan.rule
        if rule is None or plan.blocked:
            row[R_FILTERED] += 1
            return
        targets = plan.targets
        src_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
        if rule.allow_sources or rule.deny_sources or rule.targets:
            src_ip = ipaddress.ip_address(source.split("%", 1)[0])
            if not rule.source_allowed(src_ip):
                row[R_FILTERED] += 1
                return
        guard = self.guard
        if guard.is_own_echo(source, ingress) or guard.check(group, port, data, ingress):
            row[R_LOOP] += 1
            return
        lim = plan.limiter
        if lim is not None and not lim.allow(group):
            row[R_RATE] += 1
            return
        if src_ip is not None and rule.targets:
            only = rule.targets_for(src_ip)
            if only is not None:
                targets = tuple(t for t in targets if t in only)
        if not targets:
            row[R_NOTARGET] += 1
            return
        queue = self.egress.queue
        for eg in targets:
            if eg == TUNNEL:
                self._to_tunnel(rule, ingress, group, port, source, sport, ttl, data)
            else:
                queue(rule.name, ingress, eg, group, port, source, sport, data)

    def _to_tunnel(self, rule: Rule, ingress: str, group: str, port: int, source: str,
                   sport: int, ttl: int | None, data: bytes) -> None:
        tn = self._tunnel
        assert tn is not None
        row = self.counters.egress(rule.name, ingress, TUNNEL)
        ver = 6 if ":" in group else 4
        if not tn.fits(ver, len(data)):
            row[O_TOO_BIG] += 1
            n = row[O_TOO_BIG]
            if n <= 10 or n % 1000 == 0:
                _log.warning("tunnel: a %d B datagram to %s:%d from %s does not fit the tunnel "
                             "mtu %d (largest payload %d B); not relayed (%d so far). Raise "
                             "the tunnel mtu on both sides if the path carries more",
                             len(data), group, port, source, tn.spec.mtu,
                             tn.spec.mtu - inner_overhead(ver), n)
            return
        if tn.send_data(group, port, source, sport, ttl, data):
            row[O_RELAYED] += 1
        else:
            row[O_SEND_ERR] += 1

    async def _flush(self) -> None:
        """Send every queued copy: the tunnel's, then the interfaces'."""
        if self._tunnel is not None:
            await self._tunnel.flush()
        await self.egress.flush()
