"""The relay's sending half: queued copies out of the interfaces, in batches.

Owns: the copies waiting to be sent (batched per rule, direction, interface, port and
group), sending them through the relay's receiving socket of their version and port with
the interface chosen per batch (so they leave from the protocol's port, loopback off) or,
with ``--preserve-source``, through mcastkit's raw path with the original source address
and port; counting each copy as relayed, too_big or send_errors; the resolved sending
interfaces (forgotten when interfaces change) and the raw senders.
Must not: decide what to relay, receive, or open multicast sockets of its own.
"""

from __future__ import annotations

import logging

from mcastkit import (
    DatagramTooLargeError,
    Interface,
    InterfaceError,
    McastError,
    McastOSError,
    resolve_interface,
)
from mcastkit._rawsend import RawDatagram, RawSender
from mcastkit.aio import AsyncMulticastSocket

from ._stats import O_RELAYED, O_SEND_ERR, O_TOO_BIG, Counters

__all__ = ["Egress"]

_log = logging.getLogger("mcastkit.relay")
_OutKey = tuple[str, str, int, str, int, str]  # rule, ingress, version, egress, port, group


class Egress:
    """Where the engine's decisions go out.

    Args:
        counters: the relay's counters (egress rows).
        rx: the relay's sockets by (IP version, port); copies are sent through them.
        ttl: TTL / hop limit of raw frames (the sockets have theirs set already).
        preserve_source: send through the raw path with the original source.
    """

    def __init__(self, counters: Counters, rx: dict[tuple[int, int], AsyncMulticastSocket],
                 *, ttl: int, preserve_source: bool) -> None:
        self.counters = counters
        self._rx = rx
        self._ttl = ttl
        self._preserve = preserve_source
        self._out: dict[_OutKey, list[bytes | RawDatagram]] = {}
        self._ifaces: dict[str, Interface] = {}  # sending interfaces, resolved once
        self._raw: dict[str, RawSender] = {}  # --preserve-source: one per interface

    def queue(self, rule: str, ingress: str, egress: str, group: str, port: int,
              source: str, sport: int, data: bytes) -> None:
        """Queue one copy for :meth:`flush`."""
        k = (rule, ingress, 6 if ":" in group else 4, egress, port, group)
        item: bytes | RawDatagram = data
        if self._preserve:  # the original source address and port go out unchanged
            item = RawDatagram(data, group, port, sport, source.split("%", 1)[0])
        lst = self._out.get(k)
        if lst is None:
            self._out[k] = [item]
        else:
            lst.append(item)

    def interface(self, name: str) -> Interface | None:
        """The sending interface ``name`` (cached; None while it does not exist)."""
        i = self._ifaces.get(name)
        if i is None:
            try:
                i = self._ifaces[name] = resolve_interface(name)
            except McastError:
                return None
        return i

    def forget_interfaces(self) -> None:
        """Interfaces changed: look every sending interface up again."""
        self._ifaces.clear()

    def close(self) -> None:
        """Close the raw senders (the sockets belong to the engine)."""
        for raw in self._raw.values():
            raw.close()
        self._raw.clear()

    async def flush(self) -> None:
        """Send every queued copy (batched per rule, direction, interface, port, group)."""
        if not self._out:
            return
        out, self._out = self._out, {}
        for (rule, ingress, ver, eg, port, group), payloads in out.items():
            row = self.counters.egress(rule, ingress, eg)
            ep = self._rx.get((ver, port))
            iface = self.interface(eg)
            if ep is None or ep.closed or iface is None:
                row[O_SEND_ERR] += len(payloads)
                self._warn(row, f"interface {eg} is not there; {len(payloads)} datagram(s) "
                                f"to {group}:{port} not sent")
                continue
            await self._deliver(ep, iface, row, payloads, group, port)

    def open_raw(self, names: list[str]) -> None:
        """Open the raw senders of the interfaces that exist now.

        Raises:
            McastOSError: CAP_NET_RAW is missing (code PERMISSION), or an interface is not
                Ethernet-like; the message names --preserve-source.
        """
        for name in names:
            if self.interface(name) is not None:
                try:
                    self._raw_for(name, strict=True)
                except McastOSError as exc:
                    raise McastOSError(
                        exc.errno or 0, f"--preserve-source: {exc.message}; or run without "
                        "--preserve-source (replies then go to the relay's address)",
                        code=exc.code, op="raw_open", interface=name) from None

    def _raw_for(self, name: str, strict: bool = False) -> RawSender | None:
        """The raw sender of interface ``name`` (made on first use; None while the
        interface is missing). ``strict``: raise what the raw path refuses (no
        CAP_NET_RAW, not Ethernet-like) instead of returning None."""
        raw = self._raw.get(name)
        if raw is None:
            try:
                raw = self._raw[name] = RawSender(name, ttl=self._ttl)
            except McastError as exc:
                if strict:
                    raise
                _log.warning("--preserve-source: no raw sender on %s: %s", name, exc.message)
                return None
        return raw

    def _warn(self, row: list[int], msg: str) -> None:
        n = row[O_SEND_ERR] + row[O_TOO_BIG]
        if n <= 10 or n % 1000 == 0:
            _log.warning("%s (%d so far)", msg, n)

    async def _deliver(self, ep: AsyncMulticastSocket, iface: Interface, row: list[int],
                       items: list[bytes | RawDatagram], group: str, port: int) -> None:
        """Send ``items`` out of ``iface``; every one is counted once."""
        rest = items
        while rest:
            try:
                if self._preserve:
                    raw = self._raw_for(iface.name)
                    if raw is None:
                        row[O_SEND_ERR] += len(rest)
                        return
                    raw.send_batch(rest)  # type: ignore[arg-type]
                    row[O_RELAYED] += len(rest)
                    return
                core = ep.socket
                if core.interface is None or core.interface.index != iface.index:
                    core.set_interface(iface)
                row[O_RELAYED] += await ep.send_many(rest, group, port)  # type: ignore[arg-type]
                return
            except McastError as exc:
                done = exc.datagrams_sent or 0
                row[O_RELAYED] += done
                row[O_TOO_BIG if isinstance(exc, DatagramTooLargeError) else O_SEND_ERR] += 1
                self._warn(row, f"send to {group}:{port} on {iface.name} failed: "
                                f"{exc.message}")
                if isinstance(exc, InterfaceError):  # re-created: look it up again next time
                    self._ifaces.pop(iface.name, None)
                    raw = self._raw.pop(iface.name, None)
                    if raw is not None:
                        raw.close()
                    row[O_SEND_ERR] += len(rest) - done - 1
                    return
                rest = rest[done + 1:]
