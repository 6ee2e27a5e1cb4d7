"""Receiving on several endpoints at once, through the public socket core.

Owns: grouping endpoints by (IP version, port) onto one :class:`MulticastSocket` each
(``open_receiver`` joins every group of a port on that socket), waiting on all of them
and draining each ready one with ``recv_batch``, naming interfaces by index for output,
and the sum of their kernel drop counters. Used by the CLI's listen/record and by
:mod:`mcastkit.capture`.
Must not: make socket calls of its own (it waits on the core sockets' descriptors).
"""

from __future__ import annotations

import contextlib
import selectors
from collections.abc import Iterator, Sequence

from ._addr import Endpoint
from ._errors import McastError, ReceiveTimeoutError
from ._interfaces import Interface, resolve_interface
from ._packet import Datagram
from ._socket import MulticastSocket, open_receiver

__all__ = ["MultiReceiver"]


class MultiReceiver:
    """One receiving socket per (IP version, port); wait on all of them.

    Args:
        endpoints: what to join (``[SOURCE,]GROUP:PORT``, parsed).
        interface: where to join (None: the route's choice, per group).
        rcvbuf_bytes: receive buffer to request per socket.
        timestamps: also receive kernel arrival times (SO_TIMESTAMPNS).
        batch: datagrams taken per ``recv_batch`` call.
    """

    def __init__(self, endpoints: Sequence[Endpoint], interface: Interface | None,
                 rcvbuf_bytes: int | None = None, *, timestamps: bool = False,
                 batch: int = 256) -> None:
        groups: dict[tuple[int, int], list[Endpoint]] = {}
        for ep in endpoints:
            groups.setdefault((ep.group.version, ep.port), []).append(ep)
        self.sockets: list[MulticastSocket] = []
        self.ports: dict[MulticastSocket, int] = {}
        self.batch = batch
        self._names: dict[int, str] = {}
        self._sel = selectors.DefaultSelector()
        try:
            for (_v, port), eps in groups.items():
                opts: dict[str, object] = {"metadata": True, "reuse_port": True,
                                           "reuse_address": True}
                if timestamps:
                    opts["timestamps"] = True
                if rcvbuf_bytes is not None:
                    opts["rcvbuf_bytes"] = rcvbuf_bytes
                s = open_receiver(*eps, interface=interface, **opts)
                self.sockets.append(s)
                self.ports[s] = port
                self._sel.register(s.fileno(), selectors.EVENT_READ, s)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every socket (leaves every group); idempotent."""
        for s in self.sockets:
            s.close()
        with contextlib.suppress(Exception):
            self._sel.close()

    def __enter__(self) -> MultiReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def wait_batches(self, timeout_s: float | None
                     ) -> Iterator[tuple[MulticastSocket, list[Datagram]]]:
        """(socket, datagrams) for every socket with datagrams ready within ``timeout_s``."""
        for key, _ in self._sel.select(timeout_s):
            sock: MulticastSocket = key.data
            try:
                batch = sock.recv_batch(max_count=self.batch, timeout_s=0.05)
            except ReceiveTimeoutError:
                continue  # only a datagram for a group we never joined was queued
            except BlockingIOError:
                continue
            yield sock, batch

    def wait(self, timeout_s: float | None) -> Iterator[Datagram]:
        """Datagrams ready within ``timeout_s`` (none if it expires)."""
        for _sock, batch in self.wait_batches(timeout_s):
            yield from batch

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for our sockets (live counters)."""
        total = 0
        for s in self.sockets:
            d = s.kernel_drops()
            if d < 0:
                d = s.stats.kernel_drops
            total += d
        return total
