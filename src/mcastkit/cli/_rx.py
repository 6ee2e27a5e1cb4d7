"""Receiving on several endpoints at once, through the public core only.

Owns: grouping endpoints by (IP version, port) onto one :class:`MulticastSocket` each
(``open_receiver`` joins every group of a port on that socket), waiting on all of them,
and naming interfaces by index for output.
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

__all__ = ["Receivers"]


class Receivers:
    """One receiving socket per (IP version, port); iterate over arriving datagrams."""

    def __init__(self, endpoints: Sequence[Endpoint], interface: Interface | None,
                 rcvbuf_bytes: int | None = None, broadcast: bool = False) -> None:
        groups: dict[tuple[int, int], list[Endpoint]] = {}
        for ep in endpoints:
            groups.setdefault((ep.group.version, ep.port), []).append(ep)
        self.sockets: list[MulticastSocket] = []
        self._names: dict[int, str] = {}
        self._sel = selectors.DefaultSelector()
        try:
            for eps in groups.values():
                opts: dict[str, object] = {"metadata": True, "reuse_port": True,
                                           "reuse_address": True}
                if rcvbuf_bytes is not None:
                    opts["rcvbuf_bytes"] = rcvbuf_bytes
                if broadcast and eps[0].group.version == 4:
                    opts["broadcast"] = True  # broadcasts to the port are admitted too
                s = open_receiver(*eps, interface=interface, **opts)
                self.sockets.append(s)
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

    def wait(self, timeout_s: float | None) -> Iterator[Datagram]:
        """Datagrams ready within ``timeout_s`` (none if it expires)."""
        for key, _ in self._sel.select(timeout_s):
            sock: MulticastSocket = key.data
            try:
                batch_fn = getattr(sock, "recv_batch", None)  # recvmmsg, when the core has it
                if batch_fn is not None:
                    batch = list(batch_fn(max_count=256, timeout_s=0.05))
                else:
                    batch = sock.recv_many(256, timeout_s=0.05)
            except ReceiveTimeoutError:
                continue  # only a datagram for a group we never joined was queued
            except BlockingIOError:
                continue
            yield from batch

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for our sockets (live counters; -1 unknown)."""
        total = 0
        for s in self.sockets:
            d = s.kernel_drops()
            if d < 0:
                d = s.stats.kernel_drops
            total += d
        return total
