"""Receiving on several endpoints at once, through the public core only.

Owns: spreading endpoints over :class:`MulticastSocket` receivers (one per IP version
and port, and a further one for every ``net.ipv4.igmp_max_memberships`` IPv4 groups of
one port, so 50 groups on a port just work), the port-sharing rule (no SO_REUSEADDR /
SO_REUSEPORT unless ``--reuse``; sockets this process spreads over share with
SO_REUSEPORT only, which the kernel limits to the same user), waiting on all of them,
the receive buffer each socket got, noticing that a joined interface was deleted, and
naming interfaces by index for output.
Must not: make socket calls of its own (it waits on the core sockets' file descriptors).
"""

from __future__ import annotations

import contextlib
import selectors
from collections.abc import Iterator, Sequence

from mcastkit import (
    Datagram,
    Endpoint,
    Interface,
    McastError,
    MulticastSocket,
    ReceiveTimeoutError,
    open_receiver,
    resolve_interface,
)

from ._procnet import read_sysctl

__all__ = ["Receivers", "membership_limit"]

DEFAULT_LIMIT = 20


def membership_limit() -> int:
    """IPv4 groups one socket may join (``net.ipv4.igmp_max_memberships``)."""
    v = read_sysctl("net.ipv4.igmp_max_memberships")
    return int(v) if v is not None and v.isdigit() and int(v) > 0 else DEFAULT_LIMIT


def _spread(endpoints: Sequence[Endpoint], limit: int) -> list[list[Endpoint]]:
    """Endpoints per socket: one list per (version, port), IPv4 cut at ``limit`` groups."""
    by_port: dict[tuple[int, int], list[Endpoint]] = {}
    for ep in endpoints:
        by_port.setdefault((ep.group.version, ep.port), []).append(ep)
    out: list[list[Endpoint]] = []
    for (version, _), eps in by_port.items():
        if version == 6:
            out.append(eps)
            continue
        chunk: list[Endpoint] = []
        groups: set[str] = set()
        for ep in eps:
            g = str(ep.group)
            if g not in groups and len(groups) >= limit:
                out.append(chunk)
                chunk, groups = [], set()
            groups.add(g)
            chunk.append(ep)
        out.append(chunk)
    return out


class Receivers:
    """Receiving sockets for a set of endpoints; iterate over arriving datagrams.

    Args:
        endpoints: what to join.
        interface: where to join (None: the route's choice, per group).
        rcvbuf_bytes: receive buffer to request per socket.
        reuse: share the port with other sockets and programs (SO_REUSEADDR and
            SO_REUSEPORT); without it a second listener on the port gets EADDRINUSE.
        timestamps: ask for kernel arrival times.
        broadcast: also admit IPv4 broadcasts to the port (``broadcast=True``).
    """

    def __init__(self, endpoints: Sequence[Endpoint], interface: Interface | None,
                 rcvbuf_bytes: int | None = None, *, reuse: bool = False,
                 timestamps: bool = False, broadcast: bool = False) -> None:
        plan = _spread(endpoints, membership_limit())
        self.sockets: list[MulticastSocket] = []
        self.ports: dict[int, int] = {}  # fd -> the local (destination) port
        self.rcvbuf_requested = rcvbuf_bytes
        self._names: dict[int, str] = {}
        self._sel = selectors.DefaultSelector()
        ports_used = [(eps[0].group.version, eps[0].port) for eps in plan]
        try:
            for eps in plan:
                shared = ports_used.count((eps[0].group.version, eps[0].port)) > 1
                opts: dict[str, object] = {"metadata": True, "timestamps": timestamps,
                                           "reuse_port": reuse or shared,
                                           "reuse_address": reuse}
                if rcvbuf_bytes is not None:
                    opts["rcvbuf_bytes"] = rcvbuf_bytes
                if broadcast and eps[0].group.version == 4:
                    opts["broadcast"] = True  # broadcasts to the port are admitted too
                s = open_receiver(*eps, interface=interface, **opts)
                self.sockets.append(s)
                self.ports[s.fileno()] = s.local_address[1]
                self._sel.register(s.fileno(), selectors.EVENT_READ, s)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        with contextlib.suppress(Exception):
            self._sel.close()

    def __enter__(self) -> Receivers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rcvbuf_bytes(self) -> int:
        """The receive buffer the kernel applied (the smallest over the sockets)."""
        return min(s.rcvbuf_bytes for s in self.sockets)

    @property
    def rcvbuf_capped(self) -> bool:
        """The kernel granted less than ``--rcvbuf`` asked: it reports twice the size it
        accepted (bookkeeping overhead), and caps the request at net.core.rmem_max."""
        asked = self.rcvbuf_requested
        return asked is not None and self.rcvbuf_bytes < 2 * asked

    def interface_name(self, index: int | None) -> str | None:
        """The name of interface ``index`` (cached; the index itself if it vanished)."""
        if index is None:
            return None
        name = self._names.get(index)
        if name is None:
            try:
                name = resolve_interface(index).name
            except McastError:
                name = str(index)
            self._names[index] = name
        return name

    def gone(self) -> list[str]:
        """Interfaces that hold our memberships and no longer exist ("eth0 (index 5)")."""
        out: list[str] = []
        seen: set[int] = set()
        for s in self.sockets:
            for m in s.memberships:
                if m.ifindex in seen:
                    continue
                seen.add(m.ifindex)
                try:
                    alive = resolve_interface(m.ifindex).name == m.ifname
                except McastError:
                    alive = False
                if not alive:
                    out.append(f"{m.ifname} (index {m.ifindex})")
        return out

    def wait(self, timeout_s: float | None) -> Iterator[tuple[int, Datagram]]:
        """``(destination port, datagram)`` ready within ``timeout_s`` (none if it
        expires)."""
        for key, _ in self._sel.select(timeout_s):
            sock: MulticastSocket = key.data
            port = self.ports[key.fd]
            try:
                batch = list(sock.recv_batch(max_count=256, timeout_s=0.05))
            except (ReceiveTimeoutError, BlockingIOError):
                continue  # only a datagram for a group we never joined was queued
            for d in batch:
                yield port, d

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for our sockets (live counters; -1 unknown)."""
        total = 0
        for s in self.sockets:
            d = s.kernel_drops()
            if d < 0:
                d = s.stats.kernel_drops
            total += d
        return total
